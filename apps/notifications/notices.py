"""What each domain event says, and to whom: a `Notice` per event, read from the database.

A notice names the object and the state it is about; with a recipient and a channel that makes
a delivery's dedupe key, so the same state is never told twice. What it says is for people:
the change's number, title and project, verdicts by their labels with their gains, never a
metric's key or a status value; the channels add the link to the change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Q

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.changes.events import ChangeReadyForReview, ChangeRolledBack, ChangeShipped
from apps.changes.models import Change, verdict_line_of
from apps.checklists.events import ChecklistItemVerified
from apps.checklists.models import ChecklistItem
from apps.core.events import Event
from apps.core.units import signed_pct
from apps.measurements import metrics
from apps.measurements.events import MeasurementFinished, RegressionFound
from apps.measurements.judging import headline_of
from apps.measurements.models import Measurement, MeasurementStatus

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


# A title longer than this is cut in subjects: the number says which change it is.
SUBJECT_TITLE_CHARS = 60


@dataclass(frozen=True)
class Notice:
    """One thing to tell: about `obj` (e.g. ``measurement:12``) reaching `state`.

    `summary` says what happened in a few words ("measured, improved wall time \u221248.2 %"),
    `lines` the details. Whoever hears `unless` on a channel is not told this notice there:
    that other notice says all this one does (a measurement's regression, its finish).
    """

    kind: EventKind
    change: Change
    obj: str
    state: str
    summary: str
    lines: tuple[str, ...] = ()
    data: dict = field(default_factory=dict)
    unless: EventKind | None = None

    @property
    def url(self) -> str:
        return settings.SITE_URL.rstrip("/") + self.change.get_absolute_url()

    @property
    def subject(self) -> str:
        title = self.change.title
        if len(title) > SUBJECT_TITLE_CHARS:
            title = title[: SUBJECT_TITLE_CHARS - 1].rstrip() + "…"
        return f"{self.change.number} {title}: {self.summary}"

    @property
    def text(self) -> str:
        """The details, under the subject (which names the change)."""
        about = f"Project {self.change.project.name} · owner {self.change.owner.get_username()}"
        return "\n".join([about, "", *(line for line in self.lines if line)])

    def audience(self) -> list[User]:
        if AUDIENCE[self.kind] == Audience.OWNER:
            owner = self.change.owner
            return [owner] if owner.is_active else []
        reviewers = Q(is_superuser=True) | Q(groups__name__in=[Role.REVIEWER, Role.ADMIN])
        return list(User.objects.filter(reviewers, is_active=True).distinct().order_by("pk"))

    def payload(self) -> dict:
        """The JSON a webhook receives (a Slack message is made from it too)."""
        return {
            "event": self.kind.value,
            "summary": self.summary,
            "subject": self.subject,
            "text": self.text,
            "change": {
                "number": self.change.number,
                "title": self.change.title,
                "status": self.change.status,
                "project": self.change.project.slug,
                "project_name": self.change.project.name,
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


def _short(sha: str) -> str:
    return sha[:12]


def _person(user_id: int | None) -> str:
    user = User.objects.filter(pk=user_id).first() if user_id else None
    return (user.get_full_name() or user.get_username()) if user else "someone"


def _verdict(line: dict | None) -> str:
    """A headline (`metrics.headline`) in words: "improved wall time \u221248.2 %"."""
    words = verdict_line_of(line)
    return f"{words['verdict']} {words['gain']}".strip() if words else "no verdict"


@dataclass(frozen=True)
class _Shown:
    label: str
    result: dict
    blocks: bool

    @property
    def gain(self) -> str:
        pct = self.result.get("change_pct")
        return signed_pct(pct) if pct is not None else ""


def _results(measurement: Measurement) -> list[_Shown]:
    """Each metric that gates the release (or is critical), in the order measured, with
    whether it keeps the change from shipping; an HTTP endpoint's own only where it does."""
    policy = metrics.policy_of(measurement.profile)
    shown = []
    for result in measurement.results or []:
        metric = metrics.result_metric(policy, result)
        blocks = metrics.blocks(result, metric)
        if metric.role is metrics.Role.INFORMATIONAL or (result.get("endpoint") and not blocks):
            continue
        shown.append(_Shown(metric.label, result, blocks))
    return shown


def _measured(measurement: Measurement) -> list[str]:
    """What a finished measurement found: each gating verdict with its gain and whether it
    blocks shipping, and whether the expected result was met."""
    named = f"Measurement {measurement.pk} with “{measurement.profile.name}”"
    at = f"{_short(measurement.base_sha)} → {_short(measurement.head_sha)}"
    if measurement.status != MeasurementStatus.DONE:
        status = measurement.get_status_display().lower()
        lines = [f"{named} ({at}) {status}."]
        if measurement.error:
            lines.append(f"Why: {measurement.error[:300]}")
        return lines
    lines = [f"{named} ({at}) finished. Gating metrics:"]
    for shown in _results(measurement):
        verdict = shown.result.get("verdict") or "inconclusive"
        blocks = " (blocks shipping)" if shown.blocks else ""
        lines.append(f"- {shown.label}: {verdict} {shown.gain}".rstrip() + blocks)
    expected = measurement.change.expected_result if measurement.change else ""
    if expected and measurement.expectation:
        lines.append(f"Expected {expected}: {measurement.expectation}.")
    return lines


def _measurement(event) -> Measurement | None:
    return (
        Measurement.objects.select_related("profile", "change")
        .filter(pk=event.measurement_id)
        .first()
    )


def _measurement_finished(event: MeasurementFinished, change: Change) -> Notice | None:
    measurement = _measurement(event)
    if measurement is None:
        return None
    if measurement.status == MeasurementStatus.DONE:
        summary = f"measured, {_verdict(headline_of(measurement))}"
    else:
        summary = f"measurement {measurement.get_status_display().lower()}"
    return Notice(
        kind=EventKind.MEASUREMENT_FINISHED,
        change=change,
        obj=f"measurement:{event.measurement_id}",
        state=event.status,
        summary=summary,
        lines=tuple(_measured(measurement)),
        data={
            "measurement": event.measurement_id,
            "profile": measurement.profile.name,
            "status": event.status,
            "verdicts": dict(event.verdicts),
            "blockers": list(event.blockers),
        },
        # The owner who hears of regressions gets that message instead: one, saying it all.
        unless=EventKind.REGRESSION_FOUND if event.regressed else None,
    )


def _regression_found(event: RegressionFound, change: Change) -> Notice | None:
    measurement = _measurement(event)
    if measurement is None:
        return None
    keys = sorted(event.metrics)
    labelled = {shown.result["metric"]: shown for shown in _results(measurement)}
    regressed = [
        f"{labelled[key].label} {labelled[key].gain}".strip()
        if key in labelled
        else metrics.label_of(key)
        for key in event.metrics
    ]
    return Notice(
        kind=EventKind.REGRESSION_FOUND,
        change=change,
        obj=f"measurement:{event.measurement_id}",
        state="regressed:" + ",".join(keys),
        summary="regressed " + ", ".join(regressed),
        lines=tuple(_measured(measurement)),
        data={"measurement": event.measurement_id, "metrics": keys},
    )


def _ready_for_review(event: ChangeReadyForReview, change: Change) -> Notice | None:
    line = change.latest_verdict
    if not line:
        # Nothing finished with a verdict (it failed or was cancelled): nothing to review.
        return None
    if change.measurements.filter(status=MeasurementStatus.WAITING).exists():
        # Live staging took its before snapshot and waits for the deploy: not in yet.
        return None
    head = _head(change)
    return Notice(
        kind=EventKind.READY_FOR_REVIEW,
        change=change,
        obj=f"change:{change.pk}",
        # Ready again at another revision is news; ready again at the same one is not.
        state=f"ready@{head}",
        summary="ready for review",
        lines=(
            f"Its measurements are in at {_short(head)}. Latest verdict: {_verdict(line)}"
            + (f" (measurement {line['measurement']})." if line.get("measurement") else "."),
            f"Expected: {change.expected_result}." if change.expected_result else "",
            "Review its checklist, then ship it or send it back.",
        ),
        data={"head": head, "verdict": line},
    )


def _item_verified(event: ChecklistItemVerified, change: Change) -> Notice:
    item = ChecklistItem.objects.filter(pk=event.item_id).first()
    title = item.title if item else f"item {event.item_id}"
    outcome = "passed" if event.passed else "failed"
    lines = [f"A worker checked “{title}” at {_short(_head(change))}: {outcome}."]
    if event.reason:
        lines.append(f"Why: {event.reason}")
    return Notice(
        kind=EventKind.ITEM_VERIFIED,
        change=change,
        obj=f"item:{event.item_id}",
        state=f"{outcome}@{_head(change)}",
        summary=f"“{title}” {outcome}",
        lines=tuple(lines),
        data={"item": event.item_id, "title": title, "passed": event.passed},
    )


def _shipped(event: ChangeShipped, change: Change) -> Notice:
    lines = [f"{_person(event.actor_id)} tagged {_short(_head(change))} as {event.tag_name}."]
    if event.overridden:
        why = f": “{event.override_reason}”" if event.override_reason else ""
        lines.append(f"It shipped over the release checklist's blockers, by override{why}.")
    return Notice(
        kind=EventKind.CHANGE_SHIPPED,
        change=change,
        obj=f"change:{change.pk}",
        state=f"shipped:{event.tag_name}",
        summary=f"shipped as {event.tag_name}",
        lines=tuple(lines),
        data={"tag": event.tag_name, "overridden": event.overridden},
    )


def _rolled_back(event: ChangeRolledBack, change: Change) -> Notice:
    reverse = _change(event.rollback_id)
    number = reverse.number if reverse else f"change {event.rollback_id}"
    shipped = f" as {reverse.tag_name}" if reverse and reverse.tag_name else ""
    return Notice(
        kind=EventKind.CHANGE_ROLLED_BACK,
        change=change,
        obj=f"change:{change.pk}",
        state=f"rolled_back:{event.rollback_id}",
        summary=f"rolled back by {number}",
        lines=(f"{_person(event.actor_id)} shipped {number}, its reverse{shipped}.",),
        data={"rollback": number},
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
    """The notice an event makes, or None when it concerns no change (a calibration) or says
    nothing worth telling."""
    change = _change(event.change_id)
    if change is None:
        return None
    return BUILDERS[type(event)](event, change)
