"""Queue latency: from *Measure* to the first run starting, over 20 measurements, on the broker
and database in the environment. A script, not a test.

One worker consumes the measurements' environment queue; each measurement is requested once
the previous one finished, so the figure is the path through the broker and the worker's claim,
not time spent behind other work. Printed: p50 and p95 of request-to-first-run, and, in the same
run, of request-to-claim (the worker took the row) as the baseline that the first run adds its
checkout and sandbox start-up to.

    # the embedded default: SQLite and the filesystem broker, in a throw-away folder
    env -u DATABASE_URL -u CELERY_BROKER_URL .venv/bin/python tests/benchmarks/queue_latency.py
    # PostgreSQL (a throw-away database beside DATABASE_URL's) and Redis
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fixledger \
    CELERY_BROKER_URL=redis://127.0.0.1:6379/11 .venv/bin/python tests/benchmarks/queue_latency.py
"""

import os
import shutil
import statistics
import sys
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
SERVER_URL = os.environ.get("DATABASE_URL", "")
NAME = f"fixledger_latency_bench_{uuid.uuid4().hex[:8]}"
parts = urlsplit(SERVER_URL)
if SERVER_URL.startswith("postgres"):
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{NAME}"))
os.environ["FIXLEDGER_DATA_DIR"] = tempfile.mkdtemp(prefix="fixledger-latency-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.settings")
MEASUREMENTS = 20

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402

from apps.accounts.models import User  # noqa: E402
from apps.changes.services import change_create  # noqa: E402
from apps.measurements.demo import make_demo_repository  # noqa: E402
from apps.measurements.lifecycle import measurement_request  # noqa: E402
from apps.measurements.models import Measurement, MeasurementStatus, Profile  # noqa: E402
from apps.measurements.profiles import profile_save  # noqa: E402
from apps.projects.models import Environment  # noqa: E402
from apps.projects.services import environment_save, project_create  # noqa: E402
from apps.projects.tasks import sync_project  # noqa: E402
from tests.workers import Worker, wait_for  # noqa: E402

DATA = Path(settings.DATA_DIR)


def admin_url() -> str:
    return urlunsplit(parts._replace(path="/postgres"))


def set_up():
    if SERVER_URL.startswith("postgres"):
        import psycopg

        with psycopg.connect(admin_url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{NAME}"')
    call_command("migrate", verbosity=0)
    admin = User.objects.create_superuser("ada", "ada@example.com", None)
    make_demo_repository(DATA / "service")
    project = project_create(
        actor=admin, name="Bench", slug="bench", repository_url=str(DATA / "service")
    )
    sync_project(project.pk)
    environment = environment_save(actor=None, environment=Environment(name="latency"))
    profile = profile_save(
        actor=None,
        profile=Profile(
            project=project,
            name="quick",
            environment=environment,
            argv=[sys.executable, "-c", "pass"],
            runs_per_side=5,
            max_runs_per_side=5,
            warmups=0,
            timeout_seconds=60,
        ),
    )
    return admin, project, profile, environment


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main() -> None:
    admin, project, profile, environment = set_up()
    worker = Worker("latency@%h", DATA / "worker.log", queues=(environment.queue,)).start()
    to_claim, to_first_run = [], []
    try:
        for n in range(MEASUREMENTS):
            change = change_create(
                actor=admin,
                project=project,
                title=f"Change {n}",
                reason="Benchmark.",
                expected_result="-",
                base_revision="main",
                head_revision="fix/bounded-cache",
            )
            measurement = measurement_request(actor=admin, change=change, profile=profile)
            wait_for(
                lambda pk=measurement.pk: (
                    Measurement.objects.get(pk=pk).status
                    in (MeasurementStatus.DONE, MeasurementStatus.FAILED)
                ),
                what="the measurement",
                timeout=120,
            )
            measurement.refresh_from_db()
            first_run = measurement.runs.order_by("started_at").first().started_at
            to_claim.append((measurement.started_at - measurement.created).total_seconds())
            to_first_run.append((first_run - measurement.created).total_seconds())
    finally:
        worker.kill9()
    database = connections["default"].vendor
    broker = settings.CELERY_BROKER_URL.split(":", 1)[0]
    print(f"{database} + {broker} broker, {MEASUREMENTS} measurements, one worker:")
    for label, values in (("request to claim", to_claim), ("request to first run", to_first_run)):
        p50, p95 = percentile(values, 50), percentile(values, 95)
        print(f"  {label:22s} p50 {p50:6.2f} s   p95 {p95:6.2f} s")


if __name__ == "__main__":
    try:
        main()
    finally:
        connections.close_all()
        if SERVER_URL.startswith("postgres"):
            import psycopg

            with psycopg.connect(admin_url(), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
        shutil.rmtree(DATA, ignore_errors=True)
