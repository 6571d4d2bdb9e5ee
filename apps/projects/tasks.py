"""Repository work on workers: thin shells around apps.projects.repository and services."""

import logging

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from . import git, repository
from .models import JobKind, Project
from .services import (
    repository_job_alive,
    repository_job_claim,
    repository_job_finish,
    repository_job_request,
    repository_jobs_reconcile,
)

log = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True)
def sync_project(self, project_id: int, fresh: bool = False) -> None:
    """Clone or fetch one project's repository (changes that waited for it resolve then)."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None or not project.repository_url:
        return
    job = repository_job_claim(
        project=project, kind=JobKind.SYNC, worker=self.request.hostname or "worker"
    )
    if job is None:
        return  # a live worker is syncing it
    try:
        with repository_job_alive(job):
            repository.sync(project, fresh=fresh or job.fresh)
    except git.GitError as exc:
        log.warning("sync of %s failed: %s", project, exc)
        repository_job_finish(job=job, error=str(exc))
        return
    # Changes waiting for this clone resolve their revisions on ProjectSynced, here, after it.
    repository_job_finish(job=job)


@shared_task(bind=True, acks_late=True)
def push_tag(self, project_id: int, tag: str) -> None:
    """Best effort: the tag is made in the clone; origin gets it if the worker may push."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return
    job = repository_job_claim(
        project=project, kind=JobKind.PUSH_TAG, ref=tag, worker=self.request.hostname or "worker"
    )
    if job is None:
        return
    try:
        with repository_job_alive(job), repository.locked(project) as path:
            git.tag_push(path, tag)
    except git.GitError as exc:
        log.warning("could not push %s of %s: %s", tag, project, exc)
        repository_job_finish(job=job, error=str(exc))
        return
    repository_job_finish(job=job)


@shared_task
def sync_all_projects() -> None:
    for project in Project.objects.exclude(repository_url=""):
        repository_job_request(project=project, kind=JobKind.SYNC)


@shared_task
def reconcile_repository_jobs() -> None:
    repository_jobs_reconcile()
    # Beat's worker cleans its own host; workers elsewhere do so when they start or claim work.
    repository.remove_dead_worktrees()


@shared_task
def prune_stale_worktrees() -> None:
    # Anything older than the longest a task may run cannot belong to a live measurement.
    older_than = settings.CELERY_TASK_TIME_LIMIT + 600
    removed = repository.prune_worktrees(
        root=settings.DATA_DIR / "worktrees", older_than_seconds=older_than
    )
    if removed:
        log.info("removed %d stale worktrees", len(removed))


@worker_ready.connect
def _clear_own_worktrees(sender, **kwargs) -> None:
    removed = repository.remove_dead_worktrees()
    removed += repository.clear_worker_worktrees(sender.hostname)
    if removed:
        log.info("removed %d worktrees left by dead workers", len(removed))
