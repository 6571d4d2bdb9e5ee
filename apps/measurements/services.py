"""Writes on measurements: what people ask for, and what workers report back.

Reliability rests on the rows here, not on the broker: a measurement and all its planned runs
are created in the request's transaction and published on commit; a worker claims the
measurement with a conditional update, claims each run the same way, and writes each result
only over a run it holds, so a redelivered task resumes where the last one stopped and never
duplicates a result.
"""

import random

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.accounts.services import require_role
from apps.changes.models import Change, ChangeStatus
from apps.changes.services import can_edit_change
from apps.checklists.services import staging_config_record
from apps.core import work
from apps.core.audit import audit_record
from apps.core.services import record_save
from apps.projects import repository
from apps.search.index import index_change, index_changes

from . import metrics, stats
from .models import (
    ACTIVE_STATUSES,
    HttpTarget,
    Measurement,
    MeasurementKind,
    MeasurementStatus,
    Profile,
    ProfileKind,
    Run,
    RunStatus,
    Side,
)
from .validators import validate_http_plan, validate_reset

MAX_ATTEMPTS = work.MAX_ATTEMPTS


def plan_sides(*, runs_per_side: int, warmups: int, seed: int) -> list[tuple[str, bool]]:
    """The order of runs: warm-ups, then randomised before/after blocks.

    Each block holds one run of each side in a random order, so drift over time (a warming
    disk cache, a noisy neighbour) falls on both sides alike, and neither side always runs
    first.
    """
    rng = random.Random(seed)  # noqa: S311 (an experimental design, not a secret)
    order = [(side, True) for _ in range(warmups) for side in (Side.BEFORE, Side.AFTER)]
    for _ in range(runs_per_side):
        block = [Side.BEFORE, Side.AFTER]
        rng.shuffle(block)
        order += [(side, False) for side in block]
    return order


def _create(
    *, actor, profile: Profile, change: Change | None, kind, base_sha, head_sha, sides=None
):
    measurement = Measurement.objects.create(
        change=change,
        profile=profile,
        kind=kind,
        requested_by=actor,
        base_sha=base_sha,
        head_sha=head_sha,
        published_at=timezone.now(),
    )
    sides = sides or plan_sides(
        runs_per_side=profile.runs_per_side, warmups=profile.warmups, seed=measurement.pk
    )
    if kind == MeasurementKind.COMPARE:
        measurement.design = {
            "planned": profile.runs_per_side,
            "block": profile.extension_runs,
            "maximum": max(profile.max_runs_per_side, profile.runs_per_side),
        }
    Run.objects.bulk_create(
        Run(measurement=measurement, sequence=i, side=side, warmup=warmup)
        for i, (side, warmup) in enumerate(sides)
    )
    measurement.runs_planned = len(sides)
    measurement.save(update_fields=["runs_planned", "design"])
    audit_record(
        actor=actor,
        action="measure",
        obj=change or profile,
        after={"profile": str(profile), "kind": kind, "base": base_sha, "head": head_sha},
    )
    transaction.on_commit(lambda: enqueue(measurement))
    return measurement


def enqueue(measurement: Measurement) -> bool:
    """Publish the measurement to its environment's queue; False if the broker is down."""
    from .tasks import measure

    return work.publish(
        measure, measurement, args=[measurement.pk], queue=measurement.profile.environment.queue
    )


@transaction.atomic
def measurement_request(*, actor: User, change: Change, profile: Profile) -> Measurement:
    """Measure `change` before and after under `profile`, on the profile's environment (for a
    profile probing live staging: take the before snapshot)."""
    if is_live_staging(profile):
        # Nothing to check out: *Measure* on live staging is its before snapshot.
        return measurement_snapshot_before(actor=actor, change=change, profile=profile)
    change = _lock_measurable(actor, change, profile)
    measurement = _create(
        actor=actor,
        profile=profile,
        change=change,
        kind=MeasurementKind.COMPARE,
        base_sha=change.base_sha,
        head_sha=change.head_sha,
    )
    _start_measuring(change)
    return measurement


def is_live_staging(profile: Profile) -> bool:
    return profile.kind == ProfileKind.HTTP and profile.http_target == HttpTarget.STAGING


