"""Reads about a project's repository that more than one page shows."""

from django.conf import settings

from apps.core.queues import waiting_notice

from .models import JobKind, JobStatus, Project


def sync_waiting(project: Project) -> dict | None:
    """Whether the project's queued sync waits on a worker that has not taken it
    (core/_queue_warning.html says so); None while none is queued or a worker may be coming."""
    queued = project.jobs.filter(kind=JobKind.SYNC, status=JobStatus.QUEUED).first()
    if queued is None:
        return None
    return waiting_notice(since=queued.updated, queue=settings.CELERY_TASK_DEFAULT_QUEUE)
