"""Repository work on workers: thin shells around apps.projects.repository and services."""

import logging

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from . import git, repository
from .models import Project
from .services import project_record_sync

log = logging.getLogger(__name__)


@shared_task(acks_late=True)
def sync_project(project_id: int, fresh: bool = False) -> None:
    """Clone or fetch one project's repository, then resolve changes that waited for it."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None or not project.repository_url:
        return
    try:
        repository.sync(project, fresh=fresh)
    except git.GitError as exc:
        log.warning("sync of %s failed: %s", project, exc)
        project_record_sync(project=project, error=str(exc))
        return
    project_record_sync(project=project)
    from apps.changes.services import change_refresh_revisions_pending

    change_refresh_revisions_pending(project=project)


@shared_task
def sync_all_projects() -> None:
    for pk in Project.objects.exclude(repository_url="").values_list("pk", flat=True):
        sync_project.delay(pk)


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
    removed = repository.clear_worker_worktrees(sender.hostname)
    if removed:
        log.info("removed %d worktrees left by this worker's previous run", len(removed))