def _lock_measurable(actor: User, change: Change, profile: Profile) -> Change:
    """The change, locked, once `actor` may measure it under `profile` now."""
    if not can_edit_change(actor, change):
        raise PermissionDenied("Only the change's owner, a reviewer or an admin may measure it.")
    change = Change.objects.select_for_update().get(pk=change.pk)
    if profile.project_id != change.project_id:
        raise ValidationError({"profile": f"{profile} measures another project."})
    if not (change.base_sha and change.head_sha):
        raise ValidationError(
            {"profile": "Resolve the before and after revisions first: both must be commits."}
        )
    if change.status in (ChangeStatus.SHIPPED, ChangeStatus.ROLLED_BACK):
        raise ValidationError({"profile": f"{change.number} has shipped; file a new change."})
    busy = (*ACTIVE_STATUSES, MeasurementStatus.WAITING)
    if change.measurements.filter(profile=profile, status__in=busy).exists():
        raise ValidationError({"profile": "This profile is already measuring this change."})
    return change


def _start_measuring(change: Change) -> None:
    if change.status != ChangeStatus.MEASURING:
        Change.objects.filter(pk=change.pk).update(status=ChangeStatus.MEASURING)
        index_change(change)


@transaction.atomic
def measurement_snapshot_before(*, actor: User, change: Change, profile: Profile) -> Measurement:
    """Live staging, step one: probe the environment's base URL now, before the fix is
    deployed. The measurement then waits for `measurement_snapshot_after`."""
    if not is_live_staging(profile):
        raise ValidationError({"profile": f"{profile.name} does not probe live staging."})
    change = _lock_measurable(actor, change, profile)
    blocks = [(Side.BEFORE, True)] * profile.warmups
    blocks += [(Side.BEFORE, False)] * profile.runs_per_side
    measurement = _create(
        actor=actor,
        profile=profile,
        change=change,
        kind=MeasurementKind.STAGING,
        base_sha=change.base_sha,
        head_sha=change.head_sha,
        sides=blocks,
    )
    _start_measuring(change)
    return measurement


@transaction.atomic
def measurement_snapshot_after(*, actor: User, measurement: Measurement) -> Measurement:
    """Live staging, step two, once the fix is deployed: probe again and compare."""
    locked = Measurement.objects.select_for_update(of=("self",)).get(pk=measurement.pk)
    if locked.change is None or not can_edit_change(actor, locked.change):
        raise PermissionDenied("Only the change's owner, a reviewer or an admin may measure it.")
    if locked.kind != MeasurementKind.STAGING or locked.status != MeasurementStatus.WAITING:
        raise ValidationError({"measurement": "Only a taken before snapshot waits for its after."})
    profile = locked.profile
    first = max(r.sequence for r in locked.runs.all()) + 1
    blocks = [(Side.AFTER, True)] * profile.warmups
    blocks += [(Side.AFTER, False)] * profile.runs_per_side
    Run.objects.bulk_create(
        Run(measurement=locked, sequence=first + i, side=side, warmup=warmup)
        for i, (side, warmup) in enumerate(blocks)
    )
    locked.runs_planned += len(blocks)
    locked.status = MeasurementStatus.QUEUED
    locked.phase = "waiting for a worker"
    locked.attempts = 0
    locked.worker = ""
    locked.published_at = timezone.now()
    locked.save(
        update_fields=["runs_planned", "status", "phase", "attempts", "worker", "published_at"]
    )
    audit_record(
        actor=actor,
        action="measure",
        obj=locked.change,
        after={"measurement": locked.pk, "snapshot": "after"},
    )
    _start_measuring(locked.change)
    transaction.on_commit(lambda: enqueue(locked))
    return locked


def measurement_snapshot_wait(*, measurement: Measurement) -> None:
    """The worker took the before snapshot: the measurement waits for the deploy."""
    with transaction.atomic():
        Measurement.objects.filter(
            pk=measurement.pk, status=MeasurementStatus.RUNNING, worker=measurement.worker
        ).update(
            status=MeasurementStatus.WAITING,
            phase="before snapshot taken: measure after once the fix is deployed",
        )
        audit_record(
            actor=None,
            action="snapshot",
            obj=measurement.change or measurement.profile,
            after={"measurement": measurement.pk, "snapshot": "before"},
        )
        _settle_change(measurement.change_id)


