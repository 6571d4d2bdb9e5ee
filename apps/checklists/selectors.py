from apps.changes.models import ChangeStatus

from .services import can_tick, ship_blockers


def checklist_section(user, change) -> dict:
    """The change page's checklist: items with what this user may do, and what blocks shipping."""
    items = list(change.checklist.all())
    for item in items:
        item.can_tick = can_tick(user, change, item)
    closed = change.status in (ChangeStatus.SHIPPED, ChangeStatus.ROLLED_BACK)
    return {"checklist": items, "ship_blockers": [] if closed else ship_blockers(change)}
