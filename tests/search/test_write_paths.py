"""The index stays correct whichever way a change is written."""

import json

import pytest

from apps.changes.imports import changes_import
from apps.changes.models import Change
from apps.changes.services import change_refresh_revisions, change_update
from apps.measurements.reports import measurement_finish
from apps.search.forms import SearchForm


def test_web_form_create_and_edit(as_user, engineer, project, found):
    client = as_user(engineer)
    form = {
        "title": "Stop the zeppelin leak",
        "project": project.pk,
        "reason": "Zeppelin objects pile up.",
        "expected_result": "peak RSS -10 %",
        "files_touched": "app/zeppelin.py",
        "tags": "memory",
    }
    response = client.post("/changes/new/", form)
    assert response.status_code == 302, response.content
    change = Change.objects.get(title="Stop the zeppelin leak")
    assert found(q="zeppelin") == [change.pk]
    response = client.post(
        f"/changes/{change.number}/edit/",
        {**form, "title": "Stop the airship leak", "reason": "Airships pile up."},
    )
    assert response.status_code == 302, response.content
    assert found(q="zeppelin") == [change.pk]  # still a file name word
    assert found(q="airship") == [change.pk]
    assert found(q='"zeppelin objects"') == []


def test_api_create_and_patch(api_as, engineer, project, found):
    client = api_as(engineer)
    response = client.post(
        "/api/changes/",
        {
            "title": "Pool the quokka connections",
            "project": project.slug,
            "reason": "r",
            "expected_result": "e",
            "files_touched": ["db/quokka.py"],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    pk = response.json()["id"]
    assert found(q="quokka") == [pk]
    assert found(q="db/quokka.py") == [pk]
    response = client.patch(
        f"/api/changes/{pk}/", {"files_touched": ["db/wombat.py"]}, format="json"
    )
    assert response.status_code == 200
    assert found(q="quokka.py") == []
    assert found(path="wombat") == [pk]


def test_admin_create(as_user, admin, engineer, project, found):
    response = as_user(admin).post(
        "/admin/changes/change/add/",
        {
            "title": "Admin files the narwhal fix",
            "project": project.pk,
            "owner": engineer.pk,
            "reason": "r",
            "expected_result": "e",
            "files_touched": "",
            "tags": "",
            "command": "",
            "rollback_note": "",
            "base_revision": "",
            "head_revision": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert len(found(q="narwhal")) == 1


def test_service_update_and_refresh(file_change, engineer, found):
    change = file_change(title="Trim the pelican buffer")
    change_update(actor=engineer, change=change, title="Trim the heron buffer")
    assert found(q="pelican") == []
    assert found(q="heron") == [change.pk]
    # A refresh with nothing to resolve still leaves the index right.
    change_refresh_revisions(change=change)
    assert found(q="heron") == [change.pk]


def test_import(admin, engineer, project, found):
    changes_import(
        actor=admin,
        records=[
            {
                "title": "Imported ocelot fix",
                "project": project.slug,
                "owner": engineer.username,
                "reason": "r",
                "expected_result": "e",
                "files_touched": ["lib/ocelot.py"],
            }
        ],
    )
    assert len(found(q="ocelot")) == 1
    assert len(found(q="lib/ocelot")) == 1


def test_worker_verdicts_reach_the_index(running_measurement, found):
    change, measurement = running_measurement
    assert found(verdict="improved") == []
    measurement_finish(measurement=measurement)
    assert found(verdict="improved") == [change.pk]
    assert found(gain_metric="peak_rss", gain_min=15) == [change.pk]
    assert found(gain_metric="peak_rss", gain_min=25) == []
    # Between two gain steps, the exact gain (20 %) on the row decides.
    assert found(gain_metric="peak_rss", gain_min=19.5) == [change.pk]
    assert found(gain_metric="peak_rss", gain_min=20.5) == []
    assert found(gain_min=19.5) == [change.pk]
    assert found(gain_min=20.5) == []
    # People filter by the label they read on the page.
    form = SearchForm({"gain_metric": "Peak RSS", "gain_min": "15"})
    assert form.is_valid(), form.errors
    assert form.params().gain_metric == "peak_rss"
    assert found(gain_metric=form.params().gain_metric, gain_min=15) == [change.pk]
    assert found(q="walrus", verdict="regressed") == []


def test_gain_sort(running_measurement, file_change, found):
    change, measurement = running_measurement
    measurement_finish(measurement=measurement)
    other = file_change(title="Unmeasured walrus")
    assert found(q="walrus", sort="gain", gain_metric="peak_rss") == [change.pk]
    assert found(q="walrus", sort="gain") == [change.pk, other.pk]


def test_a_refused_import_leaves_the_index_alone(admin, engineer, project, found):
    from apps.changes.imports import ImportRefused

    with pytest.raises(ImportRefused):
        changes_import(
            actor=admin,
            records=[
                {
                    "title": "Good lynx fix",
                    "project": project.slug,
                    "owner": engineer.username,
                    "reason": "r",
                    "expected_result": "e",
                },
                {
                    "title": "Bad lynx fix",
                    "project": "nope",
                    "owner": engineer.username,
                    "reason": "r",
                    "expected_result": "e",
                },
            ],
        )
    assert found(q="lynx") == []
    assert json.dumps(found(q="lynx")) == "[]"


def test_shipping_and_rolling_back(admin, engineer, project, found, tmp_path):
    from apps.changes.services import change_create
    from apps.checklists.rollback import change_rollback
    from apps.checklists.shipping import change_ship
    from apps.projects.models import Project
    from apps.projects.tasks import sync_project

    from ..repos import make_service_repo

    # Shipping tags a commit, so this change needs a real repository behind it.
    make_service_repo(tmp_path / "upstream")
    Project.objects.filter(pk=project.pk).update(repository_url=str(tmp_path / "upstream"))
    sync_project(project.pk)
    change = change_create(
        actor=engineer,
        project=Project.objects.get(pk=project.pk),
        title="Cap the blimp cache",
        reason="r",
        expected_result="peak RSS -10 %",
        rollback_note="Uncap the blimp cache again.",
        base_revision="main",
        head_revision="fix/cache",
    )
    change_ship(actor=admin, change=change, override_reason="test")
    assert found(q="blimp", status="shipped") == [change.pk]
    # The final notes are indexed too: their checklist section names the items.
    assert change.pk in found(q='"integration check"')
    reverse = change_rollback(actor=engineer, change=change)
    change_ship(actor=admin, change=reverse, override_reason="test")
    assert found(q="blimp", status="rolled_back") == [change.pk]
