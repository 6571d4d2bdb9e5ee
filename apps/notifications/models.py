"""Who hears what, where, and what was sent.

Admins register where webhooks and Slack messages may go (`Endpoint`); each user picks, per kind
of event, the channels they hear it on (`Preference`, only where they differ from the defaults);
every message sent or tried is a `Delivery`, unique per recipient, channel and state of the
object, so nobody is told twice about the same thing.
"""

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core.validators import URLValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.changes.models import Change
from apps.core.models import TimeStampedModel


class EventKind(models.TextChoices):
    MEASUREMENT_FINISHED = "measurement_finished", "A measurement of my change finished"
    REGRESSION_FOUND = "regression_found", "A measurement of my change found a regression"
    READY_FOR_REVIEW = "ready_for_review", "A change is ready for review"
    ITEM_VERIFIED = "item_verified", "A worker verified a checklist item of my change"
    CHANGE_SHIPPED = "change_shipped", "My change shipped"
    CHANGE_ROLLED_BACK = "change_rolled_back", "My change was rolled back"


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook"
    SLACK = "slack", "Slack"


class EndpointKind(models.TextChoices):
    WEBHOOK = Channel.WEBHOOK.value, "Webhook (signed JSON)"
    SLACK = Channel.SLACK.value, "Slack-compatible incoming webhook"


def generate_secret() -> str:
    return secrets.token_urlsafe(32)


class Endpoint(TimeStampedModel):
    """A URL an admin registered for webhooks or Slack messages.

    Users only choose among active endpoints and never type a URL, so nobody can make the
    workers call an address of their choosing. A webhook's body is signed with `secret`.
    """

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=EndpointKind.choices)
    url = models.URLField(
        "URL", max_length=500, validators=[URLValidator(schemes=["http", "https"])]
    )
    secret = models.CharField(
        max_length=200,
        default=generate_secret,
        help_text="Signs webhook bodies (HMAC-SHA256); the receiver checks it.",
    )
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{Channel(self.kind).label}: {self.name}"

    @property
    def channel(self) -> str:
        return self.kind


@dataclass(frozen=True)
class Destination:
    """Where one hears things: email, or one admin-registered endpoint."""

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


class Preference(TimeStampedModel):
    """One user's choice for one kind of event on one channel (an endpoint, for webhooks and
    Slack), where it differs from the defaults; without a row the default applies."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    event = models.CharField(max_length=40, choices=EventKind.choices)
    channel = models.CharField(max_length=20, choices=Channel.choices)
    endpoint = models.ForeignKey(
        Endpoint, null=True, blank=True, on_delete=models.CASCADE, related_name="preferences"
    )
    enabled = models.BooleanField()

    class Meta:
        constraints = [
            # NULLs are distinct in a unique index: email (no endpoint) needs its own.
            models.UniqueConstraint(
                fields=["user", "event", "channel"],
                condition=Q(endpoint__isnull=True),
                name="preference_user_event_channel_uniq",
            ),
            models.UniqueConstraint(
                fields=["user", "event", "endpoint"],
                condition=Q(endpoint__isnull=False),
                name="preference_user_event_endpoint_uniq",
            ),
            models.CheckConstraint(
                condition=Q(channel=Channel.EMAIL, endpoint__isnull=True)
                | (~Q(channel=Channel.EMAIL) & Q(endpoint__isnull=False)),
                name="preference_endpoint_iff_not_email",
            ),
        ]
        indexes = [
            # Who wants this kind of event: every subscriber reads it per event.
            models.Index(fields=["event", "enabled"], name="preference_event_idx"),
        ]

    def __str__(self) -> str:
        where = self.endpoint or self.get_channel_display()
        return f"{self.user}: {self.event} by {where} {'on' if self.enabled else 'off'}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class Delivery(TimeStampedModel):
    """One message to one recipient on one channel, about one state of one object.

    It is written with what it says (subject, text, payload) when the event arrives, so every
    attempt sends the same thing; a worker sends it, retrying with backoff, and records the
    outcome. `dedupe_key` is unique: the same event delivered twice creates nothing new.
    """

    dedupe_key = models.CharField(max_length=255, unique=True)
    event = models.CharField(max_length=40, choices=EventKind.choices)
    change = models.ForeignKey(Change, on_delete=models.CASCADE, related_name="deliveries")
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="notification_deliveries",
    )
    # Frozen like an audit entry's actor: the record reads right after the user is gone.
    recipient_name = models.CharField(max_length=150)
    channel = models.CharField(max_length=20, choices=Channel.choices)
    endpoint = models.ForeignKey(
        Endpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    subject = models.CharField(max_length=250)
    text = models.TextField()
    payload = models.JSONField(default=dict, help_text="The JSON body of webhooks.")
    status = models.CharField(
        max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True, help_text="Why the last attempt failed.")
    attempted_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # When the next attempt is due (now, or after a retry's backoff), and when a message for
    # it last reached the broker: beat publishes again an attempt long overdue.
    due_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    # The id of the request whose event it tells of, as on every kind of work (core.work):
    # the sending worker's log lines and beat's re-publishes carry it.
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            # A change's deliveries, newest first (its page and its API listing).
            models.Index(fields=["change", "-created"], name="delivery_change_idx"),
            # Pending deliveries long overdue (beat publishes them again).
            models.Index(fields=["status", "due_at"], name="delivery_status_due_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_event_display()} → {self.recipient_name} by {self.destination}"

    @property
    def destination(self) -> str:
        return Destination(self.channel, self.endpoint).label
