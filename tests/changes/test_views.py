from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.changes.models import Change
from apps.changes.services import change_update
from apps.core.audit import audit_history

from ..factories import ChangeFactory, change_between_branches, project_not_synced

FORM = {
    "title": "Bound the response cache",
    "project": "",  # filled per test
    "reason": "RSS grows 40 MB an hour under load.",
    "expected_result": "peak RSS -20 %",
    "command": "python -m bench.cache",
    "rollback_note": "Revert the commit.",
    "base_revision": "main",
    "head_revision": "fix/cache",
    "files_touched": "app/cache.py\r\napp/settings.py\r\n\r\napp/cache.py",
    "tags": "Memory, cache",
}


def form_for(project, **overrides):
    return {**FORM, "project": project.pk, **overrides}


def test_pages_need_login(client, change):
    for url in ["/changes/", "/changes/new/", f"/changes/FIX-{change.pk}/"]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")


def test_file_a_change_in_the_ui(as_user, engineer, project):
    client = as_user(engineer)
    response = client.post("/changes/new/", form_for(project))
    change = Change.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/changes/FIX-{change.pk}/"
    assert change.owner == engineer
    assert change.files_touched == ["app/cache.py", "app/settings.py"]
    assert change.tags == ["memory", "cache"]
    page = client.get(response["Location"]).content.decode()
    assert "Bound the response cache" in page
    assert "app/settings.py" in page


def test_form_errors_are_shown_and_nothing_is_saved(as_user, engineer, project):
    response = as_user(engineer).post(
        "/changes/new/",
        form_for(project, title="", files_touched="/etc/passwd", head_revision="--output=x"),
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "This field is required." in page
    assert "paths are relative to the repository root" in page
    assert "is not a commit SHA or a branch or tag name" in page
    assert Change.objects.count() == 0


def test_unknown_project_is_a_form_error(as_user, engineer, project):
    response = as_user(engineer).post("/changes/new/", {**form_for(project), "project": 999999})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert Change.objects.count() == 0


def test_viewer_cannot_open_the_new_change_form(as_user, viewer):
    assert as_user(viewer).get("/changes/new/").status_code == 403


def test_edit_and_see_history(as_user, engineer, change):
    client = as_user(engineer)
    response = client.post(
        f"/changes/FIX-{change.pk}/edit/",
        form_for(change.project, title="Cap the cache at 512 entries"),
    )
    assert response.status_code == 302
    history = client.get(f"/changes/FIX-{change.pk}/?tab=history").content.decode()
    assert "erin" in history
    assert "Cap the cache at 512 entries" in history
    assert change.title in history  # the value before


def test_other_engineer_cannot_edit_in_the_ui(as_user, other_engineer, change):
    client = as_user(other_engineer)
    assert client.get(f"/changes/FIX-{change.pk}/edit/").status_code == 403
    response = client.post(f"/changes/FIX-{change.pk}/edit/", form_for(change.project))
    assert response.status_code == 403
    assert Change.objects.get().title == change.title


def test_missing_csrf_token_is_refused(engineer, project):
    client = Client(enforce_csrf_checks=True)
    client.force_login(engineer)
    response = client.post("/changes/new/", form_for(project))
    assert response.status_code == 403
    assert Change.objects.count() == 0


def test_markup_in_every_text_field_is_escaped(as_user, engineer, project):
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    change = ChangeFactory(
        owner=engineer,
        project=project,
        title=evil,
        reason=evil,
        expected_result=evil,
        command=evil,
        rollback_note=evil,
        files_touched=[evil],
        tags=["ok"],
    )
    client = as_user(engineer)
    for url in ["/changes/", f"/changes/FIX-{change.pk}/"]:
        page = client.get(url).content.decode()
        assert "<script>alert" not in page
        assert "<img src=x" not in page
        assert "&lt;script&gt;alert" in page


def test_list_filters(as_user, viewer, engineer, other_engineer, project):
    ChangeFactory(owner=engineer, project=project, title="Leak in cache.py")
    ChangeFactory(owner=other_engineer, project=project, title="Slow report query")
    client = as_user(viewer)
    assert "Leak in cache.py" in client.get("/changes/?owner=erin").content.decode()
    assert "Slow report query" not in client.get("/changes/?owner=erin").content.decode()
    # Words are for the search index: the words box sends them, with the filters, to search.
    assert 'formaction="/search/"' in client.get("/changes/").content.decode()
    typed = client.get("/changes/?q=cache&owner=erin&page=3")
    assert typed.status_code == 302
    assert typed["Location"] == "/search/?q=cache&owner=erin"
    assert "No changes match" in client.get("/changes/?status=shipped").content.decode()
    bad = client.get("/changes/?status=nonsense")
    assert bad.status_code == 200
    assert "Select a valid choice" in bad.content.decode()


def test_htmx_filter_returns_only_the_results(as_user, viewer, change):
    response = as_user(viewer).get(
        "/changes/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="change-results"
    )
    page = response.content.decode()
    assert change.title in page
    assert "<html" not in page


def test_pagination(as_user, viewer, project, engineer):
    ChangeFactory.create_batch(60, owner=engineer, project=project)
    client = as_user(viewer)
    first = client.get("/changes/").content.decode()
    assert "page 1 of 2" in first
    assert "page 2 of 2" in client.get("/changes/?page=2").content.decode()
    assert client.get("/changes/?page=999").status_code == 200


def test_unknown_change_is_404(as_user, viewer):
    assert as_user(viewer).get("/changes/FIX-999999/").status_code == 404


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_list_page_queries_do_not_grow_with_rows(as_user, viewer, project):
    client = as_user(viewer)
    ChangeFactory.create_batch(5, project=project)
    few = _queries(client, "/changes/")
    ChangeFactory.create_batch(45, project=project)
    many = _queries(client, "/changes/")
    assert few == many


def test_detail_history_queries_do_not_grow_with_entries(as_user, reviewer, change):
    client = as_user(reviewer)
    url = f"/changes/FIX-{change.pk}/?tab=history"
    for i in range(5):
        change_update(actor=reviewer, change=change, title=f"Title {i}")
    few = _queries(client, url)
    for i in range(5, 50):
        change_update(actor=reviewer, change=change, title=f"Title {i}")
    assert audit_history(change).count() == 50
    assert _queries(client, url) == few


def test_errors_are_tied_to_their_fields_for_screen_readers(as_user, engineer, project):
    page = as_user(engineer).post("/changes/new/", form_for(project, title="")).content.decode()
    assert 'aria-invalid="true"' in page
    assert 'aria-describedby="id_title_error"' in page
    assert 'id="id_title_error"' in page


def test_a_change_waiting_for_a_sync_says_when_no_worker_took_it(
    as_user, admin, engineer, tmp_path
):
    from datetime import timedelta

    from django.utils import timezone

    from apps.projects.models import JobKind, RepositoryJob

    project = project_not_synced(admin, tmp_path / "upstream")
    change = change_between_branches(engineer, project)
    client = as_user(engineer)
    page = client.get(change.get_absolute_url()).content.decode()
    assert "Waiting for a worker to sync" in page
    assert "No worker has taken this" not in page, "a worker may still be on its way"
    RepositoryJob.objects.filter(project=project, kind=JobKind.SYNC).update(
        updated=timezone.now() - timedelta(minutes=10)
    )
    page = client.get(change.get_absolute_url()).content.decode()
    assert "No worker has taken this for 10\xa0minutes" in page
    assert page.count("No worker has taken this") == 1
    assert "No worker has taken this for 10\xa0minutes" in (
        client.get(project.get_absolute_url()).content.decode()
    ), "the project page says the same"
