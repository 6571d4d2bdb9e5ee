import re

import pytest
from rest_framework.test import APIClient

from apps.changes.models import Change
from apps.core.audit import audit_history

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
