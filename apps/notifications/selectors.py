"""Reads: where a user can hear things, what they chose, and what was sent about a change."""

from __future__ import annotations

from dataclasses import dataclass

from .models import Channel, Delivery, Destination, Endpoint, EventKind, Preference
from .notices import AUDIENCE, AUDIENCE_LABEL, DEFAULT_EMAIL

EMAIL = Destination(Channel.EMAIL)


def destinations() -> list[Destination]:
    """Everywhere a user may choose to hear things: email and every active endpoint."""
    endpoints = Endpoint.objects.filter(active=True).order_by("kind", "name")
    return [EMAIL, *(Destination(e.kind, e) for e in endpoints)]


def destination_by_key(key: str) -> Destination | None:
    """The destination a form or API names by its key; None for anything not registered."""
    return next((d for d in destinations() if d.key == key), None)


def is_default(kind: str, destination: Destination) -> bool:
    return destination.channel == Channel.EMAIL and kind in DEFAULT_EMAIL


class _Choices:
    """`user`'s choices for these kinds of event; the defaults where they made none."""

    def __init__(self, user, kinds) -> None:
        rows = Preference.objects.filter(user=user, event__in=kinds)
        self.chosen = {(p.event, p.channel, p.endpoint_id): p.enabled for p in rows}

    def on(self, kind: str, destination: Destination) -> bool:
        key = (kind, destination.channel, destination.endpoint_id)
        return self.chosen.get(key, is_default(kind, destination))


def wanted(user, kind: str) -> list[Destination]:
    """Where `user` hears `kind`: their choices, the defaults where they made none."""
    choices = _Choices(user, [kind])
    return [d for d in destinations() if choices.on(kind, d)]


@dataclass(frozen=True)
class Row:
    kind: EventKind
    audience: str
    cells: list[tuple[Destination, bool]]


def preference_rows(user) -> list[Row]:
    """Every kind of event against every destination, on or off for `user`."""
    places = destinations()
    choices = _Choices(user, EventKind.values)
    return [
        Row(
            kind=kind,
            audience=AUDIENCE_LABEL[AUDIENCE[kind]],
            cells=[(d, choices.on(kind.value, d)) for d in places],
        )
        for kind in EventKind
    ]


def change_deliveries(change):
    """What was sent (or tried) about `change`, newest first."""
    return Delivery.objects.filter(change=change).select_related("endpoint")
