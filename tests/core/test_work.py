"""Claims and the heartbeat thread: work stays its worker's however long one step takes, and a
worker notices when its work was taken over."""

import time

import pytest
from django.db.models import Q

from apps.core import work
from apps.projects.models import JobKind, JobStatus, RepositoryJob

from ..factories import ProjectFactory

# The heartbeat thread has its own connection: it must see committed rows.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fast(settings):
    settings.WORK_HEARTBEAT_SECONDS = 0.2
    settings.WORK_HEARTBEAT_STALE_SECONDS = 1


def _claim(job: RepositoryJob, worker: str) -> int | None:
    claimable = Q(status=JobStatus.QUEUED) | Q(
        status=JobStatus.RUNNING, heartbeat_at__lt=work.stale_before()
    )
    return work.claim(
        RepositoryJob.objects,
        pk=job.pk,
        claimable=claimable,
        worker=worker,
        status=JobStatus.RUNNING,
    )


def _running():
    return RepositoryJob.objects.filter(status=JobStatus.RUNNING)


def test_a_step_longer_than_the_stale_threshold_keeps_its_claim():
    job = RepositoryJob.objects.create(project=ProjectFactory(), kind=JobKind.SYNC)
    attempt = _claim(job, "a")
    assert attempt == 1
    with work.heartbeat(_running(), pk=job.pk, attempt=attempt) as lost:
        time.sleep(2.5)  # one long step, two and a half stale thresholds
        assert _claim(job, "b") is None, "taken from a live worker"
        assert not lost.is_set()
    time.sleep(1.2)
    assert _claim(job, "b") == 2, "a silent worker's work is taken over"


def test_a_worker_whose_work_was_taken_over_is_told():
    job = RepositoryJob.objects.create(project=ProjectFactory(), kind=JobKind.SYNC)
    attempt = _claim(job, "a")
    with work.heartbeat(_running(), pk=job.pk, attempt=attempt) as lost:
        # What another worker's claim does once this one was presumed dead.
        RepositoryJob.objects.filter(pk=job.pk).update(attempts=attempt + 1, worker="b")
        assert lost.wait(timeout=2)
    job.refresh_from_db()
    assert job.worker == "b"
