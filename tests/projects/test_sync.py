"""Projects connected to real repositories: registering, syncing, and what the pages show."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from apps.core import work
from apps.core.audit import audit_history
from apps.core.context import log_context
from apps.projects import git, repository
from apps.projects.models import JobKind, JobStatus, Project, RepositoryJob, SyncStatus
from apps.projects.services import (
    project_create,
    project_sync_enqueue,
    project_sync_request,
    project_update,
    repository_job_claim,
    repository_job_finish,
    repository_jobs_reconcile,
)
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


def test_a_checkout_fetches_once_a_commit_pushed_since_the_last_sync(synced, upstream):
    path, _shas = upstream
    (path / "NEWS").write_text("news\n")
    pushed = commit_all(path, "News", 9)
    with repository.checkout(synced, pushed, worker="w@h") as tree:
        assert (tree / "NEWS").read_text() == "news\n"
    # A commit that the fetch does not bring either fails, saying so in the project's words.
    missing = "0123456789abcdef" * 2 + "01234567"
    with pytest.raises(git.GitError) as excinfo, repository.checkout(synced, missing, worker="w@h"):
        pass
    assert str(excinfo.value) == (
        f"Commit {missing[:12]} is not in the repository of Billing API, even after fetching "
        "it again: was it pushed, or was its branch rewritten?"
    )


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


def test_only_admins_register_and_viewers_do_not_sync(reviewer, viewer, synced):
    with pytest.raises(PermissionDenied):
        project_create(actor=reviewer, name="X", slug="x")
    with pytest.raises(PermissionDenied):
        project_sync_request(actor=viewer, project=synced)


def test_engineers_ask_for_a_sync_audited(
    engineer, as_user, synced, django_capture_on_commit_callbacks
):
    page = as_user(engineer).get("/projects/billing/").content.decode()
    assert "Sync now" in page
    with django_capture_on_commit_callbacks() as callbacks:
        project_sync_request(actor=engineer, project=synced)
    assert len(callbacks) == 1
    assert Project.objects.get().sync_status == SyncStatus.SYNCING
    entry = next(e for e in audit_history(synced) if e.action == "sync")
    assert entry.actor == engineer


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
    assert api_as(engineer).post("/api/projects/search/sync/").status_code == 202


def _stale(settings):
    return timezone.now() - timedelta(seconds=settings.WORK_HEARTBEAT_STALE_SECONDS + 1)


def test_a_sync_is_taken_from_a_dead_worker_but_not_from_a_live_one(synced, settings):
    job = RepositoryJob.objects.get(project=synced, kind=JobKind.SYNC)
    live = {"status": JobStatus.RUNNING, "worker": "w@a", "attempts": 1}
    RepositoryJob.objects.filter(pk=job.pk).update(**live, heartbeat_at=timezone.now())
    sync_project(synced.pk)
    job.refresh_from_db()
    assert (job.status, job.worker) == (JobStatus.RUNNING, "w@a")

    RepositoryJob.objects.filter(pk=job.pk).update(heartbeat_at=_stale(settings))
    sync_project(synced.pk)
    job.refresh_from_db()
    assert (job.status, job.attempts) == (JobStatus.DONE, 2)


def test_a_sync_whose_workers_keep_dying_fails_with_the_reason(synced, settings):
    RepositoryJob.objects.filter(project=synced).update(
        status=JobStatus.RUNNING,
        attempts=work.MAX_ATTEMPTS,
        heartbeat_at=_stale(settings),
        published_at=_stale(settings),
    )
    assert repository_jobs_reconcile() == 0
    job = RepositoryJob.objects.get(project=synced)
    assert (job.status, job.error) == (JobStatus.FAILED, work.GAVE_UP)
    synced.refresh_from_db()
    assert (synced.sync_status, synced.sync_error) == (SyncStatus.FAILED, work.GAVE_UP)


def test_a_new_repository_given_during_a_sync_is_cloned_afresh_after_it(synced, admin, tmp_path):
    other = tmp_path / "other"
    shas = make_service_repo(other)
    (other / "ONLY_HERE").write_text("x\n")
    only_here = commit_all(other, "Only in the new repository", 10)
    running = repository_job_claim(project=synced, kind=JobKind.SYNC, worker="w@a")
    project_update(actor=admin, project=synced, repository_url=str(other))
    repository_job_finish(job=running)
    job = RepositoryJob.objects.get(project=synced)
    assert (job.status, job.fresh) == (JobStatus.QUEUED, True)
    sync_project(synced.pk)
    assert repository.resolve_revisions(synced, "main", "")["base_sha"] == only_here
    assert shas["main"] != only_here


def test_a_sync_that_worked_says_so_and_a_failed_one_does_not(synced, upstream, delivered):
    import shutil

    from apps.projects.events import ProjectSynced

    seen = delivered(ProjectSynced)
    sync_project(synced.pk)
    assert seen == [ProjectSynced(project_id=synced.pk)]
    shutil.rmtree(upstream[0])
    sync_project(synced.pk)
    assert len(seen) == 1, "nothing new to resolve against after a failed sync"


def test_a_sync_resolves_the_changes_that_waited_for_it(synced, engineer, upstream):
    from apps.changes.models import Change
    from apps.changes.revisions import WAITING_FOR_SYNC

    path, _shas = upstream
    (path / "NEWS").write_text("news\n")
    pushed = commit_all(path, "News", 9)
    # Filed against a commit this clone does not have yet: it waits for the next sync.
    change = Change.objects.create(
        project=synced,
        owner=engineer,
        title="t",
        reason="r",
        expected_result="e",
        base_revision="main",
        head_revision=pushed,
        revision_error=WAITING_FOR_SYNC,
    )
    sync_project(synced.pk)
    change.refresh_from_db()
    assert change.head_sha == pushed
    assert change.revision_error == ""


def test_a_sync_queued_without_a_request_does_not_take_an_earlier_requests_id(
    admin, synced, django_capture_on_commit_callbacks
):
    with (
        log_context(request_id="trace-sync-asked"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        project_sync_request(actor=admin, project=synced)
    job = RepositoryJob.objects.get(kind=JobKind.SYNC)
    assert job.request_id == "trace-sync-asked"
    sync_project(synced.pk)

    # Beat's periodic sync reuses the row, with no request in hand.
    with django_capture_on_commit_callbacks(execute=True):
        project_sync_enqueue(synced)
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    assert job.request_id == ""
