from apps.changes.models import ChangeStatus
from apps.core.queues import waiting_notice

from .items import can_tick
from .models import VerificationStatus
from .notes import notes_html
from .shipping import ship_gate

WAITING = (VerificationStatus.QUEUED, VerificationStatus.RUNNING)


def checklist_section(user, change) -> dict:
    """The change page's checklist: items with what this user may do, and what blocks shipping."""
    items = list(change.checklist.select_related("environment"))
    for item in items:
        item.can_tick = can_tick(user, change, item)
        item.waiting = (
            waiting_notice(
                since=item.updated,
                queue=item.environment.queue if item.environment else "default",
            )
            if item.verification == VerificationStatus.QUEUED
            else ""
        )
    closed = change.status in (ChangeStatus.SHIPPED, ChangeStatus.ROLLED_BACK)
    gate = [] if closed else ship_gate(change)
    return {
        "checklist": items,
        "ship_blockers": [text for text, _overridable in gate],
        # Offered only when it could work: see ship_gate.
        "can_override": all(overridable for _text, overridable in gate),
        # A worker verifies an item: the section asks again until it is over.
        "verifying": any(item.verification in WAITING for item in items),
        "notes_html": notes_html(change.final_notes) if change.final_notes else "",
    }
