"""How long work takes to recover, with the production timings: a script, not a test.

On PostgreSQL and Redis, with real worker and beat processes and the default heartbeat,
staleness and reconcile periods (WORK_* in apps/settings.py):

1. Baseline: request-to-finish of an undisturbed measurement and verification.
2. Kill-to-finish: a worker is killed (kill -9 of its whole process group) in the middle of a
   measurement's run, or of a verification's command; a new worker is started at once; the time
   from the kill until the work is finished on it.
3. Broker-loss-to-finish: a measurement and a verification are queued, then their messages are
   deleted from the broker (as a Redis restarted without its data would); a worker and beat
   run; the time from the loss until both are finished.

It makes a throw-away database beside DATABASE_URL's (dropped at the end) and uses
CELERY_BROKER_URL's Redis database, whose `default` and `measure.bench` queues it empties:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fixledger \
    CELERY_BROKER_URL=redis://127.0.0.1:6379/11 .venv/bin/python tests/benchmarks/recovery.py
"""

import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
SERVER_URL = os.environ.get("DATABASE_URL", "")
if not SERVER_URL.startswith("postgres") or not os.environ.get("CELERY_BROKER_URL", "").startswith(
    "redis"
):
    sys.exit("Set DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis).")
NAME = f"fixledger_recovery_bench_{uuid.uuid4().hex[:8]}"
parts = urlsplit(SERVER_URL)
os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{NAME}"))
os.environ["FIXLEDGER_DATA_DIR"] = tempfile.mkdtemp(prefix="fixledger-recovery-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402

from apps.accounts.models import User  # noqa: E402
from apps.celery_app import app  # noqa: E402
from apps.changes.services import change_create  # noqa: E402
from apps.checklists.models import ChecklistItem, ItemState  # noqa: E402
from apps.checklists.verification import checklist_item_verify_request  # noqa: E402
from apps.measurements.demo import make_demo_repository  # noqa: E402
from apps.measurements.lifecycle import measurement_request  # noqa: E402
from apps.measurements.models import Measurement, MeasurementStatus, Profile  # noqa: E402
from apps.measurements.profiles import profile_save  # noqa: E402
from apps.projects.models import Environment  # noqa: E402
from apps.projects.services import environment_save, project_create  # noqa: E402
from apps.projects.tasks import sync_project  # noqa: E402
from tests.workers import Beat, Worker, wait_for  # noqa: E402

DATA = Path(settings.DATA_DIR)
FLAG = DATA / "slow"
QUEUE = "measure.bench"
# Quick runs; while the flag exists a run (or the verification) lasts far past the kill.
SLOW_WHILE_FLAGGED = (
    "import os, sys, time\ntime.sleep(120 if os.path.exists(sys.argv[1]) else 0.3)\nprint('ok')\n"
)


def admin_url() -> str:
    return urlunsplit(parts._replace(path="/postgres"))


def set_up():
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{NAME}"')
    call_command("migrate", verbosity=0)
    admin = User.objects.create_superuser("ada", "ada@example.com", None)
    repo = DATA / "service"
    make_demo_repository(repo)
    project = project_create(actor=admin, name="Bench", slug="bench", repository_url=str(repo))
    sync_project(project.pk)
    environment = environment_save(actor=None, environment=Environment(name="bench"))
    profile = profile_save(
        actor=None,
        profile=Profile(
            project=project,
            name="slow when flagged",
            environment=environment,
            argv=[sys.executable, "-c", SLOW_WHILE_FLAGGED, str(FLAG)],
            runs_per_side=5,
            warmups=0,
            timeout_seconds=300,
        ),
    )
    return admin, project, profile


def new_change(admin, project, n: int):
    change = change_create(
        actor=admin,
        project=project,
        title=f"Change {n}",
        reason="Benchmark.",
        expected_result="-",
        base_revision="main",
        head_revision="fix/bounded-cache",
    )
    item = change.checklist.get(title="Run linting")
    ChecklistItem.objects.filter(pk=item.pk).update(
        argv=[sys.executable, "-c", SLOW_WHILE_FLAGGED, str(FLAG)], timeout_seconds=300
    )
    item.refresh_from_db()
    return change, item


def purge() -> int:
    with app.connection_for_write() as conn:
        return sum(conn.default_channel.queue_purge(q) or 0 for q in ("default", QUEUE))


def start_worker(name: str) -> Worker:
    return Worker(f"{name}@%h", DATA / f"{name}.log", queues=(QUEUE, "default")).start()


def measurement_done(pk: int) -> bool:
    return Measurement.objects.get(pk=pk).status == MeasurementStatus.DONE


def item_done(pk: int) -> bool:
    return ChecklistItem.objects.get(pk=pk).state == ItemState.DONE


def main() -> None:
    admin, project, profile = set_up()
    purge()
    beat = Beat(DATA / "beat.log").start()
    workers = [start_worker("w0")]
    try:
        change, item = new_change(admin, project, 0)
        started = time.monotonic()
        measurement = measurement_request(actor=admin, change=change, profile=profile)
        wait_for(lambda: measurement_done(measurement.pk), what="baseline measurement", timeout=300)
        baseline_measure = time.monotonic() - started
        started = time.monotonic()
        checklist_item_verify_request(actor=admin, item=item, version=item.version)
        wait_for(lambda: item_done(item.pk), what="baseline verification", timeout=300)
        baseline_verify = time.monotonic() - started

        # Kill mid-measurement.
        change, item = new_change(admin, project, 1)
        measurement = measurement_request(actor=admin, change=change, profile=profile)
        wait_for(
            lambda: Measurement.objects.get(pk=measurement.pk).runs_done >= 2,
            what="a few runs",
            timeout=120,
        )
        FLAG.write_text("")
        time.sleep(1.0)  # the run in flight ends; the next one hangs
        workers[-1].kill9()
        killed = time.monotonic()
        FLAG.unlink()
        workers.append(start_worker("w1"))
        wait_for(lambda: measurement_done(measurement.pk), what="measurement", timeout=600)
        kill_measure = time.monotonic() - killed

        # Kill mid-verification.
        FLAG.write_text("")
        checklist_item_verify_request(actor=admin, item=item, version=item.version)
        wait_for(
            lambda: ChecklistItem.objects.get(pk=item.pk).verification == "running",
            what="the verification to start",
            timeout=60,
        )
        time.sleep(1.0)
        workers[-1].kill9()
        killed = time.monotonic()
        FLAG.unlink()
        workers.append(start_worker("w2"))
        wait_for(lambda: item_done(item.pk), what="verification", timeout=600)
        kill_verify = time.monotonic() - killed

        # Broker loss: queued work whose messages vanish.
        workers[-1].kill9()
        change, item = new_change(admin, project, 2)
        measurement = measurement_request(actor=admin, change=change, profile=profile)
        checklist_item_verify_request(actor=admin, item=item, version=item.version)
        lost_messages = purge()
        lost = time.monotonic()
        workers.append(start_worker("w3"))
        wait_for(
            lambda: measurement_done(measurement.pk) and item_done(item.pk),
            what="work after the broker lost it",
            timeout=600,
        )
        broker_loss = time.monotonic() - lost
    finally:
        for process in [*workers, beat]:
            process.kill9()

    print(
        f"timings: heartbeat every {settings.WORK_HEARTBEAT_SECONDS} s, stale after "
        f"{settings.WORK_HEARTBEAT_STALE_SECONDS} s, reconcile every "
        f"{settings.WORK_RECONCILE_SECONDS} s"
    )
    print(f"baseline, request to finish:   measurement {baseline_measure:6.1f} s")
    print(f"                               verification {baseline_verify:5.1f} s")
    print(f"kill -9 to finish:             measurement {kill_measure:6.1f} s")
    print(f"                               verification {kill_verify:5.1f} s")
    print(
        f"broker loss to finish:         both        {broker_loss:6.1f} s "
        f"({lost_messages} messages lost)"
    )


if __name__ == "__main__":
    try:
        main()
    finally:
        connections.close_all()
        with psycopg.connect(admin_url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
        shutil.rmtree(DATA, ignore_errors=True)