@transaction.atomic
def measurement_calibrate(*, actor: User, profile: Profile, revision: str = "HEAD") -> Measurement:
    """An A/A measurement: the same commit on both sides tells what the profile can resolve."""
    require_role(actor, Role.ENGINEER, doing="calibrate profiles")
    try:
        found = repository.resolve_revisions(profile.project, revision or "HEAD", "")
    except repository.NoClone:
        raise ValidationError({"revision": "The repository is not synced yet."}) from None
    except ValidationError as exc:
        raise ValidationError({"revision": exc.messages}) from None
    if profile.measurements.filter(
        kind=MeasurementKind.CALIBRATE, status__in=ACTIVE_STATUSES
    ).exists():
        raise ValidationError({"revision": "This profile is already being calibrated."})
    return _create(
        actor=actor,
        profile=profile,
        change=None,
        kind=MeasurementKind.CALIBRATE,
        base_sha=found["base_sha"],
        head_sha=found["base_sha"],
    )


@transaction.atomic
def measurement_cancel(*, actor: User, measurement: Measurement) -> None:
    allowed = (
        can_edit_change(actor, measurement.change)
        if measurement.change
        else actor.has_role(Role.ENGINEER)
    )
    if not allowed:
        raise PermissionDenied("Only the change's owner, a reviewer or an admin may cancel.")
    cancellable = (*ACTIVE_STATUSES, MeasurementStatus.WAITING)
    cancelled = Measurement.objects.filter(pk=measurement.pk, status__in=cancellable).update(
        status=MeasurementStatus.CANCELLED, phase="cancelled", finished_at=timezone.now()
    )
    if cancelled:
        _runs_reset(measurement.pk)
        audit_record(actor=actor, action="cancel", obj=measurement.change or measurement.profile)
        _settle_change(measurement.change_id)


PROFILE_FIELDS = [
    "project",
    "name",
    "environment",
    "kind",
    "argv",
    "setup_argv",
    "env",
    "runs_per_side",
    "warmups",
    "timeout_seconds",
    "memory_limit_mb",
    "stop_on_failure",
    "attribution",
    "metric_policy",
    "max_runs_per_side",
    "extension_runs",
    "http_target",
    "ready_path",
    "startup_timeout_seconds",
    "http_plan",
    "reset",
]


def profile_save(*, actor: User | None, profile: Profile) -> Profile:
    """Define or edit a profile: only admins decide what workers run. `None` is the system."""
    if actor is not None:
        require_role(actor, Role.ADMIN, doing="define measurement profiles")
    try:
        # Stored by key, whatever label or alias the admin wrote.
        profile.metric_policy = metrics.validate_policy(profile.metric_policy or {})
    except metrics.PolicyError as exc:
        raise ValidationError({"metric_policy": str(exc)}) from None
    for name, check in (("http_plan", validate_http_plan), ("reset", validate_reset)):
        try:
            check(getattr(profile, name))
        except ValidationError as exc:
            raise ValidationError({name: exc.messages}) from None
    profile.clean()  # kind-specific rules: {port} to serve, a base URL to probe staging
    return record_save(actor=actor, obj=profile, fields=PROFILE_FIELDS)


def expectation_of(text: str, policy: metrics.Policy | None = None) -> stats.Expectation | None:
    """A change's expected result read with the metric names a profile knows (labels too)."""
    found = stats.parse_expectation(text)
    if found is None or policy is None:
        return found
    return stats.Expectation(metric=policy.resolve(found.metric), change_pct=found.change_pct)


def known_metric_keys(project_id: int | None) -> set[str]:
    """Every metric key a change of this project may name: built-ins of every profile kind,
    what the project's profiles' policies name, and what its recent measurements measured."""
    keys = set(metrics.all_builtin())
    if project_id is None:
        return keys
    for policy in Profile.objects.filter(project_id=project_id).values_list(
        "metric_policy", flat=True
    ):
        keys |= set(policy or {})
        # A label the policy gives a metric is a name people may write for it too.
        keys |= {
            metrics.canonical_key(entry["label"])
            for entry in (policy or {}).values()
            if isinstance(entry, dict) and entry.get("label")
        }
    recent = Measurement.objects.filter(
        profile__project_id=project_id, status=MeasurementStatus.DONE
    ).order_by("-id")[:50]
    for results in recent.values_list("results", flat=True):
        keys |= {r.get("metric", "") for r in results or []}
    return keys


