import json
from pathlib import Path

import pytest

from apps.changes.models import Change

SEED_NOTE = Path("/work/shared/seeds/field-notes-profiling-memory.txt")


def test_search_page_full_and_htmx(as_user, viewer, file_change):
    change = file_change(title="Bound the <i>cache</i>")
    client = as_user(viewer)
    page = client.get("/search/", {"q": "cache"})
    assert page.status_code == 200
    body = page.content.decode()
    assert 'hx-trigger="input changed delay:250ms' in body
    assert change.number in body and "&lt;i&gt;" in body and "<i>cache" not in body
    partial = client.get(
        "/search/", {"q": "cache"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="search-results"
    )
    assert partial.status_code == 200
    assert "<html" not in partial.content.decode() and change.number in partial.content.decode()


def test_nav_has_a_search_box(as_user, viewer):
    assert 'action="/search/"' in as_user(viewer).get("/changes/").content.decode()


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"q": '"open'}, 400),
        ({"gain_min": "lots"}, 400),
        ({"gain_min": "nan"}, 400),
        ({"gain_metric": "no_such_metric"}, 400),
        ({"page": "99999999999"}, 400),
        ({"page": "50"}, 404),
        ({"date_from": "2024-02-30"}, 400),
        ({"project": "nope"}, 400),
    ],
)
def test_bad_input_is_a_clear_4xx(as_user, api_as, viewer, file_change, params, status):
    file_change()
    assert as_user(viewer).get("/search/", params).status_code == status
    response = api_as(viewer).get("/api/search/", params)
    assert response.status_code == status, response.content


def test_login_required(client):
    assert client.get("/search/").status_code == 302
    assert client.get("/api/search/").status_code in (401, 403)


def test_api_search(api_as, viewer, file_change):
    change = file_change(title="Bound the otter cache", files_touched=["apps/billing/cache.py"])
    response = api_as(viewer).get("/api/search/", {"q": "otter apps/billing/"})
    assert response.status_code == 200
    data = response.json()
    assert data["count"] == 1 and data["capped"] is False
    hit = data["results"][0]
    assert hit["change"]["number"] == change.number
    assert "<mark>otter</mark>" in hit["snippet"]
    assert {f["value"] for f in data["facets"]["project"]} == {change.project.slug}


def test_api_and_page_say_when_more_match_than_are_counted(
    api_as, as_user, viewer, file_change, monkeypatch
):
    from apps.search import selectors

    for n in range(3):
        file_change(title=f"Bound the stoat cache {n}")
    monkeypatch.setattr(selectors, "WINDOW", 2)
    data = api_as(viewer).get("/api/search/", {"q": "stoat"}).json()
    assert data["count"] == 2 and data["capped"] is True and len(data["results"]) == 2
    page = as_user(viewer).get("/search/", {"q": "stoat"})
    assert "More than 2 changes match" in page.content.decode()


def test_api_schema_documents_search(api_as, viewer):
    schema = api_as(viewer).get("/api/schema/", {"format": "json"}).json()
    assert "/api/search/" in schema["paths"]
    names = {p["name"] for p in schema["paths"]["/api/search/"]["get"]["parameters"]}
    assert {"q", "gain_metric", "gain_min", "verdict", "sort"} <= names


def test_exports(api_as, as_user, viewer, file_change):
    change = file_change(title="Export the badger fix", command="python -m bench")
    client = api_as(viewer)
    md = client.get(f"/api/search/changes/{change.number}/export.md")
    assert md.status_code == 200 and md["Content-Type"].startswith("text/markdown")
    assert md.content.decode().startswith("# Export the badger fix")
    js = client.get(f"/api/search/changes/{change.pk}/export.json")
    assert js.json()["title"] == "Export the badger fix"
    file_change(title="Another fix")
    every = client.get("/api/search/export/", {"q": "badger"})
    body = json.loads(b"".join(every.streaming_content))
    assert [c["number"] for c in body["results"]] == [change.number]
    assert body["truncated"] is False
    assert as_user(viewer).get(f"/api/search/changes/{change.number}/export.md").status_code == 200
    assert client.get("/api/search/changes/FIX-999999/export.md").status_code == 404


