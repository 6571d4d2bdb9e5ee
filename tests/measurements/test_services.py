"""Measuring a change: who may, what gets planned, and how a worker's reports are stored."""

import logging
import os
import sys
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from apps.changes.models import ChangeStatus
from apps.changes.services import change_create
from apps.measurements.execution import execute
from apps.measurements.lifecycle import (
    measurement_calibrate,
    measurement_cancel,
    measurement_request,
    plan_sides,
)
from apps.measurements.models import (
    Measurement,
    MeasurementStatus,
    Profile,
    Run,
    RunStatus,
    Side,
)
from apps.measurements.profiles import profile_save
from apps.measurements.reports import MAX_ATTEMPTS, measurements_reconcile

from .conftest import make_profile, measure


def test_plan_interleaves_in_randomised_blocks():
    plan = plan_sides(runs_per_side=10, warmups=1, seed=7)
    assert plan[:2] == [(Side.BEFORE, True), (Side.AFTER, True)]
    blocks = [plan[i : i + 2] for i in range(2, len(plan), 2)]
    assert all({side for side, _ in block} == {Side.BEFORE, Side.AFTER} for block in blocks)
    firsts = {block[0][0] for block in blocks}
    assert firsts == {Side.BEFORE, Side.AFTER}, "neither side may always go first"
    assert plan == plan_sides(runs_per_side=10, warmups=1, seed=7)