def expectation_error(project_id: int | None, text: str) -> str:
    """Why an expected result names no metric fixledger can check, or "" when it is fine.

    Text outside the expectation grammar is a free description and passes; a change in the
    grammar must name a metric this project measures or may measure.
    """
    found = stats.parse_expectation(text or "")
    if found is None:
        return ""
    if found.metric in metrics.all_builtin() or found.metric in known_metric_keys(project_id):
        return ""
    labels = sorted({metrics.label_of(k) for k in metrics.all_builtin()})
    return (
        f"No metric named “{found.metric.replace('_', ' ')}” is measured here; "
        f"name one of {', '.join(labels)} or a metric the project's commands print."
    )


# --- what workers report --------------------------------------------------------------------


def _runs_reset(measurement_id: int) -> None:
    # Runs a worker started and never finished have no result: they are pending again, to be
    # run by the next claim or left unrun when the measurement ends.
    Run.objects.filter(measurement_id=measurement_id, status=RunStatus.RUNNING).update(
        status=RunStatus.PENDING, worker="", started_at=None
    )


def measurement_claim(*, measurement_id: int, worker: str) -> Measurement | None:
    """Take the measurement for `worker`, or None if someone live holds it or it is over.

    A queued measurement, or a running one whose worker stopped heart-beating, can be taken;
    the conditional update lets exactly one of any number of deliveries win. The returned
    row's `attempts` fences the claim: heartbeats and results of an older claim are refused.
    """
    measurement = Measurement.objects.filter(pk=measurement_id).first()
    if measurement is None or not measurement.is_active:
        return None
    if measurement.attempts >= MAX_ATTEMPTS:
        # A live holder's duplicate message must not end it; a dead holder's ends it for good.
        if Measurement.objects.filter(_claimable(), pk=measurement_id).exists():
            measurement_fail(measurement_id=measurement_id, error=work.GAVE_UP)
        return None
    with transaction.atomic():
        attempt = work.claim(
            Measurement.objects,
            pk=measurement_id,
            claimable=_claimable(),
            worker=worker,
            status=MeasurementStatus.RUNNING,
            phase="starting",
        )
        if attempt is None:
            return None
        Measurement.objects.filter(pk=measurement_id, started_at__isnull=True).update(
            started_at=timezone.now()
        )
        _runs_reset(measurement_id)
    return Measurement.objects.select_related(
        "profile__project", "profile__environment", "change"
    ).get(pk=measurement_id)


def _claimable() -> Q:
    return Q(status=MeasurementStatus.QUEUED) | Q(
        status=MeasurementStatus.RUNNING, heartbeat_at__lt=work.stale_before()
    )


def measurement_heartbeat(*, measurement: Measurement, phase: str) -> bool:
    """Say the worker is alive; False means stop: cancelled, or taken over by another worker."""
    return bool(
        Measurement.objects.filter(
            pk=measurement.pk, status=MeasurementStatus.RUNNING, attempts=measurement.attempts
        ).update(heartbeat_at=timezone.now(), phase=phase)
    )


def measurement_alive(*, measurement: Measurement):
    """Heart-beat from a background thread while the block runs; yields the "lost" event."""
    return work.heartbeat(
        Measurement.objects.filter(status=MeasurementStatus.RUNNING),
        pk=measurement.pk,
        attempt=measurement.attempts,
    )


def run_claim(*, run: Run, worker: str) -> bool:
    return bool(
        Run.objects.filter(pk=run.pk, status=RunStatus.PENDING).update(
            status=RunStatus.RUNNING,
            attempt=F("attempt") + 1,
            worker=worker,
            started_at=timezone.now(),
        )
    )


def run_finish(*, run: Run, result) -> bool:
    """Store a run's result, once: only over a run this worker still holds."""
    values = {
        "status": RunStatus.DONE if result.ok else RunStatus.FAILED,
        "exit_code": result.exit_code,
        "failure": result.failure[:300],
        "wall_seconds": result.wall_seconds,
        "user_seconds": result.user_seconds,
        "system_seconds": result.system_seconds,
        "peak_rss_bytes": result.peak_rss_bytes,
        "rss_at_floor": result.rss_at_floor,
        "sandboxed": result.sandboxed,
        "rss_timeline": [list(point) for point in result.rss_timeline],
        "metrics": {name: [value, unit] for name, (value, unit) in result.metrics.items()},
        "output_tail": result.output_tail,
        "finished_at": timezone.now(),
    }
    return _store_run(run, values)


def _store_run(run: Run, values: dict) -> bool:
    """Write a run's result only over a run this worker still holds, and count it done."""
    with transaction.atomic():
        stored = Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(**values)
        if stored:
            finished = Run.objects.filter(
                measurement_id=run.measurement_id, status__in=[RunStatus.DONE, RunStatus.FAILED]
            ).count()
            Measurement.objects.filter(pk=run.measurement_id).update(runs_done=finished)
    return bool(stored)


