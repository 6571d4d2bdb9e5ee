"""Reads: where a user can hear things, what they chose, and what was sent about a change."""

from __future__ import annotations

from dataclasses import dataclass

from .models import Channel, Delivery, Endpoint, EventKind, Preference
from .notices import AUDIENCE, AUDIENCE_LABEL, DEFAULT_EMAIL


@dataclass(frozen=True)
class Destination:
    """Email, or one admin-registered endpoint."""

    channel: str
    endpoint: Endpoint | None = None

    @property
    def key(self) -> str:
        return f"endpoint-{self.endpoint.pk}" if self.endpoint else self.channel

    @property
    def label(self) -> str:
        return str(self.endpoint) if self.endpoint else Channel(self.channel).label

    @property
    def endpoint_id(self) -> int | None:
        return self.endpoint.pk if self.endpoint else None


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


def _choices(user, kinds) -> dict[tuple[str, str, int | None], bool]:
    rows = Preference.objects.filter(user=user, event__in=kinds)
    return {(p.event, p.channel, p.endpoint_id): p.enabled for p in rows}


def wanted(user, kind: str) -> list[Destination]:
    """Where `user` hears `kind`: their choices, the defaults where they made none."""
    chosen = _choices(user, [kind])
    return [
        d
        for d in destinations()
        if chosen.get((kind, d.channel, d.endpoint_id), is_default(kind, d))
    ]


@dataclass(frozen=True)
class Row:
    kind: EventKind
    audience: str
    cells: list[tuple[Destination, bool]]


def preference_rows(user) -> list[Row]:
    """Every kind of event against every destination, on or off for `user`."""
    places = destinations()
    chosen = _choices(user, EventKind.values)
    return [
        Row(
            kind=kind,
            audience=AUDIENCE_LABEL[AUDIENCE[kind]],
            cells=[
                (d, chosen.get((kind.value, d.channel, d.endpoint_id), is_default(kind, d)))
                for d in places
            ],
        )
        for kind in EventKind
    ]


def change_deliveries(change):
    """What was sent (or tried) about `change`, newest first."""
    return Delivery.objects.filter(change=change).select_related("endpoint")
