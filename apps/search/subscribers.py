"""Keeping the index current: every event that changes what search sees re-indexes the change.

Registered in `SearchConfig.ready()`; each runs after the write that caused it commits.
"""

from apps.changes.events import ChangesFiled

from . import index


def index_filed(event: ChangesFiled) -> None:
    """Changes just filed, one or thousands: indexed in batches."""
    index.index_filed(event.change_ids)


def index_changed(event) -> None:
    """Any event naming one `change_id` whose text, status, verdicts or gains moved."""
    if event.change_id is not None:
        index.index_changes([event.change_id])
