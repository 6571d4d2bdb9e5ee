"""Imports refuse files nested too deep or larger than the body limit, and import nothing."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from apps.changes.import_formats import ImportFileError, parse_json
from apps.changes.models import Change

IMPORT_URL = "/admin/changes/change/import/"


def deep_file(depth: int = 5_000) -> bytes:
    return ('[{"title": "Deep", "tags": ' + "[" * depth + "]" * depth + "}]").encode()


@pytest.mark.config_independent
def test_parse_json_refuses_deep_nesting():
    with pytest.raises(ImportFileError, match="nested deeper than 64 levels"):
        parse_json(deep_file().decode())


def test_the_admin_import_answers_deep_json_with_a_400(as_user, admin, project):
    upload = SimpleUploadedFile("deep.json", deep_file(), content_type="application/json")

    response = as_user(admin).post(IMPORT_URL, {"file": upload, "project": "billing"})

    assert response.status_code == 400
    assert "deep.json: Not valid JSON: JSON nested deeper than 64 levels." in (
        response.content.decode()
    )
    assert Change.objects.count() == 0


def test_the_admin_import_refuses_a_file_over_the_limit(as_user, admin, project, settings):
    settings.MAX_REQUEST_BYTES = 64 * 1024
    upload = SimpleUploadedFile("big.json", b"[" + b" " * 70_000 + b"]")

    response = as_user(admin).post(IMPORT_URL, {"file": upload, "project": "billing"})

    assert response.status_code == 413
    assert response.content.decode() == "The request body is larger than 65,536 bytes."
    assert Change.objects.count() == 0


def test_the_import_command_refuses_deep_json(admin, project, tmp_path):
    path = tmp_path / "deep.json"
    path.write_bytes(deep_file())

    with pytest.raises(CommandError, match="nested deeper than 64 levels"):
        call_command("import_changes", str(path), actor=admin.username, project="billing")
    assert Change.objects.count() == 0


def test_the_import_page_sits_with_the_changes_and_its_old_address_leads_there(as_user, admin):
    client = as_user(admin)
    assert "Import changes" in client.get("/admin/changes/change/").content.decode()
    moved = client.get("/admin/search/searchentry/import/")
    assert moved.status_code == 302
    assert moved["Location"] == "/admin/changes/change/import/"
    assert client.get(moved["Location"]).status_code == 200
