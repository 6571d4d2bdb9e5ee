"""A checklist item's state: who may change it, and changing it audited."""

from django.core.exceptions import ValidationError
from django.db.models import F
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.changes.models import Change, ChangeStatus
from apps.core.audit import audit_record, snapshot
from apps.core.exceptions import Conflict

from .models import ChecklistItem, ItemKind, ItemState

ITEM_FIELDS = ["state", "reason", "actor_name"]
CLOSED = (ChangeStatus.SHIPPED, ChangeStatus.ROLLED_BACK)


def can_tick(actor: User, change: Change, item: ChecklistItem | None = None) -> bool:
    """Reviewers and admins tick anything; engineers their own change, except shipping it."""
    if actor is None or not actor.is_authenticated:
        return False
    if actor.has_role(Role.REVIEWER):
        return True
    if item is not None and item.kind == ItemKind.TAG_RELEASE:
        return False
    return actor.has_role(Role.ENGINEER) and change.owner_id == actor.pk


def locked_item(item: ChecklistItem, version: int | None) -> ChecklistItem:
    # Without the version the caller saw, a write from a stale page would land unnoticed.
    if version is None:
        raise ValidationError(
            {"version": "The item's version is missing; reload the page and try again."}
        )
    locked = ChecklistItem.objects.select_for_update().select_related("change").get(pk=item.pk)
    if locked.version != version:
        who = locked.actor_name or "a worker"
        raise Conflict(
            f"“{locked.title}” was changed by {who} meanwhile (it is now "
            f"{locked.get_state_display().lower()}); reload the page and try again."
        )
    if locked.change.status in CLOSED:
        raise ValidationError(f"{locked.change.number} has shipped; its checklist is closed.")
    return locked


def set_state(item: ChecklistItem, *, actor, state: str, reason: str = "", **extra) -> None:
    before = snapshot(item, ITEM_FIELDS)
    item.state, item.reason = state, reason
    item.actor = actor
    item.actor_name = actor.get_username() if actor else "worker"
    item.ticked_at = timezone.now() if state != ItemState.OPEN else None
    for name, value in extra.items():
        setattr(item, name, value)
    item.version = F("version") + 1
    item.save()
    item.refresh_from_db(fields=["version"])
    action = {"done": "tick", "skipped": "skip", "open": "reopen"}[state]
    audit_record(
        actor=actor, action=action, obj=item, before=before, after=snapshot(item, ITEM_FIELDS)
    )
