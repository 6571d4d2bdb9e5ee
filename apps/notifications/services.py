"""Writes on notifications: preferences, endpoints, and deliveries from notice to outcome."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.accounts.services import require_role
from apps.core import work
from apps.core.audit import audit_record, audit_update, snapshot

from .models import (
    Delivery,
    DeliveryStatus,
    Destination,
    Endpoint,
    EventKind,
    Preference,
    generate_secret,
)
from .notices import Notice
from .selectors import is_default, preference_rows, wanted

ENDPOINT_AUDITED = ["name", "kind", "url", "active"]


# --- preferences ---------------------------------------------------------------------------


def _key(kind: str, destination: Destination) -> str:
    return f"{kind} by {destination.label}"


@transaction.atomic
def preferences_set(
    *, actor: User, user: User, choices: list[tuple[str, Destination, bool]]
) -> None:
    """Turn `user`'s kinds of event on or off per destination; only they (or an admin) may.

    A choice equal to the default keeps no row, so the user follows the defaults there.
    """
    if actor is None or not actor.is_authenticated:
        raise PermissionDenied("Sign in to choose notifications.")
    if actor.pk != user.pk:
        require_role(actor, Role.ADMIN, doing="change another user's notifications")
    before, after = {}, {}
    current = {(row.kind.value, d.key): on for row in preference_rows(user) for d, on in row.cells}
    for kind, destination, enabled in choices:
        if kind not in EventKind.values:
            raise ValidationError({"event": f"No such kind of event: {kind!r}."})
        lookup = {"user": user, "event": kind, "channel": destination.channel}
        lookup["endpoint_id"] = destination.endpoint_id
        if enabled == is_default(kind, destination):
            Preference.objects.filter(**lookup).delete()
        else:
            Preference.objects.update_or_create(**lookup, defaults={"enabled": enabled})
        before[_key(kind, destination)] = current.get((kind, destination.key))
        after[_key(kind, destination)] = enabled
    audit_update(actor=actor, obj=user, before=before, after=after)


# --- endpoints -----------------------------------------------------------------------------


@transaction.atomic
def endpoint_save(*, actor: User, endpoint: Endpoint) -> str | None:
    """Create or edit an endpoint (admins only). Returns a newly generated secret, to be shown
    once, or None when the secret was kept or given."""
    require_role(actor, Role.ADMIN, doing="register notification endpoints")
    generated = None
    if not endpoint.secret:
        endpoint.secret = generated = generate_secret()
    endpoint.full_clean()
    stored = Endpoint.objects.select_for_update().filter(pk=endpoint.pk).first()
    endpoint.save()
    after = snapshot(endpoint, ENDPOINT_AUDITED)
    if stored is None:
        audit_record(actor=actor, action="create", obj=endpoint, after=after)
        return generated
    # The secret never goes into the audit trail; that it changed does.
    before = {**snapshot(stored, ENDPOINT_AUDITED), "secret": "old"}
    after["secret"] = "old" if stored.secret == endpoint.secret else "new"
    audit_update(actor=actor, obj=endpoint, before=before, after=after)
    return generated


# --- deliveries ----------------------------------------------------------------------------


def dedupe_key(notice: Notice, recipient: User, destination: Destination) -> str:
    """Event kind + object + state + recipient + channel, at most 255 characters."""
    key = f"{notice.kind}|{notice.obj}|{notice.state}|user:{recipient.pk}|{destination.key}"
    if len(key) <= 255:
        return key
    return key[:180] + "|sha256:" + hashlib.sha256(key.encode()).hexdigest()


@transaction.atomic
def notice_deliver(*, notice: Notice) -> list[Delivery]:
    """Write a delivery for each recipient and channel that wants `notice` and was not told
    about this state yet; each is sent by a worker once this transaction commits."""
    created = []
    for recipient in notice.audience():
        told_otherwise = wanted(recipient, notice.unless) if notice.unless else []
        for destination in wanted(recipient, notice.kind):
            if destination in told_otherwise:
                continue
            delivery, new = Delivery.objects.get_or_create(
                dedupe_key=dedupe_key(notice, recipient, destination),
                defaults={
                    "event": notice.kind,
                    "change": notice.change,
                    "recipient": recipient,
                    "recipient_name": recipient.get_username(),
                    "channel": destination.channel,
                    "endpoint": destination.endpoint,
                    "subject": notice.subject[:250],
                    "text": notice.text,
                    "payload": notice.payload(),
                },
            )
            if new:
                created.append(delivery)
                transaction.on_commit(partial(enqueue, delivery))
    return created


def enqueue(delivery: Delivery) -> bool:
    from .tasks import send_delivery

    return work.publish(send_delivery, delivery, args=[delivery.pk], queue="default")


def retry_delay(attempt: int) -> float:
    """Seconds before attempt `attempt + 1`: doubling from NOTIFICATION_RETRY_SECONDS."""
    return settings.NOTIFICATION_RETRY_SECONDS * 2 ** (attempt - 1)


def delivery_claim(*, delivery_id: int) -> Delivery | None:
    """Take the next attempt of a pending delivery; None if it is not pending or another
    message of it took this attempt first (a duplicate does nothing)."""
    row = Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING).first()
    if row is None:
        return None
    won = Delivery.objects.filter(
        pk=row.pk, status=DeliveryStatus.PENDING, attempts=row.attempts
    ).update(attempts=row.attempts + 1, attempted_at=timezone.now())
    if not won:
        return None
    return Delivery.objects.select_related("recipient", "endpoint").get(pk=row.pk)


def delivery_sent(*, delivery: Delivery) -> None:
    now = timezone.now()
    Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.SENT, sent_at=now, error=""
    )


def delivery_failed(*, delivery: Delivery, error: str, final: bool) -> float | None:
    """Record why an attempt failed. Returns the seconds to wait before the next attempt, or
    None when there is none: the error was final or the attempts are used up."""
    retry = not final and delivery.attempts < settings.NOTIFICATION_MAX_ATTEMPTS
    values = {"error": error}
    if retry:
        delay = retry_delay(delivery.attempts)
        values["due_at"] = timezone.now() + timedelta(seconds=delay)
    else:
        tries = f"after {delivery.attempts} attempt{'s' if delivery.attempts != 1 else ''}"
        values.update(status=DeliveryStatus.FAILED, error=f"{error} ({tries})")
    Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING).update(**values)
    return delay if retry else None


def deliveries_reconcile() -> int:
    """Publish again the deliveries whose attempt is long overdue: their message was lost (a
    broker outage at enqueue, a retry that could not be published)."""
    stale = work.stale_before()
    due = Delivery.objects.filter(
        Q(attempted_at__isnull=True) | Q(attempted_at__lt=F("due_at")),
        Q(published_at__isnull=True) | Q(published_at__lt=stale),
        status=DeliveryStatus.PENDING,
        due_at__lt=stale,
    ).order_by("due_at")[:500]
    return work.reconcile(due, send=enqueue)
