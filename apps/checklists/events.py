"""What happens to a checklist, for the parts that react (notifications)."""

from dataclasses import dataclass

from apps.core.events import Event


@dataclass(frozen=True)
class ChecklistItemVerified(Event):
    """A worker finished verifying an item: ``passed`` says whether its check held."""

    item_id: int
    change_id: int
    passed: bool
    reason: str = ""
