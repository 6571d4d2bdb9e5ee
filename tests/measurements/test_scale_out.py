"""Scale-out: a worker on each staging host, each consuming its environment's queue. Work filed
for both runs on each one's own worker, at the same time, and stopping one host's worker leaves
the other's work unaffected."""

import sys

from apps.measurements.lifecycle import measurement_request
from apps.measurements.models import Measurement, MeasurementStatus, RunStatus
from apps.operations.fleet import fleet_status
from apps.projects.models import Environment
from apps.projects.services import environment_save

from ..workers import wait_for
from .conftest import make_profile

# Long enough runs that two measurements overlap and one can be stopped half-way.
RUN = "import time; x = bytearray(10_000_000); time.sleep(0.4)"


def _done(measurement: Measurement) -> bool:
    measurement.refresh_from_db()
    return measurement.status == MeasurementStatus.DONE


def ran_on(measurement: Measurement) -> set[str]:
    """The workers its started runs recorded, by name (a node name up to its `@host`)."""
    runs = measurement.runs.exclude(status=RunStatus.PENDING)
    assert runs.exists(), f"no run of {measurement} started"
    return {run.worker.split("@")[0] for run in runs}


def test_two_staging_hosts_measure_on_their_own_workers(
    worker, engineer, demo_change, demo_project
):
    hosts = {}
    for name in ("staging-a", "staging-b"):
        env = environment_save(actor=None, environment=Environment(name=name))
        profile = make_profile(
            demo_project, env, name=f"on {name}", argv=[sys.executable, "-c", RUN]
        )
        hosts[name] = (env, profile)
    workers = {
        name: worker(queues=(env.queue,), name=f"{name}@%h") for name, (env, _p) in hosts.items()
    }

    a, b = (
        measurement_request(actor=engineer, change=demo_change, profile=hosts[name][1])
        for name in ("staging-a", "staging-b")
    )
    wait_for(lambda: _done(a) and _done(b), what="both measurements", timeout=120)
    assert a.worker.startswith("staging-a@") and b.worker.startswith("staging-b@")
    assert ran_on(a) == {"staging-a"} and ran_on(b) == {"staging-b"}
    assert a.runs_done == a.runs_planned and b.runs_done == b.runs_planned
    assert a.started_at < b.finished_at and b.started_at < a.finished_at, "ran one after another"

    # Stop staging-a's worker half-way through its next measurement.
    a2, b2 = (
        measurement_request(actor=engineer, change=demo_change, profile=hosts[name][1])
        for name in ("staging-a", "staging-b")
    )
    wait_for(lambda: Measurement.objects.get(pk=a2.pk).runs_done >= 2, what="a's runs", timeout=60)
    workers["staging-a"].kill9()
    wait_for(lambda: _done(b2), what="b's measurement after a's worker stopped", timeout=90)
    assert b2.worker.startswith("staging-b@") and ran_on(b2) == {"staging-b"}
    assert b2.attempts == 1, "b's work was never interrupted or handed over"
    a2.refresh_from_db()
    assert a2.status == MeasurementStatus.RUNNING and a2.worker.startswith("staging-a@")
    assert ran_on(a2) == {"staging-a"}
    assert a2.runs_done < a2.runs_planned, "nobody else consumes staging-a's queue"

    fleet = fleet_status()
    assert [w.name.split("@")[0] for w in fleet.workers] == ["staging-b"]
    assert "measure.staging-a" in fleet.unconsumed
    assert "measure.staging-b" not in fleet.unconsumed
