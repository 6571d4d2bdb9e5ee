import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from apps.changes.models import Change
from apps.core.audit import audit_history
from apps.measurements.models import Profile
from apps.projects.models import Environment

from ..factories import ChangeFactory, ProjectFactory

NEW = {
    "title": "Bound the response cache",
    "project": "billing",
    "reason": "RSS grows 40 MB an hour under load.",
    "expected_result": "peak RSS -20 %",
    "command": "python -m bench.cache",
    "rollback_note": "Revert the commit.",
    "files_touched": ["app/cache.py"],
    "base_revision": "main",
    "head_revision": "fix/cache",
    "tags": ["memory"],
}


def test_anonymous_is_refused(client, change):
    assert APIClient().get("/api/changes/").status_code == 401
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Token not-a-real-key")
    assert bad.get("/api/changes/").status_code == 401


def test_file_read_and_list_with_a_token(api_as, engineer, project):
    api = api_as(engineer)
    created = api.post("/api/changes/", NEW, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["number"] == f"FIX-{body['id']}"
    assert body["owner"] == "erin"
    assert body["status"] == "draft"
    assert body["files_touched"] == ["app/cache.py"]
    for key in ("12", "FIX-12", "fix-12"):
        key = key.replace("12", str(body["id"]))
        assert api.get(f"/api/changes/{key}/").json()["title"] == NEW["title"]
    listed = api.get("/api/changes/").json()
    assert listed["count"] == 1
    assert listed["results"][0]["id"] == body["id"]
    assert audit_history(Change.objects.get()).get().actor == engineer


def test_session_auth_works_for_reads(as_user, viewer, change):
    response = as_user(viewer).get("/api/changes/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response.json()["count"] == 1


def test_filters(api_as, viewer, engineer, other_engineer, project):
    other = ProjectFactory(slug="search")
    ChangeFactory(owner=engineer, project=project)
    ChangeFactory(owner=other_engineer, project=other, status="shipped")
    api = api_as(viewer)
    assert api.get("/api/changes/?project=search").json()["count"] == 1
    assert api.get("/api/changes/?owner=erin").json()["count"] == 1
    assert api.get("/api/changes/?status=shipped").json()["count"] == 1
    assert api.get("/api/changes/?status=draft&owner=ed").json()["count"] == 0
    bad = api.get("/api/changes/?status=nonsense")
    assert bad.status_code == 400
    assert "status" in bad.json()


def test_partial_update_and_put(api_as, engineer, change):
    api = api_as(engineer)
    response = api.patch(f"/api/changes/{change.pk}/", {"title": "Patched"}, format="json")
    assert response.status_code == 200
    assert response.json()["title"] == "Patched"
    full = {**NEW, "title": "Replaced"}
    assert api.put(f"/api/changes/{change.pk}/", full, format="json").status_code == 200
    change.refresh_from_db()
    assert change.title == "Replaced"
    assert [e.action for e in audit_history(change)] == ["update", "update"]


def test_status_is_read_only(api_as, engineer, change):
    api_as(engineer).patch(f"/api/changes/{change.pk}/", {"status": "shipped"}, format="json")
    change.refresh_from_db()
    assert change.status == "draft"


def test_delete_is_not_offered(api_as, admin, change):
    assert api_as(admin).delete(f"/api/changes/{change.pk}/").status_code == 405
    assert Change.objects.filter(pk=change.pk).exists()


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("viewer", 403),
        ("other_engineer", 403),
        ("engineer", 200),
        ("reviewer", 200),
        ("admin", 200),
    ],
)
def test_edit_permissions_by_role(request, api_as, change, persona, status):
    api = api_as(request.getfixturevalue(persona))
    response = api.patch(f"/api/changes/{change.pk}/", {"title": "Edited"}, format="json")
    assert response.status_code == status
    change.refresh_from_db()
    assert (change.title == "Edited") == (status == 200)


def test_viewer_cannot_file(api_as, viewer, project):
    response = api_as(viewer).post("/api/changes/", NEW, format="json")
    assert response.status_code == 403
    assert "engineer" in response.json()["detail"]
    assert Change.objects.count() == 0


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"project": "no-such-project"}, "project"),
        ({"title": "x" * 201}, "title"),
        ({"reason": "x" * 20_001}, "reason"),
        ({"files_touched": "app/cache.py"}, "files_touched"),
        ({"files_touched": ["/abs/path.py"]}, "files_touched"),
        ({"files_touched": ["x" * 1025]}, "files_touched"),
        ({"tags": ["Two Words"]}, "tags"),
        ({"head_revision": "--upload-pack=touch pwned"}, "head_revision"),
        ({"owner": "nobody"}, "owner"),
        ({"title": None}, "title"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api_as, engineer, project, patch, field):
    response = api_as(engineer).post("/api/changes/", {**NEW, **patch}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert Change.objects.count() == 0


def test_malformed_json_is_a_400(api_as, engineer, project):
    response = api_as(engineer).post(
        "/api/changes/", data='{"title": "unterminated', content_type="application/json"
    )
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
    assert Change.objects.count() == 0


def test_oversized_body_is_a_413(api_as, engineer, project, settings):
    settings.MAX_REQUEST_BYTES = 10_000
    response = api_as(engineer).post(
        "/api/changes/", {**NEW, "reason": "x" * 20_000}, format="json"
    )
    assert response.status_code == 413
    assert response.json() == {"detail": "The request body is larger than 10,000 bytes."}
    assert Change.objects.count() == 0


def test_unknown_change_is_a_404(api_as, viewer):
    api = api_as(viewer)
    assert api.get("/api/changes/999999/").status_code == 404
    assert api.get("/api/changes/FIX-0/").status_code == 404


def test_projects_endpoint(api_as, viewer, project):
    body = api_as(viewer).get("/api/projects/").json()
    assert [p["slug"] for p in body["results"]] == ["billing"]


def test_schema_and_docs_are_served_locally(as_user, viewer):
    client = as_user(viewer)
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/changes/{id}/" in schema.content
    docs = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in docs
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs)
    assert assets
    assert all(url.startswith("/") and not url.startswith("//") for url in assets), assets