def run_finish_probe(*, run: Run, outcome, served, reset: str, metrics: dict) -> bool:
    """Store one HTTP block, once: the generator's JSON, the block's own figures, what the
    reset step did, and the served process's kernel figures (none for live staging)."""
    values = {
        "status": RunStatus.DONE if outcome.ok else RunStatus.FAILED,
        "failure": outcome.failure[:300],
        "wall_seconds": (outcome.result or {}).get("duration_s"),
        "metrics": metrics,
        "probe": {"result": outcome.result, "reset": reset, "base_url": outcome.base_url},
        "output_tail": outcome.service_output[-4000:],
        "finished_at": timezone.now(),
    }
    if served is not None:
        values |= {
            "exit_code": served.exit_code,
            "peak_rss_bytes": served.peak_rss_bytes,
            "rss_at_floor": served.rss_at_floor,
            "sandboxed": served.sandboxed,
            "rss_timeline": [list(point) for point in served.rss_timeline],
        }
    return _store_run(run, values)


def measurement_record_config(*, measurement: Measurement, start=None, end=None) -> None:
    """The environment's config fingerprint as the runs began (`start`) or ended (`end`)."""
    values = {"config_at_start": start} if start is not None else {"config_at_end": end}
    Measurement.objects.filter(pk=measurement.pk, worker=measurement.worker).update(**values)
    for name, value in values.items():
        setattr(measurement, name, value)


def measurement_record_attribution(*, measurement: Measurement, sites: list[dict]) -> None:
    Measurement.objects.filter(
        pk=measurement.pk, status=MeasurementStatus.RUNNING, worker=measurement.worker
    ).update(attribution=sites)


def measurement_fail(*, measurement_id: int, error: str) -> None:
    with transaction.atomic():
        failed = Measurement.objects.filter(pk=measurement_id, status__in=ACTIVE_STATUSES).update(
            status=MeasurementStatus.FAILED,
            phase="failed",
            error=error[:2000],
            finished_at=timezone.now(),
        )
        if failed:
            _runs_reset(measurement_id)
            measurement = Measurement.objects.select_related("change", "profile").get(
                pk=measurement_id
            )
            audit_record(
                actor=None,
                action="measurement failed",
                obj=measurement.change or measurement.profile,
                after={"error": error[:500]},
            )
            _settle_change(measurement.change_id)


# Where each built-in metric of a command profile comes from in a run row.
_RUN_FIELDS: dict[str, tuple[str, ...]] = {
    "peak_rss": ("peak_rss_bytes",),
    "wall": ("wall_seconds",),
    "cpu": ("user_seconds", "system_seconds"),
    "user_cpu": ("user_seconds",),
    "system_cpu": ("system_seconds",),
}


def run_value(run: Run, metric: str) -> float | None:
    """One metric of one run: a built-in from its columns, else what the command printed."""
    fields = _RUN_FIELDS.get(metric)
    if fields:
        values = [getattr(run, f) for f in fields]
        return None if any(v is None for v in values) else float(sum(values))
    value = run.metrics.get(metric, [None])[0]
    return None if value is None else float(value)


def run_values(runs, metric: str, side: str) -> list[float]:
    """One metric's values over the measured (not warm-up), finished runs of one side."""
    values = []
    for run in runs:
        if run.side != side or run.warmup or run.status != RunStatus.DONE:
            continue
        value = run_value(run, metric)
        if value is not None:
            values.append(value)
    return values


def measured_metrics(runs: list[Run], policy: metrics.Policy) -> list[metrics.Metric]:
    """The metrics these runs measured, as the policy judges them: built-ins first."""
    found = list(policy.builtin())
    custom: dict[str, tuple[str, metrics.Direction | None]] = {}
    for run in runs:
        if run.status == RunStatus.DONE and not run.warmup:
            for name, stored in run.metrics.items():
                if name not in custom:
                    custom[name] = metrics.split_declared_unit(stored[1] if len(stored) > 1 else "")
    builtin_keys = {m.key for m in found}
    for name in sorted(set(custom) - builtin_keys):
        unit, declared = custom[name]
        found.append(policy.metric(name, unit=unit, declared=declared))
    return found


