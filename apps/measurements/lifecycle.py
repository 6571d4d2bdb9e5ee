"""A measurement's lifecycle as people drive it: requested (with its planned runs), live
staging's snapshots, calibrated, cancelled; and the change it settles when it ends.

Reliability rests on the rows, not on the broker: a measurement and all its planned runs are
created in the request's transaction and published on commit (see `reports` for the rest).
"""

import random

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.accounts.services import require_role
from apps.changes.events import ChangeReadyForReview
from apps.changes.models import Change, ChangeStatus
from apps.changes.services import can_edit_change
from apps.core import events, work
from apps.core.audit import audit_record
from apps.projects import repository

from .events import MeasurementRequested
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
    _start_measuring(change, measurement, actor)
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


def _start_measuring(change: Change, measurement: Measurement, actor: User) -> None:
    if change.status != ChangeStatus.MEASURING:
        Change.objects.filter(pk=change.pk).update(status=ChangeStatus.MEASURING)
    events.publish(
        MeasurementRequested(measurement_id=measurement.pk, change_id=change.pk, actor_id=actor.pk)
    )


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
    _start_measuring(change, measurement, actor)
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
    _start_measuring(locked.change, locked, actor)
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
        settle_change(measurement.change_id)


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
        runs_reset(measurement.pk)
        audit_record(actor=actor, action="cancel", obj=measurement.change or measurement.profile)
        settle_change(measurement.change_id)


def runs_reset(measurement_id: int) -> None:
    # Runs a worker started and never finished have no result: they are pending again, to be
    # run by the next claim or left unrun when the measurement ends.
    Run.objects.filter(measurement_id=measurement_id, status=RunStatus.RUNNING).update(
        status=RunStatus.PENDING, worker="", started_at=None
    )


def settle_change(change_id: int | None) -> None:
    """A change leaves `measuring` when its last active measurement ends."""
    if change_id is None:
        return
    if Measurement.objects.filter(change_id=change_id, status__in=ACTIVE_STATUSES).exists():
        return
    settled = Change.objects.filter(pk=change_id, status=ChangeStatus.MEASURING).update(
        status=ChangeStatus.READY
    )
    if settled:
        events.publish(ChangeReadyForReview(change_id=change_id))