def test_request_plans_every_run_and_publishes_on_commit(
    engineer, demo_change, profile, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        measurement = measurement_request(actor=engineer, change=demo_change, profile=profile)
    assert len(callbacks) == 1
    assert measurement.runs_planned == 10
    assert measurement.runs.count() == 10
    assert measurement.base_sha == demo_change.base_sha
    demo_change.refresh_from_db()
    assert demo_change.status == ChangeStatus.MEASURING


@pytest.mark.parametrize("persona", ["viewer", "other_engineer"])
def test_only_owner_reviewers_and_admins_measure(request, persona, demo_change, profile):
    with pytest.raises(PermissionDenied):
        measurement_request(
            actor=request.getfixturevalue(persona), change=demo_change, profile=profile
        )
    assert not Measurement.objects.exists()


def test_unresolved_revisions_cannot_be_measured(engineer, demo_project, profile):
    change = change_create(
        actor=engineer, project=demo_project, title="t", reason="r", expected_result="e"
    )
    with pytest.raises(ValidationError, match="Resolve the before and after revisions"):
        measurement_request(actor=engineer, change=change, profile=profile)


def test_a_profile_of_another_project_is_refused(engineer, demo_change, environment, admin):
    from apps.projects.services import project_create

    other = project_create(actor=admin, name="Other", slug="other")
    with pytest.raises(ValidationError, match="another project"):
        measurement_request(
            actor=engineer, change=demo_change, profile=make_profile(other, environment)
        )


def test_one_active_measurement_per_profile(engineer, demo_change, profile):
    measurement_request(actor=engineer, change=demo_change, profile=profile)
    with pytest.raises(ValidationError, match="already measuring"):
        measurement_request(actor=engineer, change=demo_change, profile=profile)


def test_only_admins_define_profiles(reviewer, demo_project, environment):
    unsaved = Profile(project=demo_project, environment=environment, name="x", argv=["true"])
    with pytest.raises(PermissionDenied):
        profile_save(actor=reviewer, profile=unsaved)
    assert not Profile.objects.filter(name="x").exists()


@pytest.mark.parametrize("argv", ["python bench.py", [], [""], ["ok", 3], ["a\x00b"], ["x"] * 101])
def test_profile_commands_must_be_argv_lists(admin, demo_project, environment, argv):
    with pytest.raises(ValidationError):
        make_profile(demo_project, environment, argv=argv)


def test_measure_in_process(engineer, demo_change, profile, settings):
    measurement = measurement_request(actor=engineer, change=demo_change, profile=profile)
    execute(measurement_id=measurement.pk, worker="w1@test")
    measurement.refresh_from_db()
    assert measurement.status == MeasurementStatus.DONE, measurement.error
    assert measurement.runs_done == measurement.runs_planned == 10
    verdicts = {r["metric"]: r["verdict"] for r in measurement.results}
    assert verdicts["peak_rss"] == "improved"
    # The METRIC line the demo prints is compared like the built-in metrics.
    assert verdicts["bytes_served"] == "no detectable change"
    assert list(verdicts)[:5] == ["peak_rss", "wall", "cpu", "user_cpu", "system_cpu"]
    assert measurement.expectation == "met"
    assert {r.status for r in measurement.runs.all()} == {RunStatus.DONE}
    demo_change.refresh_from_db()
    assert demo_change.status == ChangeStatus.READY
    # Checkouts are gone once the measurement ends.
    assert not any((settings.DATA_DIR / "worktrees").rglob("service.py"))

    # A second delivery of the same task does nothing.
    finished = measurement.finished_at
    execute(measurement_id=measurement.pk, worker="w2@test")
    measurement.refresh_from_db()
    assert measurement.finished_at == finished
    assert measurement.worker == "w1@test"
    assert Run.objects.filter(measurement=measurement).count() == 10


def test_a_dead_workers_measurement_resumes_without_duplicates(engineer, demo_change, profile):
    measurement = measurement_request(actor=engineer, change=demo_change, profile=profile)
    runs = list(measurement.runs.order_by("sequence"))
    # What a worker killed mid-run leaves: three runs done, one started and never finished.
    for run in runs[:3]:
        Run.objects.filter(pk=run.pk).update(
            status=RunStatus.DONE, peak_rss_bytes=70_000_000, wall_seconds=0.2, attempt=1
        )
    Run.objects.filter(pk=runs[3].pk).update(status=RunStatus.RUNNING, attempt=1)
    Measurement.objects.filter(pk=measurement.pk).update(
        status=MeasurementStatus.RUNNING,
        worker="dead@test",
        attempts=1,
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )
    execute(measurement_id=measurement.pk, worker="alive@test")
    measurement.refresh_from_db()
    assert measurement.status == MeasurementStatus.DONE
    assert measurement.attempts == 2
    assert measurement.runs.count() == 10
    assert measurement.runs.filter(status=RunStatus.DONE).count() == 10
    assert measurement.runs.get(sequence=3).attempt == 2
    assert measurement.runs.get(sequence=0).attempt == 1, "finished runs are not run again"


def test_a_live_worker_keeps_its_measurement(engineer, demo_change, profile):
    measurement = measurement_request(actor=engineer, change=demo_change, profile=profile)
    Measurement.objects.filter(pk=measurement.pk).update(
        status=MeasurementStatus.RUNNING, worker="busy@test", heartbeat_at=timezone.now()
    )
    execute(measurement_id=measurement.pk, worker="other@test")
    measurement.refresh_from_db()
    assert measurement.worker == "busy@test"
    assert measurement.runs.filter(status=RunStatus.PENDING).count() == 10


def test_attempts_are_capped(engineer, demo_change, profile):
    measurement = measurement_request(actor=engineer, change=demo_change, profile=profile)
    Measurement.objects.filter(pk=measurement.pk).update(attempts=3)
    execute(measurement_id=measurement.pk, worker="w@test")
    measurement.refresh_from_db()
    assert measurement.status == MeasurementStatus.FAILED
    assert "Gave up after 3 attempts" in measurement.error


def test_a_hung_command_times_out_and_the_measurement_ends(
    engineer, demo_change, demo_project, environment
):
    hung = make_profile(
        demo_project,
        environment,
        name="hangs",
        argv=[sys.executable, "-c", "import time; time.sleep(60)"],
        timeout_seconds=1,
    )
    measurement = measure(engineer, demo_change, hung)
    assert measurement.status == MeasurementStatus.DONE
    failures = set(measurement.runs.values_list("failure", flat=True))
    assert len(failures) == 1
    assert "timed out after 1 s" in failures.pop()
    assert {r["verdict"] for r in measurement.results} == {"inconclusive"}


def test_a_failing_setup_fails_the_measurement_clearly(
    engineer, demo_change, demo_project, environment
):
    broken = make_profile(
        demo_project,
        environment,
        name="broken setup",
        setup_argv=[sys.executable, "-c", "raise SystemExit('no compiler here')"],
    )
    measurement = measure(engineer, demo_change, broken)
    assert measurement.status == MeasurementStatus.FAILED
    assert "setup step failed on the before revision" in measurement.error
    assert "no compiler here" in measurement.error
    demo_change.refresh_from_db()
    assert demo_change.status == ChangeStatus.READY


def test_cancel(engineer, viewer, demo_change, profile):
    measurement = measurement_request(actor=engineer, change=demo_change, profile=profile)
    with pytest.raises(PermissionDenied):
        measurement_cancel(actor=viewer, measurement=measurement)
    measurement_cancel(actor=engineer, measurement=measurement)
    execute(measurement_id=measurement.pk, worker="w@test")
    measurement.refresh_from_db()
    assert measurement.status == MeasurementStatus.CANCELLED
    assert measurement.runs_done == 0


def test_calibration_records_the_resolution(engineer, profile):
    measurement = measurement_calibrate(actor=engineer, profile=profile, revision="main")
    assert measurement.base_sha == measurement.head_sha
    execute(measurement_id=measurement.pk, worker="w@test")
    profile.refresh_from_db()
    assert profile.calibrated_at is not None
    assert profile.resolution["peak_rss"]["resolution"] > 0
    verdicts = {r["metric"]: r["verdict"] for r in Measurement.objects.get().results}
    # Memory of the same commit must not move. Timing at 5 runs on a machine busy with the
    # rest of the suite may cross alpha now and then; the false-positive rate is what
    # tests/benchmarks/measure_accuracy.py measures, with real runs on a quiet machine.
    assert verdicts["peak_rss"] == "no detectable change", verdicts


def test_calibration_of_an_unknown_revision(engineer, profile):
    with pytest.raises(ValidationError) as excinfo:
        measurement_calibrate(actor=engineer, profile=profile, revision="nope")
    assert "revision" in excinfo.value.message_dict


def reconcile_lines(caplog) -> list[str]:
    """What beat's passes logged at INFO or above."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "apps.core.work" and r.levelno >= logging.INFO
    ]


def test_reconcile_publishes_stale_and_lost_work_once_per_period(
    engineer, demo_change, profile, settings, caplog
):
    measurement = measurement_request(actor=engineer, change=demo_change, profile=profile)
    assert measurements_reconcile() == 0, "fresh work is left alone"
    assert reconcile_lines(caplog) == [], "a pass with nothing to do is silent"
    long_ago = timezone.now() - timedelta(seconds=settings.WORK_HEARTBEAT_STALE_SECONDS + 1)
    Measurement.objects.filter(pk=measurement.pk).update(published_at=long_ago)
    assert measurements_reconcile() == 1, "published long ago and never claimed: lost"
    assert reconcile_lines(caplog) == [f"published measurements [{measurement.pk}] again"]
    assert measurements_reconcile() == 0, "just published again: not before the next period"
    Measurement.objects.filter(pk=measurement.pk).update(
        status=MeasurementStatus.RUNNING, heartbeat_at=long_ago, published_at=long_ago, attempts=1
    )
    assert measurements_reconcile() == 1, "its worker stopped heart-beating"


def test_reconcile_ends_work_that_used_up_its_attempts_and_resets_its_runs(
    engineer, demo_change, profile, settings, caplog
):
    measurement = measurement_request(actor=engineer, change=demo_change, profile=profile)
    run = measurement.runs.first()
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    long_ago = timezone.now() - timedelta(seconds=settings.WORK_HEARTBEAT_STALE_SECONDS + 1)
    Measurement.objects.filter(pk=measurement.pk).update(
        status=MeasurementStatus.RUNNING,
        heartbeat_at=long_ago,
        published_at=long_ago,
        attempts=MAX_ATTEMPTS,
    )
    assert measurements_reconcile() == 0
    assert reconcile_lines(caplog) == [
        f"gave up measurements [{measurement.pk}] after {MAX_ATTEMPTS} attempts"
    ]
    measurement.refresh_from_db()
    assert measurement.status == MeasurementStatus.FAILED
    assert (
        measurement.error
        == f"Gave up after {MAX_ATTEMPTS} attempts: the workers running it kept dying."
    )
    assert not measurement.runs.filter(status=RunStatus.RUNNING).exists(), "no run left running"
    demo_change.refresh_from_db()
    assert demo_change.status != ChangeStatus.MEASURING


def test_attribution_names_the_line_that_stopped_holding_memory(
    engineer, demo_change, demo_project, environment, settings
):
    traced = make_profile(demo_project, environment, name="traced", attribution=True)
    measurement = measure(engineer, demo_change, traced)
    assert measurement.status == MeasurementStatus.DONE, measurement.error
    top = measurement.attribution[0]
    # The cached response bodies: about 58 MB held before, a few hundred kB after.
    assert top["file"] == "service.py"
    assert top["diff"] < -50_000_000
    assert top["before"] > 50_000_000
    assert not any((settings.DATA_DIR / "worktrees").rglob("service.py"))


def test_attribution_is_skipped_for_commands_that_are_not_python_scripts(
    engineer, demo_change, demo_project, environment
):
    traced = make_profile(
        demo_project,
        environment,
        name="inline",
        argv=[sys.executable, "-c", "pass"],
        attribution=True,
    )
    measurement = measure(engineer, demo_change, traced)
    assert measurement.attribution == []


def test_a_profile_may_stop_at_the_first_failed_run(
    engineer, demo_change, demo_project, environment
):
    strict = make_profile(
        demo_project,
        environment,
        name="strict",
        argv=[sys.executable, "-c", "raise SystemExit(3)"],
        stop_on_failure=True,
    )
    measurement = measure(engineer, demo_change, strict)
    assert measurement.status == MeasurementStatus.FAILED
    assert "Run 1" in measurement.error
    assert "exited with code 3" in measurement.error
    assert measurement.runs_done == 1


def test_setup_steps_and_runs_see_nothing_of_fixledger(
    engineer, demo_change, demo_project, environment, settings
):
    # Reads the worker's secret key, leaves a mark in its data folder, counts the processes.
    peek = (
        "import os, sys\n"
        "read = False\n"
        "try:\n"
        "    print('READ', open(sys.argv[1]).read())\n"
        "    read = True\n"
        "except OSError as exc:\n"
        "    print('blocked', exc.strerror)\n"
        "try:\n"
        "    open(sys.argv[2], 'w').write('escaped')\n"
        "except OSError:\n"
        "    pass\n"
        "print('METRIC processes_seen=%d' % sum(p.isdigit() for p in os.listdir('/proc')))\n"
    )
    secret, mark = settings.DATA_DIR / "secret_key", settings.DATA_DIR / "was-here"
    secret.write_text("fixledger-test-key")
    argv = [sys.executable, "-c", peek, str(secret), str(mark)]
    profile = make_profile(
        demo_project,
        environment,
        name="peek",
        argv=argv,
        # A setup step that reads the key fails the measurement.
        setup_argv=[*argv[:2], peek + "sys.exit(read)", *argv[3:]],
    )
    measurement = measure(engineer, demo_change, profile)
    assert measurement.status == MeasurementStatus.DONE, measurement.error
    runs = list(measurement.runs.all())
    assert all(run.sandboxed for run in runs)
    assert all("blocked No such file or directory" in run.output_tail for run in runs)
    assert all(run.metrics["processes_seen"][0] == 2 for run in runs)
    assert secret.read_text() == "fixledger-test-key" and not mark.exists()


@pytest.mark.config_independent
def test_attribution_does_not_follow_a_dump_the_revision_turned_into_a_link(tmp_path):
    from apps.measurements.attribution import _load

    secret = tmp_path / "secret.json"
    secret.write_text('[["/etc/fixledger/fixledger.env", 1, 2, 3]]')
    link = tmp_path / "dump.json"
    link.symlink_to(secret)
    assert _load(secret) == {("/etc/fixledger/fixledger.env", 1): (2, 3)}
    assert _load(link) is None
    os.mkfifo(tmp_path / "fifo")  # a reader would block on it forever
    assert _load(tmp_path / "fifo") is None
    secret.write_text('[["f", 1, "2", 3]]')
    assert _load(secret) is None


def test_a_worker_that_cannot_sandbox_refuses_to_measure(engineer, demo_change, profile, settings):
    settings.SANDBOX_READONLY_FOLDERS = [str(settings.DATA_DIR)]  # refused: it holds the data
    settings.ALLOW_UNSANDBOXED_RUNS = False
    measurement = measure(engineer, demo_change, profile)
    assert measurement.status == MeasurementStatus.FAILED
    assert measurement.error.startswith("This worker cannot sandbox: the sandbox would show")
    assert measurement.runs_done == 0
