"""The admin as part of the product: its name and icon, list fields as lines, people by name,
statuses by label, plurals in English."""

import re
from html import unescape

import pytest

from apps.accounts.services import api_token_create
from apps.changes.services import change_create
from apps.measurements.models import Profile
from apps.projects.models import Environment


@pytest.fixture
def client_(as_user, admin):
    return as_user(admin)


def textarea(body: str, name: str) -> str:
    found = re.search(rf'<textarea name="{name}"[^>]*>\n?(.*?)</textarea>', body, flags=re.S)
    assert found, name
    return unescape(found.group(1))


def test_branding_favicon_and_a_way_back(client_):
    body = client_.get("/admin/").content.decode()
    assert "fixledger administration" in body and "Django administration" not in body
    assert "<title>Projects, profiles, people and records | fixledger admin</title>" in body
    assert 'rel="icon" href="/static/favicon.svg"' in body
    assert 'href="/static/css/admin.css"' in body
    assert '<a class="back-to-app" href="/changes/">' in body


def test_plurals_in_english(client_):
    body = client_.get("/admin/").content.decode()
    assert "Search entries" in body and "entrys" not in body
    assert "API tokens" in body


def test_files_and_tags_round_trip_as_lines(client_, admin, engineer, project):
    change = change_create(
        actor=engineer,
        project=project,
        title="Bound the cache",
        reason="r",
        expected_result="e",
        files_touched=["app/cache.py", "app/views.py"],
        tags=["memory", "cache"],
    )
    url = f"/admin/changes/change/{change.pk}/change/"
    body = client_.get(url).content.decode()
    assert textarea(body, "files_touched") == "app/cache.py\napp/views.py"
    assert 'name="tags" value="memory, cache"' in body
    assert '["app/cache.py"' not in body
    # What the page shows, posted back unchanged, is the same list.
    form = {
        "title": change.title,
        "project": project.pk,
        "owner": engineer.pk,
        "reason": "r",
        "expected_result": "e",
        "command": "",
        "rollback_note": "",
        "base_revision": "",
        "head_revision": "",
        "files_touched": textarea(body, "files_touched"),
        "tags": "memory, cache",
    }
    assert client_.post(url, form).status_code == 302
    change.refresh_from_db()
    assert change.files_touched == ["app/cache.py", "app/views.py"]
    assert change.tags == ["memory", "cache"]
    form["files_touched"] = "app/cache.py\n\n  lib/pool.py  \napp/cache.py\n"
    assert client_.post(url, form).status_code == 302
    change.refresh_from_db()
    assert change.files_touched == ["app/cache.py", "lib/pool.py"]


def test_a_profile_command_is_one_argument_a_line_and_keeps_repeats(client_, project):
    environment = Environment.objects.create(name="staging-admin")
    profile = Profile.objects.create(
        project=project,
        name="bench",
        environment=environment,
        argv=["python", "-X", "dev", "-X", "importtime", "bench.py"],
    )
    url = f"/admin/measurements/profile/{profile.pk}/change/"
    body = client_.get(url).content.decode()
    assert textarea(body, "argv") == "python\n-X\ndev\n-X\nimporttime\nbench.py"
    assert "One argument a line" in body


def test_environment_config_files_as_lines(client_):
    environment = Environment.objects.create(
        name="staging-files", config_files=["/etc/app.conf", "/etc/nginx.conf"]
    )
    body = client_.get(f"/admin/projects/environment/{environment.pk}/change/").content.decode()
    assert textarea(body, "config_files") == "/etc/app.conf\n/etc/nginx.conf"


def test_owners_by_name_and_statuses_by_label(client_, engineer, project):
    engineer.first_name, engineer.last_name = "Erin", "Example"
    engineer.save()
    change_create(actor=engineer, project=project, title="t", reason="r", expected_result="e")
    changes = client_.get("/admin/changes/change/").content.decode()
    assert f"Erin Example ({engineer.username})" in changes
    entries = client_.get("/admin/search/searchentry/").content.decode()
    assert f"Erin Example ({engineer.username})" in entries
    assert '<td class="field-status_label">Draft</td>' in entries
    api_token_create(actor=engineer, user=engineer, name="ci")
    tokens = client_.get("/admin/accounts/apitoken/").content.decode()
    assert f"Erin Example ({engineer.username})" in tokens