def test_words_are_refused_with_a_pointer_to_the_search(api_as, viewer, change):
    response = api_as(viewer).get("/api/changes/?q=cache")
    assert response.status_code == 400
    assert "/api/search/" in response.json()["q"][0]
    # Not even empty words are quietly taken as "every change".
    assert api_as(viewer).get("/api/changes/?q=").status_code == 400


def test_the_list_pages_newest_first_through_its_next_links(api_as, viewer, project):
    made = [c.pk for c in ChangeFactory.create_batch(5, project=project)][::-1]
    api = api_as(viewer)
    first = api.get("/api/changes/?page_size=2").json()
    assert (first["count"], first["count_capped"], first["previous"]) == (5, False, None)
    assert [c["id"] for c in first["results"]] == made[:2]
    second = api.get(first["next"]).json()
    assert [c["id"] for c in second["results"]] == made[2:4]
    assert [c["id"] for c in api.get(second["previous"]).json()["results"]] == made[:2]
    last = api.get(second["next"]).json()
    assert ([c["id"] for c in last["results"]], last["next"]) == (made[4:], None)
    # A change filed meanwhile does not shift the pages already reached.
    ChangeFactory(project=project)
    assert [c["id"] for c in api.get(first["next"]).json()["results"]] == made[2:4]
    assert api.get("/api/changes/?cursor=nonsense").status_code == 404
    assert api.get("/api/changes/?page_size=201").status_code == 400


def test_the_count_stops_at_its_cap_and_every_page_stays_reachable(
    api_as, viewer, project, monkeypatch
):
    from apps.changes.api import ChangePagination

    monkeypatch.setattr(ChangePagination, "count_cap", 3)
    made = sorted(c.pk for c in ChangeFactory.create_batch(5, project=project))[::-1]
    api = api_as(viewer)
    page = api.get("/api/changes/?page_size=2").json()
    assert (page["count"], page["count_capped"]) == (3, True)
    seen = [c["id"] for c in page["results"]]
    while page["next"]:
        page = api.get(page["next"]).json()
        seen += [c["id"] for c in page["results"]]
    assert seen == made
    assert api.get(f"/api/changes/?project={project.slug}&page_size=2").json()["count"] == 3
    exact = api.get(f"/api/changes/?project={project.slug}&status=shipped").json()
    assert (exact["count"], exact["count_capped"]) == (0, False)


def test_the_latest_verdict_is_listed_and_read_only(api_as, viewer, engineer, project):
    from .test_list import finished_measurement

    environment = Environment.objects.create(name="staging-api")
    profile = Profile.objects.create(
        project=project, name="bench", environment=environment, argv=["true"]
    )
    measured = ChangeFactory(owner=engineer, project=project, expected_result="peak RSS -20 %")
    unmeasured = ChangeFactory(owner=engineer, project=project)
    measurement = finished_measurement(measured, profile, rss_after=80_000_000, wall_after=1.0)

    listed = {c["id"]: c for c in api_as(viewer).get("/api/changes/").json()["results"]}
    verdict = listed[measured.pk]["latest_verdict"]
    assert verdict["verdict"] == "improved"
    assert (verdict["metric"], verdict["label"]) == ("peak_rss", "peak RSS")
    assert verdict["change_pct"] == pytest.approx(-20.0, abs=0.1)
    assert verdict["measurement"] == measurement.pk
    assert listed[unmeasured.pk]["latest_verdict"] is None

    edit = api_as(engineer).patch(
        f"/api/changes/{unmeasured.pk}/", {"latest_verdict": {"verdict": "improved"}}
    )
    assert edit.status_code == 200
    assert edit.json()["latest_verdict"] is None
    unmeasured.refresh_from_db()
    assert unmeasured.latest_verdict == {}


def test_a_list_page_costs_the_same_queries_at_any_size(
    api_as, viewer, project, django_assert_max_num_queries
):
    api = api_as(viewer)
    ChangeFactory.create_batch(3, project=project)
    urls = ("/api/changes/", f"/api/changes/?project={project.slug}&status=draft")
    few = {}
    for url in urls:
        with CaptureQueriesContext(connection) as ctx:
            assert api.get(url).status_code == 200
        few[url] = len(ctx.captured_queries)
    # Other owners and projects on every row, and a page to follow.
    ChangeFactory.create_batch(60)
    ChangeFactory.create_batch(60, project=project)
    nxt = api.get("/api/changes/").json()["next"]
    for url in (*urls, nxt):
        with django_assert_max_num_queries(few.get(url, few["/api/changes/"])):
            assert len(api.get(url).json()["results"]) > 0