def test_export_then_import_round_trip(api_as, viewer, admin, file_change, tmp_path):
    from django.core.management import call_command

    change = file_change(title="Round trip the heron fix", tags=["memory", "cache"])
    md = api_as(viewer).get(f"/api/search/changes/{change.number}/export.md").content
    (tmp_path / "note.md").write_bytes(md)
    js = b"".join(api_as(viewer).get("/api/search/export/", {"q": "heron"}).streaming_content)
    (tmp_path / "all.json").write_bytes(js)
    call_command(
        "import_changes",
        str(tmp_path / "note.md"),
        str(tmp_path / "all.json"),
        actor=admin.username,
    )
    copies = Change.objects.filter(title="Round trip the heron fix").exclude(pk=change.pk)
    assert copies.count() == 2
    for copy in copies:
        assert copy.tags == ["memory", "cache"] and copy.owner == change.owner
        assert copy.files_touched == ["app/cache.py"]


def test_import_seed_note(admin, engineer, project, found, tmp_path):
    from django.core.management import call_command

    note = tmp_path / "field-notes.txt"
    note.write_text(SEED_NOTE.read_text())
    call_command(
        "import_changes",
        str(note),
        actor=admin.username,
        owner=engineer.username,
        project=project.slug,
    )
    change = Change.objects.get()
    assert change.title == "field notes on profiling memory usage for python services"
    assert change.reason.startswith("this ai-style technical summary")
    assert "measure first" in change.expected_result
    assert {"python", "pytest", "fastapi"} <= set(change.tags)
    assert found(q="profiling") == [change.pk]


def test_import_refuses_the_whole_file_with_a_report(admin, engineer, viewer, project, tmp_path):
    from django.core.management import CommandError, call_command

    records = [
        {
            "title": "ok",
            "project": project.slug,
            "owner": engineer.username,
            "reason": "r",
            "expected_result": "e",
        },
        {
            "title": "no owner role",
            "project": project.slug,
            "owner": viewer.username,
            "reason": "r",
            "expected_result": "e",
        },
        {
            "title": "bad tags",
            "project": project.slug,
            "owner": engineer.username,
            "reason": "r",
            "expected_result": "e",
            "tags": ["Not A Tag"],
        },
        {
            "title": "",
            "project": project.slug,
            "owner": engineer.username,
            "reason": "r",
            "expected_result": "e",
        },
    ]
    path = tmp_path / "changes.json"
    import json

    path.write_text(json.dumps(records))
    import io

    err = io.StringIO()
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_changes", str(path), actor=admin.username, stderr=err)
    report = err.getvalue()
    assert "record 2 ('no owner role'): owner:" in report
    assert "record 3 ('bad tags'): tags:" in report
    assert "record 4: title:" in report
    assert Change.objects.count() == 0


def test_import_is_admin_only(engineer, project):
    from django.core.exceptions import PermissionDenied

    from apps.changes.imports import changes_import

    with pytest.raises(PermissionDenied):
        changes_import(actor=engineer, records=[])


def test_admin_upload_page(as_user, admin, engineer, reviewer, project):
    from django.core.files.uploadedfile import SimpleUploadedFile

    url = "/admin/changes/change/import/"
    good = json.dumps(
        [
            {
                "title": "Uploaded fix",
                "project": "billing",
                "owner": "erin",
                "reason": "r",
                "expected_result": "e",
            }
        ]
    ).encode()
    response = as_user(admin).post(url, {"file": SimpleUploadedFile("c.json", good)})
    assert response.status_code == 302
    assert Change.objects.filter(title="Uploaded fix").exists()
    bad = as_user(admin).post(url, {"file": SimpleUploadedFile("c.json", b"{not json")})
    assert bad.status_code == 400 and "Not valid JSON" in bad.content.decode()
    assert as_user(reviewer).get(url).status_code in (302, 403)
