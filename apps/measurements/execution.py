"""What a worker does with one measurement: check out, set up, run interleaved, conclude."""

import contextlib
import logging
from pathlib import Path

from apps.projects import git, repository

from .attribution import attribute, is_python_command
from .lifecycle import measurement_snapshot_wait
from .models import HttpTarget, Measurement, ProfileKind, Run, RunStatus, Side
from .reports import (
    measurement_alive,
    measurement_claim,
    measurement_extend,
    measurement_fail,
    measurement_finish,
    measurement_heartbeat,
    measurement_record_attribution,
    measurement_record_config,
    run_claim,
    run_finish,
)
from .sandbox import CannotSandbox

log = logging.getLogger(__name__)


def _runner():
    from .runner import CommandRunner
    from .sandbox import for_this_worker

    return CommandRunner(sandbox=for_this_worker())


def execute(*, measurement_id: int, worker: str) -> None:
    measurement = measurement_claim(measurement_id=measurement_id, worker=worker)
    if measurement is None:
        return  # someone live holds it, or it is over: a second delivery does nothing
    # What a dead worker left on this host would compete with the runs.
    repository.remove_dead_worktrees()
    try:
        with measurement_alive(measurement=measurement):
            _execute(measurement, worker)
    except (git.GitError, CannotSandbox) as exc:
        measurement_fail(measurement_id=measurement.pk, error=str(exc))
    except Exception as exc:
        log.exception("measurement %s failed", measurement.pk)
        measurement_fail(measurement_id=measurement.pk, error=f"Internal error: {exc}")
        raise


def _execute(measurement: Measurement, worker: str) -> None:
    profile = measurement.profile
    project = profile.project
    runner = _runner()  # before anything else: a worker that cannot sandbox refuses the work
    if not measurement_heartbeat(measurement=measurement, phase="syncing the repository"):
        return
    if not repository.has_clone(project):
        repository.sync(project)
    if not measurement.config_at_start:  # a resumed or live staging one keeps its first
        measurement_record_config(
            measurement=measurement, start=repository.config_fingerprint(profile.environment)
        )
    limits = {
        "timeout": float(profile.timeout_seconds),
        "memory_limit_bytes": profile.memory_limit_mb * 1024 * 1024
        if profile.memory_limit_mb
        else None,
    }
    live = profile.kind == ProfileKind.HTTP and profile.http_target == HttpTarget.STAGING
    with contextlib.ExitStack() as stack:
        trees: dict[str, Path] = {}
        for side, sha in (
            ()
            if live
            else ((Side.BEFORE, measurement.base_sha), (Side.AFTER, measurement.head_sha))
        ):
            if not measurement_heartbeat(measurement=measurement, phase=f"checking out {side}"):
                return
            trees[side] = stack.enter_context(repository.checkout(project, sha, worker=worker))
        if profile.setup_argv:
            for side, tree in trees.items():
                if not measurement_heartbeat(measurement=measurement, phase=f"setting up {side}"):
                    return
                setup = runner.run(profile.setup_argv, cwd=tree, env=profile.env, **limits)
                if not setup.ok:
                    measurement_fail(
                        measurement_id=measurement.pk,
                        error=f"The setup step failed on the {side} revision: {setup.failure}."
                        f"\n{setup.output_tail[-1000:]}",
                    )
                    return
        if profile.kind == ProfileKind.HTTP:
            from .http_execution import run_blocks

            if not run_blocks(measurement=measurement, runner=runner, trees=trees, limits=limits):
                return
            if live and not measurement.runs.filter(side=Side.AFTER).exists():
                measurement_snapshot_wait(measurement=measurement)
                return
        # Adaptive runs: after the planned runs, blocks are added while a gating metric is
        # undecided (measurement_extend holds the stopping rule).
        extended = profile.kind != ProfileKind.HTTP
        while extended:
            pending = Run.objects.filter(measurement=measurement, status=RunStatus.PENDING)
            for run in pending.order_by("sequence"):
                phase = f"{'warm-up' if run.warmup else 'run'} {run.sequence + 1} ({run.side})"
                if not measurement_heartbeat(measurement=measurement, phase=phase):
                    return
                if not run_claim(run=run, worker=worker):
                    continue
                result = runner.run(profile.argv, cwd=trees[run.side], env=profile.env, **limits)
                run_finish(run=run, result=result)
                if not result.ok and profile.stop_on_failure:
                    measurement_fail(
                        measurement_id=measurement.pk,
                        error=f"Run {run.sequence + 1} ({run.side}) failed: {result.failure}; "
                        "the profile stops at the first failed run.",
                    )
                    return
            extended = measurement_extend(measurement=measurement)
    if (
        profile.attribution
        and profile.kind == ProfileKind.COMMAND
        and is_python_command(profile.argv)
    ):
        if not measurement_heartbeat(measurement=measurement, phase="attributing allocations"):
            return
        measurement_record_attribution(
            measurement=measurement, sites=attribute(measurement, runner, worker=worker)
        )
    if measurement_heartbeat(measurement=measurement, phase="computing the verdict"):
        measurement_record_config(
            measurement=measurement, end=repository.config_fingerprint(profile.environment)
        )
        measurement_finish(measurement=measurement)
