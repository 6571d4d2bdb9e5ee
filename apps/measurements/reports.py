"""What workers report: claims, heartbeats, each run's result, failure, more runs when a gating
metric is undecided, the finish with its verdicts; and beat re-publishing what they dropped.

A worker claims the measurement with a conditional update, claims each run the same way, and
writes each result only over a run it holds, so a redelivered task resumes where the last one
stopped and never duplicates a result.
"""

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.changes.models import Change
from apps.core import events, work
from apps.core.audit import audit_record

from . import metrics, stats
from .events import MeasurementFinished, RegressionFound
from .judging import expectation_of, headline_of, judge
from .lifecycle import enqueue, plan_sides, runs_reset, settle_change
from .models import (
    ACTIVE_STATUSES,
    Measurement,
    MeasurementKind,
    MeasurementStatus,
    Profile,
    ProfileKind,
    Run,
    RunStatus,
)

MAX_ATTEMPTS = work.MAX_ATTEMPTS


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
        runs_reset(measurement_id)
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
            runs_reset(measurement_id)
            measurement = Measurement.objects.select_related("change", "profile").get(
                pk=measurement_id
            )
            audit_record(
                actor=None,
                action="measurement failed",
                obj=measurement.change or measurement.profile,
                after={"error": error[:500]},
            )
            events.publish(
                MeasurementFinished(
                    measurement_id=measurement.pk,
                    change_id=measurement.change_id,
                    status=MeasurementStatus.FAILED,
                )
            )
            settle_change(measurement.change_id)


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
    change_latest_verdict_record(measurements=[locked])
    _publish_finished(locked, comparisons)
    settle_change(locked.change_id)


def change_latest_verdict_record(*, measurements) -> int:
    """Store on each measured change what the change list shows of it (`Change.latest_verdict`):
    the verdict of these finished measurements in one line (`metrics.headline`), so a page of
    changes reads no measurement. Called as a measurement finishes, and by the migration that
    filled it in for measurements finished before it existed (latest per change, with their
    profile and change loaded). Returns how many changes were written."""
    rows = []
    for m in measurements:
        if m.change_id is None or m.kind == MeasurementKind.CALIBRATE:
            continue
        rows.append(Change(pk=m.change_id, latest_verdict=headline_of(m) | {"measurement": m.pk}))
    Change.objects.bulk_update(rows, ["latest_verdict"], batch_size=500)
    return len(rows)


def _publish_finished(measurement: Measurement, comparisons) -> None:
    """The verdicts, what blocks the release, and a gating metric's regression if one did."""
    blockers = metrics.blocking_results(measurement)
    regressed = {r["metric"] for r in measurement.results or [] if r.get("verdict") == "regressed"}
    # A blocker on a regressed metric is a regression of a metric that gates the release.
    gating = tuple(dict.fromkeys(key for key, _text in blockers if key in regressed))
    events.publish(
        MeasurementFinished(
            measurement_id=measurement.pk,
            change_id=measurement.change_id,
            status=measurement.status,
            verdicts=tuple((c.metric, c.verdict.value) for c in comparisons),
            blockers=tuple(text for _key, text in blockers),
            regressed=gating,
        )
    )
    if gating:
        events.publish(
            RegressionFound(
                measurement_id=measurement.pk, change_id=measurement.change_id, metrics=gating
            )
        )


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
