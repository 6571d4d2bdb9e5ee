"""Items a worker verifies: requested, claimed, recorded, given up, re-published."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.accounts.models import User
from apps.core import events, work
from apps.core.audit import audit_record

from .events import ChecklistItemVerified
from .items import can_tick, locked_item, set_state
from .models import ChecklistItem, ItemKind, ItemState, VerificationStatus


@transaction.atomic
def checklist_item_verify_request(*, actor: User, item: ChecklistItem, version: int | None):
    locked = locked_item(item, version)
    if not can_tick(actor, locked.change, locked):
        raise PermissionDenied("Your role does not allow verifying this item.")
    if locked.kind != ItemKind.VERIFY or not locked.argv:
        raise ValidationError("An admin has not given this item a command to verify it with.")
    if not locked.change.head_sha:
        raise ValidationError("Resolve the change's after revision first.")
    if locked.verification in (VerificationStatus.QUEUED, VerificationStatus.RUNNING):
        raise ValidationError("A worker is verifying this item already.")
    locked.verification = VerificationStatus.QUEUED
    locked.version = F("version") + 1
    # A new round: the last one's claim says nothing about this one.
    locked.attempts, locked.heartbeat_at, locked.published_at = 0, None, timezone.now()
    locked.save(
        update_fields=["verification", "version", "attempts", "heartbeat_at", "published_at"]
    )
    audit_record(actor=actor, action="verify", obj=locked)
    transaction.on_commit(lambda: verification_publish(locked))
    locked.refresh_from_db()
    return locked


def verification_publish(item: ChecklistItem) -> bool:
    from .tasks import verify_item

    queue = item.environment.queue if item.environment else "default"
    return work.publish(verify_item, item, args=[item.pk], queue=queue)


def verification_claim(*, item_id: int, worker: str) -> ChecklistItem | None:
    """Take the item's verification for `worker`: a queued one, or one whose worker stopped
    heart-beating. None if a live worker holds it, it is over, or it used up its attempts."""
    item = ChecklistItem.objects.filter(pk=item_id).first()
    if item is None or item.verification not in (
        VerificationStatus.QUEUED,
        VerificationStatus.RUNNING,
    ):
        return None
    stale = Q(verification=VerificationStatus.RUNNING, heartbeat_at__lt=work.stale_before())
    if item.attempts >= work.MAX_ATTEMPTS:
        if ChecklistItem.objects.filter(stale, pk=item_id).exists():
            verification_give_up(item=item)
        return None
    attempt = work.claim(
        ChecklistItem.objects,
        pk=item_id,
        claimable=Q(verification=VerificationStatus.QUEUED) | stale,
        worker=worker,
        verification=VerificationStatus.RUNNING,
    )
    if attempt is None:
        return None
    return ChecklistItem.objects.select_related("change__project").get(pk=item_id)


def verification_alive(item: ChecklistItem):
    """Heart-beat from a background thread while the block runs."""
    return work.heartbeat(
        ChecklistItem.objects.filter(verification=VerificationStatus.RUNNING),
        pk=item.pk,
        attempt=item.attempts,
    )


@transaction.atomic
def verification_record(*, item: ChecklistItem, worker: str, result) -> None:
    """A worker's verdict on an item: done with the evidence, or left open with the failure.

    Only the claim that holds the verification records; an older one's result is dropped.
    """
    locked = ChecklistItem.objects.select_for_update().get(pk=item.pk)
    if locked.verification != VerificationStatus.RUNNING or locked.attempts != item.attempts:
        return
    evidence = {
        "worker": worker,
        "exit_code": result.exit_code,
        "seconds": round(result.wall_seconds, 3),
        "output_tail": result.output_tail[-4000:],
        "failure": result.failure,
    }
    if result.ok:
        set_state(
            locked,
            actor=None,
            state=ItemState.DONE,
            evidence=evidence,
            verification=VerificationStatus.IDLE,
        )
    else:
        _verification_failed(locked, evidence)
    events.publish(
        ChecklistItemVerified(
            item_id=locked.pk,
            change_id=locked.change_id,
            passed=bool(result.ok),
            reason=(result.failure or "")[:500],
        )
    )


def _verification_failed(locked: ChecklistItem, evidence: dict) -> None:
    locked.evidence, locked.verification = evidence, VerificationStatus.FAILED
    locked.version = F("version") + 1
    locked.save(update_fields=["evidence", "verification", "version"])
    audit_record(
        actor=None,
        action="verification failed",
        obj=locked,
        after={"failure": evidence["failure"]},
    )


@transaction.atomic
def verification_give_up(*, item: ChecklistItem) -> None:
    """End a verification whose workers kept dying: failed, with the reason as evidence."""
    locked = ChecklistItem.objects.select_for_update().get(pk=item.pk)
    if locked.verification in (VerificationStatus.QUEUED, VerificationStatus.RUNNING):
        evidence = {"worker": locked.worker, "exit_code": None, "failure": work.GAVE_UP}
        _verification_failed(locked, evidence)
        events.publish(
            ChecklistItemVerified(
                item_id=locked.pk, change_id=locked.change_id, passed=False, reason=work.GAVE_UP
            )
        )


def verifications_reconcile() -> int:
    """Beat: publish again the verifications a dead worker held or whose message was lost; end
    those that used up their attempts. Returns how many were published."""
    active = ChecklistItem.objects.filter(
        verification__in=(VerificationStatus.QUEUED, VerificationStatus.RUNNING)
    ).select_related("environment")
    return work.reconcile(
        work.due(active).order_by("pk"),
        spent=lambda item: (
            item.verification == VerificationStatus.RUNNING and item.attempts >= work.MAX_ATTEMPTS
        ),
        give_up=lambda item: verification_give_up(item=item),
        send=verification_publish,
    )
