"""The workers page, /api/workers/, `manage.py workers` and /readyz: live workers, their queues
and work, and the environment queues that no worker consumes, from the broker or the database."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.utils import timezone

from apps.measurements.lifecycle import measurement_request
from apps.measurements.models import Measurement, MeasurementStatus
from apps.operations.fleet import fleet_status
from apps.projects.models import Environment
from apps.projects.services import environment_save

from ..measurements import conftest as measuring

environment = measuring.environment
demo_project = measuring.demo_project
profile = measuring.profile
demo_change = measuring.demo_change


@pytest.fixture(autouse=True)
def _fresh_answers():
    # Probes reuse an answer for a few seconds; each test asks anew.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def staging(db):
    return environment_save(actor=None, environment=Environment(name="staging"))


def run_command() -> tuple[int, str]:
    from io import StringIO

    out = StringIO()
    try:
        call_command("workers", stdout=out)
    except SystemExit as exc:
        return exc.code, out.getvalue()
    return 0, out.getvalue()


def test_live_workers_their_queues_and_the_queue_nobody_consumes(
    worker, api_as, as_user, viewer, environment, staging, client
):
    worker(queues=("default", environment.queue), name="fleet-a@%h")
    body = api_as(viewer).get("/api/workers/").json()
    assert body["source"] == "broker"
    (listed,) = body["workers"]
    assert listed["name"].startswith("fleet-a@")
    assert listed["queues"] == ["default", "measure.local"]
    assert listed["doing"] == []
    assert body["environment_queues"] == ["measure.local", "measure.staging"]
    assert body["unconsumed"] == ["measure.staging"]

    page = as_user(viewer).get("/workers/").content.decode()
    assert listed["name"] in page
    assert "No worker consumes <code>measure.staging</code>" in page

    code, out = run_command()
    assert code == 1, "a probe must see the queue without a consumer"
    assert "WARNING: no worker consumes measure.staging" in out
    assert "measure.local" in out

    ready = client.get("/readyz")
    assert ready.status_code == 200, "a queue without a worker must not take the web tier out"
    assert ready.json()["warnings"] == ["no worker consumes measure.staging (broker)"]


def test_every_queue_consumed_exits_0(worker, environment):
    worker(queues=("default", environment.queue), name="fleet-b@%h")
    code, out = run_command()
    assert code == 0, out
    assert "source: broker" in out


def test_without_answers_the_database_tells_running_work_and_stuck_queues(
    transactional_db, engineer, demo_change, profile, staging
):
    staged = measuring.make_profile(profile.project, staging, name="on staging")
    running = measurement_request(actor=engineer, change=demo_change, profile=profile)
    Measurement.objects.filter(pk=running.pk).update(
        status=MeasurementStatus.RUNNING, worker="ghost@host", heartbeat_at=timezone.now()
    )
    waiting = measurement_request(actor=engineer, change=demo_change, profile=staged)
    fleet = fleet_status(timeout=0.3)
    assert fleet.source == "database"
    assert fleet.unconsumed == [], "work that only just arrived is not stuck yet"
    (ghost,) = fleet.workers
    assert ghost.name == "ghost@host"
    assert ghost.queues is None, "the database cannot tell which queues a worker consumes"
    assert ghost.doing[0].startswith(f"measurement {running.pk} of {demo_change.number}")

    Measurement.objects.filter(pk=waiting.pk).update(created=timezone.now() - timedelta(hours=1))
    fleet = fleet_status(timeout=0.3)
    assert fleet.unconsumed == ["measure.staging"]
    assert "Idle workers" in fleet.note


def test_a_change_page_says_its_measurement_waits_on_a_queue_without_worker(
    transactional_db, as_user, engineer, demo_change, profile, staging
):
    staged = measuring.make_profile(profile.project, staging, name="on staging")
    waiting = measurement_request(actor=engineer, change=demo_change, profile=staged)
    Measurement.objects.filter(pk=waiting.pk).update(created=timezone.now() - timedelta(hours=1))
    page = as_user(engineer).get(f"/changes/{demo_change.number}/").content.decode()
    # No worker answers here, so the page says how long it waited, on which queue.
    assert "No worker has taken this for 1\xa0hour" in page
    assert "consuming queue <code>measure.staging</code>" in page
