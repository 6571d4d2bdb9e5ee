"""What each domain event says, and to whom: a `Notice` per event, read from the database.

A notice names the object and the state it is about; with a recipient and a channel that makes
a delivery's dedupe key, so the same state is never told twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Q

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.changes.events import ChangeReadyForReview, ChangeRolledBack, ChangeShipped
from apps.changes.models import Change
from apps.checklists.events import ChecklistItemVerified
from apps.checklists.models import ChecklistItem
from apps.core.events import Event
from apps.measurements.events import MeasurementFinished, RegressionFound
from apps.measurements.models import Measurement

from .models import EventKind


class Audience:
    """Who an event kind concerns; preferences then say on which channels they hear it."""

    OWNER = "owner"
    REVIEWERS = "reviewers"


AUDIENCE = {
    EventKind.MEASUREMENT_FINISHED: Audience.OWNER,
    EventKind.REGRESSION_FOUND: Audience.OWNER,
    EventKind.READY_FOR_REVIEW: Audience.REVIEWERS,
    EventKind.ITEM_VERIFIED: Audience.OWNER,
    EventKind.CHANGE_SHIPPED: Audience.OWNER,
    EventKind.CHANGE_ROLLED_BACK: Audience.OWNER,
}
AUDIENCE_LABEL = {
    Audience.OWNER: "when it is your change",
    Audience.REVIEWERS: "reviewers and admins",
}
# What a team would pick: the owner hears how a measurement came out, reviewers hear that a
# change waits for them, by email; everything else is off until someone turns it on.
DEFAULT_EMAIL = {
    EventKind.MEASUREMENT_FINISHED,
    EventKind.REGRESSION_FOUND,
    EventKind.READY_FOR_REVIEW,
}


@dataclass(frozen=True)
class Notice:
    """One thing to tell: about `obj` (e.g. ``measurement:12``) reaching `state`."""

    kind: EventKind
    change: Change
    obj: str
    state: str
    subject: str
    text: str
    data: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return settings.SITE_URL.rstrip("/") + self.change.get_absolute_url()

    def audience(self) -> list[User]:
        if AUDIENCE[self.kind] == Audience.OWNER:
            owner = self.change.owner
            return [owner] if owner.is_active else []
        reviewers = Q(is_superuser=True) | Q(groups__name__in=[Role.REVIEWER, Role.ADMIN])
        return list(User.objects.filter(reviewers, is_active=True).distinct().order_by("pk"))

    def payload(self) -> dict:
        """The JSON a webhook receives."""
        return {
            "event": self.kind.value,
            "subject": self.subject,
            "text": self.text,
            "change": {
                "number": self.change.number,
                "title": self.change.title,
                "status": self.change.status,
                "project": self.change.project.slug,
                "owner": self.change.owner.get_username(),
                "url": self.url,
            },
            "data": self.data,
        }


def _change(change_id: int | None) -> Change | None:
    if change_id is None:
        return None
    return Change.objects.select_related("project", "owner").filter(pk=change_id).first()


def _head(change: Change) -> str:
    return change.head_sha or change.head_revision or "?"


def _measurement_finished(event: MeasurementFinished, change: Change) -> Notice:
    measurement = Measurement.objects.select_related("profile").filter(pk=event.measurement_id)
    profile = m.profile.name if (m := measurement.first()) else ""
    verdicts = ", ".join(f"{metric} {verdict}" for metric, verdict in event.verdicts)
    named = f" ({profile})" if profile else ""
    lines = [f"Measurement {event.measurement_id}{named} ended: {event.status}."]
    if verdicts:
        lines.append(f"Verdicts: {verdicts}.")
    lines += [f"Blocks shipping: {reason}" for reason in event.blockers]
    return Notice(
        kind=EventKind.MEASUREMENT_FINISHED,
        change=change,
        obj=f"measurement:{event.measurement_id}",
        state=event.status,
        subject=f"{change.number}: measurement {event.status}",
        text="\n".join(lines),
        data={
            "measurement": event.measurement_id,
            "profile": profile,
            "status": event.status,
            "verdicts": dict(event.verdicts),
            "blockers": list(event.blockers),
        },
    )


def _regression_found(event: RegressionFound, change: Change) -> Notice:
    metrics = sorted(event.metrics)
    return Notice(
        kind=EventKind.REGRESSION_FOUND,
        change=change,
        obj=f"measurement:{event.measurement_id}",
        state="regressed:" + ",".join(metrics),
        subject=f"{change.number}: regression in {', '.join(metrics)}",
        text=f"Measurement {event.measurement_id} found a regression in {', '.join(metrics)}.",
        data={"measurement": event.measurement_id, "metrics": metrics},
    )


def _ready_for_review(event: ChangeReadyForReview, change: Change) -> Notice:
    return Notice(
        kind=EventKind.READY_FOR_REVIEW,
        change=change,
        obj=f"change:{change.pk}",
        # Ready again at another revision is news; ready again at the same one is not.
        state=f"ready@{_head(change)}",
        subject=f"{change.number} is ready for review",
        text=f"{change.number} {change.title}: its measurements are in; it waits for a review.",
        data={"head": _head(change)},
    )


def _item_verified(event: ChecklistItemVerified, change: Change) -> Notice:
    item = ChecklistItem.objects.filter(pk=event.item_id).first()
    title = item.title if item else f"item {event.item_id}"
    outcome = "passed" if event.passed else "failed"
    text = f"{change.number}: the check “{title}” {outcome}."
    if event.reason:
        text += f"\n{event.reason}"
    return Notice(
        kind=EventKind.ITEM_VERIFIED,
        change=change,
        obj=f"item:{event.item_id}",
        state=f"{outcome}@{_head(change)}",
        subject=f"{change.number}: “{title}” {outcome}",
        text=text,
        data={"item": event.item_id, "title": title, "passed": event.passed},
    )


def _shipped(event: ChangeShipped, change: Change) -> Notice:
    overridden = " (an admin overrode the blockers)" if event.overridden else ""
    return Notice(
        kind=EventKind.CHANGE_SHIPPED,
        change=change,
        obj=f"change:{change.pk}",
        state=f"shipped:{event.tag_name}",
        subject=f"{change.number} shipped as {event.tag_name}",
        text=f"{change.number} {change.title} shipped, tagged {event.tag_name}{overridden}.",
        data={"tag": event.tag_name, "overridden": event.overridden},
    )


def _rolled_back(event: ChangeRolledBack, change: Change) -> Notice:
    reverse = f"FIX-{event.rollback_id}"
    return Notice(
        kind=EventKind.CHANGE_ROLLED_BACK,
        change=change,
        obj=f"change:{change.pk}",
        state=f"rolled_back:{event.rollback_id}",
        subject=f"{change.number} is being rolled back by {reverse}",
        text=f"{change.number} {change.title} is being rolled back by {reverse}.",
        data={"rollback": reverse},
    )


BUILDERS = {
    MeasurementFinished: _measurement_finished,
    RegressionFound: _regression_found,
    ChangeReadyForReview: _ready_for_review,
    ChecklistItemVerified: _item_verified,
    ChangeShipped: _shipped,
    ChangeRolledBack: _rolled_back,
}


def notice_of(event: Event) -> Notice | None:
    """The notice an event makes, or None when it concerns no change (a calibration)."""
    change = _change(event.change_id)
    if change is None:
        return None
    return BUILDERS[type(event)](event, change)