def design_of(measurement: Measurement) -> dict:
    """planned/block/maximum runs per side; measurements from before adaptive runs had none."""
    planned = sum(1 for r in measurement.runs.all() if not r.warmup) // 2
    return {"planned": planned, "block": 0, "maximum": planned} | (measurement.design or {})


def compare_runs(
    runs: list[Run],
    *,
    policy: metrics.Policy | None = None,
    calibrated: dict | None = None,
    alpha: float = stats.ALPHA,
) -> list[stats.Comparison]:
    """One comparison per metric, in the policy's direction, at the look's level `alpha`."""
    policy = policy or metrics.Policy(kind=metrics.DEFAULT_KIND, overrides={})
    measured = [r for r in runs if not r.warmup]
    failed = sum(r.status != RunStatus.DONE for r in measured)
    return [
        stats.compare(
            run_values(runs, metric.key, Side.BEFORE),
            run_values(runs, metric.key, Side.AFTER),
            metric=metric.key,
            unit=metric.unit,
            label=metric.label,
            lower_is_better=metric.lower_is_better,
            alpha=alpha,
            failed_runs=failed,
            calibrated_noise=(calibrated or {}).get(metric.key, {}).get("noise"),
        )
        for metric in measured_metrics(runs, policy)
    ]


def judge(
    measurement: Measurement, runs: list[Run]
) -> tuple[list[stats.Comparison], list[dict], dict]:
    """The comparisons of a measurement's runs so far, as stored results, and the look."""
    profile = measurement.profile
    policy = metrics.policy_of(profile)
    if profile.kind == ProfileKind.HTTP:
        return _judge_http(runs, policy)
    design = design_of(measurement)
    n = min(
        sum(1 for r in runs if not r.warmup and r.side == side)
        for side in (Side.BEFORE, Side.AFTER)
    )
    alpha = stats.look_alpha(n, **design)
    comparisons = compare_runs(
        runs,
        policy=policy,
        calibrated=None if measurement.kind == MeasurementKind.CALIBRATE else profile.resolution,
        alpha=alpha,
    )
    by_key = {m.key: m for m in measured_metrics(runs, policy)}
    results = []
    for c in comparisons:
        metric = by_key[c.metric]
        result = c.as_dict() | {
            "label": metric.label,
            "role": metric.role.value,
            "smallest_effect_pct": metric.smallest_effect_pct,
            "alpha": alpha,
            "max_noise_pct": stats.MAX_NOISE_PCT,
        }
        result["undecided"] = metrics.undecided(result, metric)
        results.append(result)
    return comparisons, results, {"runs_per_side": n, "alpha": alpha, **design}


def _judge_http(runs: list[Run], policy: metrics.Policy):
    """HTTP blocks judged by the probe's analysis; each comparison with its policy role, in the
    shape command comparisons have (the page, the gate and search read both alike)."""
    from .http.analysis import compare_sides

    sides = {
        side: [
            r.probe["result"]
            for r in runs
            if r.side == side and not r.warmup and r.status == RunStatus.DONE
            if (r.probe or {}).get("result")
        ]
        for side in (Side.BEFORE, Side.AFTER)
    }
    report = compare_sides(sides[Side.BEFORE], sides[Side.AFTER], alpha=stats.ALPHA)
    results = []
    for c in report.comparisons:
        metric = policy.metric(c.metric)
        results.append(
            c.as_dict()
            | {
                "role": metric.role.value,
                "smallest_effect_pct": metric.smallest_effect_pct,
                "alpha": stats.ALPHA,
                "max_noise_pct": stats.MAX_NOISE_PCT,
                "undecided": "",
            }
        )
    n = min(len(blocks) for blocks in sides.values())
    look = {"runs_per_side": n, "alpha": stats.ALPHA, "http_report": report.as_dict()}
    # The report's lines come after the comparisons, which are already in `results`.
    look["http_report"].pop("comparisons")
    return report.comparisons, results, look


