from apps.changes.models import ChangeStatus

from .items import can_tick
from .shipping import ship_gate


def checklist_section(user, change) -> dict:
    """The change page's checklist: items with what this user may do, and what blocks shipping."""
    items = list(change.checklist.all())
    for item in items:
        item.can_tick = can_tick(user, change, item)
    closed = change.status in (ChangeStatus.SHIPPED, ChangeStatus.ROLLED_BACK)
    gate = [] if closed else ship_gate(change)
    return {
        "checklist": items,
        "ship_blockers": [text for text, _overridable in gate],
        # Offered only when it could work: see ship_gate.
        "can_override": all(overridable for _text, overridable in gate),
    }
