"""Domain events in, deliveries out: every event that concerns a change may tell someone."""

from apps.core import events

from .notices import BUILDERS, notice_of
from .services import notice_deliver


def on_event(event: events.Event) -> None:
    notice = notice_of(event)
    if notice is not None:
        notice_deliver(notice=notice)


def subscribe_all() -> None:
    for event_type in BUILDERS:
        events.subscribe(event_type, on_event)
