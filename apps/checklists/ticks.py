"""Ticking an item by hand: done, skipped with a reason, or open again."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from apps.accounts.models import User

from .items import can_tick, locked_item, set_state
from .models import ChecklistItem, ItemKind, ItemState
from .staging import require_staging_evidence


@transaction.atomic
def checklist_item_tick(
    *, actor: User, item: ChecklistItem, state: str, version: int | None, reason: str = ""
) -> ChecklistItem:
    """Tick, untick or skip one item. A stale `version` raises Conflict and changes nothing."""
    if state not in ItemState.values:
        raise ValidationError({"state": f"One of {', '.join(ItemState.values)}."})
    locked = locked_item(item, version)
    if not can_tick(actor, locked.change, locked):
        raise PermissionDenied("Your role does not allow ticking this item.")
    if locked.kind == ItemKind.TAG_RELEASE:
        raise ValidationError("“Tag the release” ships the change: use its own button.")
    reason = (reason or "").strip()
    if state == ItemState.SKIPPED and not reason:
        raise ValidationError({"reason": "Say why the item is skipped."})
    if len(reason) > 500:
        raise ValidationError({"reason": "At most 500 characters."})
    if locked.kind == ItemKind.STAGING_CONFIG and state == ItemState.DONE:
        require_staging_evidence(locked.change)
    set_state(locked, actor=actor, state=state, reason=reason if state == ItemState.SKIPPED else "")
    return locked