def measurement_extend(*, measurement: Measurement) -> bool:
    """Add a block of interleaved runs when a gating metric is undecided; True when added.

    Called by the worker holding the measurement once every planned run is done. Nothing is
    added past the design's maximum, for a calibration, or when no gating metric is undecided.
    """
    with transaction.atomic():
        locked = (
            Measurement.objects.select_for_update(of=("self",))
            .select_related("profile")
            .get(pk=measurement.pk)
        )
        if locked.status != MeasurementStatus.RUNNING or locked.worker != measurement.worker:
            return False
        if locked.kind != MeasurementKind.COMPARE or locked.profile.kind == ProfileKind.HTTP:
            # HTTP blocks are judged on pooled requests, not per-block values: more blocks
            # narrow no interval the sequential design knows about.
            return False
        runs = list(locked.runs.all())
        if any(r.status == RunStatus.PENDING for r in runs):
            return True  # a block added before a redelivery: run it first
        _comparisons, results, look = judge(locked, runs)
        n, maximum, block = look["runs_per_side"], look["maximum"], look["block"]
        if n >= maximum or block <= 0:
            return False
        undecided = [r for r in results if r["undecided"]]
        if not undecided:
            return False
        adding = min(block, maximum - n)
        why = "; ".join(f"{r['label']} undecided ({r['undecided']})" for r in undecided)
        sentence = f"{why} at {n} runs: adding {adding}"
        first = max(r.sequence for r in runs) + 1
        sides = plan_sides(runs_per_side=adding, warmups=0, seed=locked.pk * 1000 + first)
        Run.objects.bulk_create(
            Run(measurement=locked, sequence=first + i, side=side, warmup=False)
            for i, (side, _warmup) in enumerate(sides)
        )
        locked.runs_planned = len(runs) + len(sides)
        locked.extensions = [*locked.extensions, sentence]
        locked.phase = sentence[:100]
        locked.save(update_fields=["runs_planned", "extensions", "phase"])
        audit_record(
            actor=None,
            action="extend",
            obj=locked.change or locked.profile,
            after={"measurement": locked.pk, "why": sentence[:500]},
        )
    measurement.worker = locked.worker
    return True


@transaction.atomic
def measurement_finish(*, measurement: Measurement) -> None:
    """Compute the verdicts from the stored runs and close the measurement."""
    # Only the measurement row: a calibration has no change, and PostgreSQL cannot lock the
    # nullable side of an outer join.
    locked = (
        Measurement.objects.select_for_update(of=("self",))
        .select_related("profile", "change")
        .get(pk=measurement.pk)
    )
    if locked.status != MeasurementStatus.RUNNING or locked.worker != measurement.worker:
        return
    profile = locked.profile
    comparisons, locked.results, look = judge(locked, list(locked.runs.all()))
    locked.http_report = look.get("http_report", {})
    if locked.change is not None:
        expectation = expectation_of(locked.change.expected_result, metrics.policy_of(profile))
        if expectation is not None:
            match = next((c for c in comparisons if c.metric == expectation.metric), None)
            locked.expectation = stats.check_expectation(expectation, match)
    locked.status = MeasurementStatus.DONE
    locked.phase = "done"
    locked.finished_at = timezone.now()
    locked.save()
    if locked.change is not None:
        staging_config_record(
            change=locked.change, start=locked.config_at_start, end=locked.config_at_end
        )
    if locked.kind == MeasurementKind.CALIBRATE:
        Profile.objects.filter(pk=profile.pk).update(
            resolution={
                c.metric: {"noise": c.noise, "resolution": c.resolution, "unit": c.unit}
                for c in comparisons
            },
            calibrated_at=locked.finished_at,
        )
    audit_record(
        actor=None,
        action="measured",
        obj=locked.change or profile,
        after={c.metric: c.verdict.value for c in comparisons},
    )
    _settle_change(locked.change_id)


def _settle_change(change_id: int | None) -> None:
    """A change leaves `measuring` when its last active measurement ends."""
    if change_id is None:
        return
    if not Measurement.objects.filter(change_id=change_id, status__in=ACTIVE_STATUSES).exists():
        Change.objects.filter(pk=change_id, status=ChangeStatus.MEASURING).update(
            status=ChangeStatus.READY
        )
    # Status, verdicts and gains may all have moved: search must see them.
    index_changes([change_id])


def measurements_reconcile() -> int:
    """Beat: publish again what a dead worker held or what never reached a worker; end what
    used up its attempts. Returns how many were published."""
    due = work.due(
        Measurement.objects.filter(status__in=ACTIVE_STATUSES).select_related(
            "profile__environment"
        )
    ).order_by("pk")
    return work.reconcile(
        due,
        spent=lambda measurement: measurement.attempts >= MAX_ATTEMPTS,
        give_up=lambda measurement: measurement_fail(
            measurement_id=measurement.pk, error=work.GAVE_UP
        ),
        send=enqueue,
    )
