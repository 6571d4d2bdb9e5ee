"""Measurements on real worker processes over the real broker, including one killed mid-way."""

import sys
import time

import psutil

from apps.measurements.models import Measurement, MeasurementStatus, RunStatus
from apps.measurements.services import measurement_request, measurements_reconcile

from ..workers import wait_for
from .conftest import make_profile

# Quick runs, until the test raises the flag: then a run would last far past the kill.
# The flag sits in the run's worktree: the sandbox shows the command nothing else of the host.
RUN = (
    "import os, time; x = bytearray(20_000_000); "
    "time.sleep(30 if os.path.exists('slow-flag') else 0.4)"
)


def test_measurements_run_only_on_their_environments_queue_and_survive_kill_9(
    worker, engineer, demo_change, demo_project, environment, settings
):
    profile = make_profile(
        demo_project,
        environment,
        name="slow",
        argv=[sys.executable, "-c", RUN, "SLOW_FLAG"],
        timeout_seconds=5,
    )
    settings.MEASUREMENT_HEARTBEAT_GRACE_SECONDS = 1
    grace = {"MEASUREMENT_HEARTBEAT_GRACE_SECONDS": "1"}
    elsewhere = worker(queues=("default",), env=grace)
    measurement = measurement_request(actor=engineer, change=demo_change, profile=profile)
    time.sleep(3)
    measurement.refresh_from_db()
    assert measurement.status == MeasurementStatus.QUEUED, "a default worker must not take it"
    elsewhere.kill9()

    first = worker(queues=(environment.queue,), env=grace)
    wait_for(lambda: Measurement.objects.get().runs_done >= 3, what="a few runs", timeout=90)
    flags = [tree / "slow-flag" for tree in (settings.DATA_DIR / "worktrees").glob("*/*")]
    for flag in flags:
        flag.write_text("")
    time.sleep(1.5)  # the run in flight ends; the next one sleeps
    family = psutil.Process(first.proc.pid).children(recursive=True)
    assert any("SLOW_FLAG" in " ".join(p.cmdline()) for p in family), "a run is in flight"
    first.kill9()
    # Well before that run's own 5 s timeout: its launcher saw the worker die and killed it.
    _gone, alive = psutil.wait_procs(family, timeout=3)
    assert alive == [], f"orphaned after kill -9: {[p.cmdline() for p in alive]}"
    for flag in flags:
        flag.unlink()
    measurement.refresh_from_db()
    assert measurement.status == MeasurementStatus.RUNNING
    done_before_kill = measurement.runs_done

    worker(queues=(environment.queue,), env=grace)
    # The broker may have lost the message with the worker: beat publishes it again once the
    # heartbeat is older than the profile's timeout plus the grace.
    wait_for(lambda: measurements_reconcile() > 0, what="the heartbeat to go stale", timeout=30)
    wait_for(
        lambda: Measurement.objects.get().status == MeasurementStatus.DONE,
        what="the measurement to finish on the new worker",
        timeout=120,
    )
    measurement.refresh_from_db()
    assert measurement.runs.count() == measurement.runs_planned == 10
    assert measurement.runs.filter(status=RunStatus.DONE).count() == 10
    assert measurement.runs_done == 10
    assert measurement.attempts == 2
    assert done_before_kill >= 3
    worktrees = settings.DATA_DIR / "worktrees"
    assert not [p for p in worktrees.rglob("*") if p.is_dir() and p.parent != worktrees]
