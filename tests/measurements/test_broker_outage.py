"""Work asked for while the broker is down: accepted (the rows are the truth), published later."""

import contextlib
import time

import pytest
from celery.signals import before_task_publish

from apps.celery_app import app
from apps.checklists.models import ChecklistItem, VerificationStatus
from apps.checklists.verification import verifications_reconcile
from apps.core import work
from apps.core.tasklog import REQUEST_ID_HEADER
from apps.measurements.models import Measurement, MeasurementStatus
from apps.measurements.reports import measurements_reconcile
from apps.projects.models import JobKind, RepositoryJob
from apps.projects.services import repository_jobs_reconcile

from ..workers import purge
from .conftest import make_profile


@contextlib.contextmanager
def broker_down():
    """This process's broker at a closed port: an outage, without stopping the shared broker."""
    # Publishing uses the write URL; the read URL (CELERY_BROKER_URL) is the environment's.
    saved = app.conf.get("broker_write_url"), app.conf.broker_transport_options

    def reconnect() -> None:
        # Celery keeps its connection and producer pools; a new URL needs new ones.
        app._pool = None
        app.amqp._producer_pool = None

    app.conf.broker_write_url, app.conf.broker_transport_options = "redis://127.0.0.1:1/0", {}
    reconnect()
    try:
        yield
    finally:
        app.conf.broker_write_url, app.conf.broker_transport_options = saved
        reconnect()


@pytest.fixture(autouse=True)
def _leave_no_message(environment):
    yield
    # No worker consumed what the test published: the next test's worker must not either.
    purge([environment.queue, "default"])


@contextlib.contextmanager
def published_headers():
    """(task name, request id header) of each message published within the block."""
    sent: list[tuple[str, str | None]] = []

    def record(sender=None, headers=None, **kwargs):
        sent.append((sender, headers.get(REQUEST_ID_HEADER)))

    before_task_publish.connect(record, weak=False)
    try:
        yield sent
    finally:
        before_task_publish.disconnect(record)


@pytest.mark.django_db(transaction=True)
def test_work_asked_for_during_a_broker_outage_is_accepted_and_published_later(
    api_as, as_user, admin, engineer, demo_change, demo_project, environment, profile
):
    other = make_profile(demo_project, environment, name="other")
    item = demo_change.checklist.get(title="Run linting")
    ChecklistItem.objects.filter(pk=item.pk).update(argv=["true"])
    api = api_as(engineer)
    with broker_down():
        started = time.monotonic()
        measured = api.post(
            "/api/measurements/",
            {"change": demo_change.number, "profile": profile.pk},
            format="json",
            HTTP_X_REQUEST_ID="trace-measure-api",
        )
        assert time.monotonic() - started < 10, "a request must not hang on a dead broker"
        assert measured.status_code == 202, measured.content
        assert measured.json()["detail"] == work.BROKER_DOWN
        assert measured.json()["status"] == MeasurementStatus.QUEUED

        page = as_user(engineer).post(
            f"/changes/{demo_change.number}/measure/",
            {"profile": other.pk},
            follow=True,
            HTTP_X_REQUEST_ID="trace-measure-page",
        )
        assert page.status_code == 200
        assert work.BROKER_DOWN in page.content.decode()

        verified = api.post(
            f"/api/changes/{demo_change.number}/checklist/{item.pk}/verify/",
            {"version": item.version},
            format="json",
            HTTP_X_REQUEST_ID="trace-verify",
        )
        assert verified.status_code == 202, verified.content
        assert verified.json()["detail"] == work.BROKER_DOWN

        synced = api_as(admin).post(
            f"/api/projects/{demo_project.slug}/sync/", HTTP_X_REQUEST_ID="trace-sync"
        )
        assert synced.status_code == 202
        assert synced.json()["detail"] == work.BROKER_DOWN

        # Beat's passes meanwhile fail quietly, and leave the work due.
        assert measurements_reconcile() == 0

    assert Measurement.objects.filter(published_at__isnull=True).count() == 2
    item.refresh_from_db()
    assert item.verification == VerificationStatus.QUEUED
    # The broker is back: the next pass publishes everything that waited, each message under
    # the id of the request that asked for the work (beat itself has none).
    with published_headers() as sent:
        assert measurements_reconcile() == 2
        assert verifications_reconcile() == 1
        assert repository_jobs_reconcile() == 1
    assert sorted(sent) == [
        ("apps.checklists.tasks.verify_item", "trace-verify"),
        ("apps.measurements.tasks.measure", "trace-measure-api"),
        ("apps.measurements.tasks.measure", "trace-measure-page"),
        ("apps.projects.tasks.sync_project", "trace-sync"),
    ]
    assert not Measurement.objects.filter(published_at__isnull=True).exists()
    assert RepositoryJob.objects.get(kind=JobKind.SYNC).published_at is not None
