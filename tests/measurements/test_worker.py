"""Measurements on real worker processes over the real broker: killed mid-way, or their messages
lost, they finish all the same, and nothing of the dead worker is left behind."""

import sys
import time

import psutil
import pytest

from apps.checklists.models import ChecklistItem, ItemState
from apps.checklists.verification import checklist_item_verify_request
from apps.core.audit import audit_history
from apps.core.context import log_context
from apps.measurements.lifecycle import measurement_request
from apps.measurements.models import Measurement, MeasurementStatus, RunStatus

from ..workers import FAST_RECOVERY, purge, wait_for
from .conftest import make_profile

# Quick runs, until the test raises the flag: then a run starts a process that leaves the
# launcher's session (as a daemonising server would) and lasts far past the kill. The flag sits
# in the run's worktree: the sandbox shows the command nothing else of the host.
RUN = """
import os, subprocess, sys, time
x = bytearray(20_000_000)
if os.path.exists(os.environ["SLOW_FLAG"]):
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "escapee"],
                     start_new_session=True)
    time.sleep(30)
time.sleep(0.2)
"""


def escapees() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"]) if "escapee" in (p.info["cmdline"] or [])]


@pytest.fixture(autouse=True)
def _no_escapee_outlives_the_test():
    # A failing test stops before the cleanup it checks: its escapee must not outlive it.
    yield
    for process in escapees():
        process.kill()


def runs_in_flight() -> list[psutil.Process]:
    return [
        p
        for p in psutil.process_iter(["cmdline"])
        if "SLOW_FLAG" in " ".join(p.info["cmdline"] or [])
    ]


def leftover_checkouts(settings) -> list:
    worktrees = settings.DATA_DIR / "worktrees"
    return list(worktrees.glob("*/*"))


def test_measurements_run_only_on_their_environments_queue(
    worker, engineer, demo_change, profile, environment
):
    elsewhere = worker(queues=("default",))
    measurement = measurement_request(actor=engineer, change=demo_change, profile=profile)
    time.sleep(3)
    measurement.refresh_from_db()
    assert measurement.status == MeasurementStatus.QUEUED, "a default worker must not take it"
    elsewhere.kill9()
    worker(queues=(environment.queue,))
    wait_for(
        lambda: Measurement.objects.get().status == MeasurementStatus.DONE,
        what="the measurement to finish on its environment's worker",
        timeout=60,
    )


def test_a_measurement_whose_worker_is_killed_finishes_on_another_within_90_s(
    worker, beat, engineer, demo_change, demo_project, environment, settings
):
    settings.WORK_HEARTBEAT_STALE_SECONDS = int(FAST_RECOVERY["WORK_HEARTBEAT_STALE_SECONDS"])
    profile = make_profile(
        demo_project,
        environment,
        name="slow",
        argv=[sys.executable, "-c", RUN],
        env={"SLOW_FLAG": "slow-flag"},
        timeout_seconds=60,
    )
    beat(env=FAST_RECOVERY)
    first = worker(queues=(environment.queue, "default"), env=FAST_RECOVERY, name="first@%h")
    measurement = measurement_request(actor=engineer, change=demo_change, profile=profile)
    wait_for(lambda: Measurement.objects.get().runs_done >= 2, what="a few runs", timeout=60)
    flags = [tree / "slow-flag" for tree in leftover_checkouts(settings) if tree.is_dir()]
    for flag in flags:
        flag.write_text("")
    wait_for(lambda: escapees(), what="a run to start its escapee", timeout=10)
    # Another worker that could take the measurement, and finds the first one's checkouts
    # in use when it starts.
    worker(queues=(environment.queue, "default"), env=FAST_RECOVERY, name="second@%h")
    assert leftover_checkouts(settings), "a live worker's checkouts are left alone"
    # One run longer than the stale threshold, beat reconciling meanwhile: the live worker
    # keeps heart-beating, so the other one does not take its measurement.
    time.sleep(int(FAST_RECOVERY["WORK_HEARTBEAT_STALE_SECONDS"]) + 2)
    measurement.refresh_from_db()
    assert (measurement.worker.split("@")[0], measurement.attempts) == ("first", 1)
    first.kill9()
    killed_at = time.monotonic()
    for flag in flags:
        flag.unlink(missing_ok=True)
    measurement.refresh_from_db()
    assert measurement.status == MeasurementStatus.RUNNING
    assert leftover_checkouts(settings), "kill -9 runs no cleanup: the checkouts are left"

    wait_for(
        lambda: Measurement.objects.get().status == MeasurementStatus.DONE,
        what="the measurement to finish on the other worker",
        timeout=90 - (time.monotonic() - killed_at),
    )
    measurement.refresh_from_db()
    assert measurement.worker.startswith("second@")
    assert measurement.attempts == 2
    assert measurement.runs.filter(status=RunStatus.DONE).count() == measurement.runs_planned
    assert measurement.runs_done == measurement.runs_planned == 10
    assert leftover_checkouts(settings) == []
    assert escapees() == [], "a process that left the dead worker's run survived"
    assert runs_in_flight() == []


def test_work_whose_messages_the_broker_lost_finishes_within_90_s(
    worker, beat, engineer, demo_change, profile, environment, settings
):
    item = demo_change.checklist.get(title="Run linting")
    ChecklistItem.objects.filter(pk=item.pk).update(argv=[sys.executable, "-c", "print('ok')"])
    item.refresh_from_db()
    # Each asked for by a request of its own (its id set as the request middleware sets it).
    with log_context(request_id="trace-lost-measure"):
        measurement = measurement_request(actor=engineer, change=demo_change, profile=profile)
    with log_context(request_id="trace-lost-verify"):
        checklist_item_verify_request(actor=engineer, item=item, version=item.version)
    # A broker restarted without its data: the messages are gone, the rows still queued.
    assert purge([environment.queue, "default"]) >= 2
    lost_at = time.monotonic()
    started = worker(queues=(environment.queue, "default"), env=FAST_RECOVERY)
    beating = beat(env=FAST_RECOVERY)

    def finished() -> bool:
        item.refresh_from_db()
        return item.state == ItemState.DONE and (
            Measurement.objects.get().status == MeasurementStatus.DONE
        )

    wait_for(finished, what="both to finish", timeout=90 - (time.monotonic() - lost_at))
    # Beat published them again, and the worker still knew which request each came from.
    measured = audit_history(demo_change).get(action="measured")
    assert (measured.actor, measured.request_id) == (None, "trace-lost-measure")
    ticked = audit_history(item).get(action="tick")
    assert (ticked.actor, ticked.request_id) == (None, "trace-lost-verify")
    log = started.log_path.read_text()
    assert f"[trace-lost-measure] measurement {measurement.pk}: starting on" in log
    # The passes said what they did, and nothing of the passes that had nothing to do.
    assert f"published measurements [{measurement.pk}] again" in log
    assert f"published checklist items [{item.pk}] again" in log
    for task in ("measurements", "verifications", "repository_jobs"):
        assert f"reconcile_{task}[" not in log, "Celery's received or succeeded line"
        assert f"Sending due task reconcile-{task.replace('_', '-')}" not in (
            beating.log_path.read_text()
        )
