"""Projects connected to real repositories: registering, syncing, and what the pages show."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from apps.core.audit import audit_history
from apps.projects import repository
from apps.projects.models import Project, SyncStatus
from apps.projects.services import project_create, project_sync_request, project_update
from apps.projects.tasks import sync_project

from ..repos import commit_all, make_service_repo


@pytest.fixture
def upstream(tmp_path):
    path = tmp_path / "upstream"
    return path, make_service_repo(path)


@pytest.fixture
def synced(admin, upstream, django_capture_on_commit_callbacks):
    path, _shas = upstream
    with django_capture_on_commit_callbacks() as callbacks:
        project = project_create(
            actor=admin, name="Billing API", slug="billing", repository_url=str(path)
        )
    # Registering a repository asks a worker to clone it; here the task runs in-process.
    assert len(callbacks) == 1
    sync_project(project.pk)
    project.refresh_from_db()
    return project


def test_registering_clones_the_repository(synced, upstream):
    assert synced.sync_status == SyncStatus.OK
    assert synced.synced_at is not None
    assert synced.sync_error == ""
    assert repository.has_clone(synced)


def test_sync_fetches_new_commits(synced, upstream):
    path, _shas = upstream
    (path / "NEWS").write_text("news\n")
    new_sha = commit_all(path, "News", 9)
    sync_project(synced.pk)
    assert repository.resolve_revisions(synced, "main", "")["base_sha"] == new_sha


def test_vanished_repository_is_a_clear_error_on_the_project_page(
    synced, upstream, as_user, viewer
):
    import shutil

    shutil.rmtree(upstream[0])
    sync_project(synced.pk)
    synced.refresh_from_db()
    assert synced.sync_status == SyncStatus.FAILED
    assert synced.sync_error
    page = as_user(viewer).get("/projects/billing/").content.decode()
    assert "Sync failed" in page
    assert synced.sync_error[:40] in page
    # The last good clone is kept: revisions still resolve against it.
    assert repository.resolve_revisions(synced, "main", "")["base_sha"]


def test_corrupt_clone_is_cloned_again(synced):
    path = repository.clone_path(synced)
    (path / "HEAD").unlink()
    sync_project(synced.pk)
    synced.refresh_from_db()
    assert synced.sync_status == SyncStatus.OK
    assert repository.has_clone(synced)


def test_changing_the_url_clones_afresh(
    synced, admin, tmp_path, django_capture_on_commit_callbacks
):
    other = tmp_path / "other"
    make_service_repo(other)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        project = project_update(actor=admin, project=synced, repository_url=str(other))
    assert project.sync_status == SyncStatus.NEVER
    assert len(callbacks) == 1
    entry = audit_history(project).first()
    assert entry.after["repository_url"] == str(other)


@pytest.mark.parametrize(
    "url",
    ["ext::sh -c touch% /tmp/pwned", "file:///etc", "-oProxyCommand=touch /tmp/x", "http://x/y"],
)
def test_dangerous_urls_are_refused(admin, url):
    with pytest.raises(ValidationError) as excinfo:
        project_create(actor=admin, name="Evil", slug="evil", repository_url=url)
    assert "repository_url" in excinfo.value.message_dict
    assert not Project.objects.filter(slug="evil").exists()


def test_only_admins_register_and_sync(reviewer, synced):
    with pytest.raises(PermissionDenied):
        project_create(actor=reviewer, name="X", slug="x")
    with pytest.raises(PermissionDenied):
        project_sync_request(actor=reviewer, project=synced)


def test_sync_button(as_user, admin, viewer, synced, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = as_user(admin).post("/projects/billing/sync/")
    assert response.status_code == 302
    assert len(callbacks) == 1
    assert Project.objects.get().sync_status == SyncStatus.SYNCING
    assert as_user(viewer).post("/projects/billing/sync/").status_code == 403


def test_project_pages(as_user, admin, viewer, synced):
    assert "Billing API" in as_user(viewer).get("/projects/").content.decode()
    assert as_user(viewer).get("/projects/new/").status_code == 403
    response = as_user(admin).post(
        "/projects/new/", {"name": "Search", "slug": "search", "repository_url": "ext::sh"}
    )
    assert response.status_code == 200
    assert "transport helpers" in response.content.decode()
    assert not Project.objects.filter(slug="search").exists()


def test_api_projects(api_as, admin, engineer, upstream, django_capture_on_commit_callbacks):
    path, _ = upstream
    body = {"name": "Search", "slug": "search", "repository_url": str(path)}
    assert api_as(engineer).post("/api/projects/", body, format="json").status_code == 403
    with django_capture_on_commit_callbacks() as callbacks:
        created = api_as(admin).post("/api/projects/", body, format="json")
    assert created.status_code == 201
    assert created.json()["sync_status"] == "never"
    assert len(callbacks) == 1
    bad = api_as(admin).post(
        "/api/projects/", {**body, "slug": "x", "repository_url": "ext::sh"}, format="json"
    )
    assert bad.status_code == 400
    assert "repository_url" in bad.json()
    assert api_as(admin).post("/api/projects/search/sync/").status_code == 202
    assert api_as(engineer).post("/api/projects/search/sync/").status_code == 403
