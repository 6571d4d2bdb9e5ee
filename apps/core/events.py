"""Domain events: one part says "this happened" without knowing who listens.

A service publishes an event inside its transaction; subscribers run after that transaction
commits, so nobody reacts to a change that was rolled back. Each subscriber runs in its own
transaction and a failing subscriber is logged without stopping the others (its work is a
reaction, never part of the write that caused it).

Events are frozen dataclasses that carry primary keys and small values only, defined by the app
that publishes them (``apps/<app>/events.py``). Subscribers register in their app's ``ready()``::

    events.subscribe(ChangesFiled, checklist_on_changes_filed)
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from django.db import transaction

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """Base of every domain event."""


E = TypeVar("E", bound=Event)
Subscriber = Callable[[E], None]

_subscribers: dict[type[Event], list[Subscriber]] = defaultdict(list)


def subscribe(event_type: type[E], subscriber: Subscriber) -> None:
    """Call ``subscriber(event)`` after commit for every published event of this type.

    Registering the same subscriber twice (``ready()`` runs again in some test set-ups) is a no-op.
    """
    if subscriber not in _subscribers[event_type]:
        _subscribers[event_type].append(subscriber)


def unsubscribe(event_type: type[E], subscriber: Subscriber) -> None:
    if subscriber in _subscribers[event_type]:
        _subscribers[event_type].remove(subscriber)


def subscribers_of(event_type: type[Event]) -> list[Subscriber]:
    return list(_subscribers.get(event_type, ()))


@dataclass(frozen=True)
class Delivery:
    """The on-commit callback that delivers one event (so tests can tell it from others)."""

    event: Event

    def __call__(self) -> None:
        deliver(self.event)


def publish(event: Event) -> None:
    """Deliver ``event`` to its subscribers once the current transaction commits.

    Outside a transaction it is delivered at once.
    """
    transaction.on_commit(Delivery(event))


def deliver(event: Event) -> None:
    """Run every subscriber of ``event`` now, each in its own transaction."""
    for subscriber in subscribers_of(type(event)):
        try:
            with transaction.atomic():
                subscriber(event)
        except Exception:
            logger.exception(
                "subscriber %s failed on %s",
                getattr(subscriber, "__qualname__", subscriber),
                event,
            )
