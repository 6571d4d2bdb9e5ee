"""Bad input gets a 4xx and changes nothing: JSON nested too deep, bodies over the limit."""

import json

import pytest

from apps.changes.models import Change
from apps.core import safejson
from apps.core.audit import audit_history

NEW = {
    "title": "Bound the response cache",
    "project": "billing",
    "reason": "RSS grows 40 MB an hour.",
    "expected_result": "peak RSS -20 %",
}


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [65, 5_000, 100_000])
def test_deep_json_is_a_400_and_files_nothing(api_as, engineer, project, depth):
    body = json.dumps({**NEW, "tags": ["x"]}).replace('["x"]', nested(depth))

    response = api_as(engineer).post("/api/changes/", data=body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {"detail": "JSON parse error - JSON nested deeper than 64 levels."}
    assert Change.objects.count() == 0


def test_json_as_deep_as_the_limit_still_parses(api_as, engineer, project):
    # 64 levels: the body object holds "tags", whose list holds 62 more lists.
    body = json.dumps({**NEW, "tags": ["x"]}).replace('["x"]', nested(63))

    response = api_as(engineer).post("/api/changes/", data=body, content_type="application/json")

    # Parsed, then refused by the serializer for what it says, not for how deep it is.
    assert response.status_code == 400
    assert "tags" in response.json()
    assert Change.objects.count() == 0


def test_a_deep_edit_changes_nothing(api_as, engineer, change):
    before = Change.objects.get(pk=change.pk)
    body = '{"title": "Rewritten", "files_touched": ' + nested(5_000) + "}"

    response = api_as(engineer).patch(
        f"/api/changes/{change.pk}/", data=body, content_type="application/json"
    )

    assert response.status_code == 400
    after = Change.objects.get(pk=change.pk)
    assert (after.title, after.files_touched) == (before.title, before.files_touched)
    assert [e.action for e in audit_history(after)] == [e.action for e in audit_history(before)]


def test_a_body_over_the_limit_is_a_413_before_any_view(api_as, as_user, engineer, settings):
    settings.MAX_REQUEST_BYTES = 1024 * 1024
    big = json.dumps({**NEW, "reason": "x" * (1024 * 1024)})

    api = api_as(engineer).post("/api/changes/", data=big, content_type="application/json")
    page = as_user(engineer).post("/changes/new/", {"title": "x" * (1024 * 1024)})

    assert api.status_code == 413
    assert api.json() == {"detail": "The request body is larger than 1 MiB."}
    assert page.status_code == 413
    assert page.content.decode() == "The request body is larger than 1 MiB."
    assert Change.objects.count() == 0


@pytest.mark.config_independent
def test_depth_is_measured_without_recursion():
    assert safejson.depth_within(json.loads(nested(64)))
    assert not safejson.depth_within(json.loads(nested(65)))
    assert safejson.depth_within({"a": [1, {"b": "c"}]}, limit=3)
    assert not safejson.depth_within({"a": [1, {"b": []}]}, limit=3)
    with pytest.raises(safejson.JSONTooDeep):
        safejson.loads(nested(200_000))


def test_the_api_takes_json_bodies_only(api_as, engineer, project):
    response = api_as(engineer).post(
        "/api/changes/",
        data="title=x&project=billing",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 415
    assert "Unsupported media type" in response.json()["detail"]
    assert Change.objects.count() == 0


def test_an_unknown_api_path_is_a_json_404(api_as, viewer):
    response = api_as(viewer).get("/api/changes/a%2Fb/checklist/")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


@pytest.mark.parametrize("depth", [65, 5_000])
def test_deep_json_in_an_admin_form_is_a_form_error(as_user, admin, project, depth):
    from apps.measurements.models import Profile

    response = as_user(admin).post(
        "/admin/measurements/profile/add/",
        {"project": project.pk, "name": "deep", "argv": "true", "metric_policy": nested(depth)},
    )

    assert response.status_code == 200
    assert "JSON nested deeper than 64 levels." in response.content.decode()
    assert not Profile.objects.exists()


def test_numbers_where_text_is_due_are_refused(api_as, engineer, project):
    response = api_as(engineer).post(
        "/api/changes/", {**NEW, "title": 12, "tags": ["memory", 7]}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"title": ["Not a valid string."], "tags": ["Not a valid string."]}
    assert Change.objects.count() == 0


@pytest.mark.parametrize(("size", "status"), [("abc", 400), ("0", 400), ("201", 400), ("", 200)])
def test_a_page_size_is_honoured_or_refused_never_replaced(api_as, viewer, size, status):
    response = api_as(viewer).get("/api/changes/", {"page_size": size})

    assert response.status_code == status
    if status == 400:
        assert response.json() == {"page_size": ["A whole number from 1 to 200."]}


def test_text_is_measured_as_sent_not_after_trimming(api_as, engineer, change):
    # "\x1e" counts as whitespace, so trimmed first it would pass as an empty revision.
    response = api_as(engineer).patch(
        f"/api/changes/{change.pk}/", {"base_revision": "\x1e" * 256}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"base_revision": ["At most 255 characters."]}
    change.refresh_from_db()
    assert change.base_revision == "main"
