"""Email: who hears what by default, through Django's test mail backend."""

import pytest
from django.conf import settings
from django.core import mail

from apps.changes.events import ChangeReadyForReview, ChangeShipped
from apps.measurements.events import MeasurementFinished
from apps.measurements.models import Measurement, MeasurementStatus
from apps.notifications.models import DeliveryStatus, Destination, EventKind
from apps.notifications.services import preferences_set

from .helpers import REGRESSED, finished, measured, notify, regression, send_all

pytestmark = pytest.mark.django_db
MINUS = "\u2212"


def test_the_owner_hears_by_email_when_a_measurement_finishes(
    change, engineer, reviewer, admin, viewer, django_capture_on_commit_callbacks
):
    deliveries = notify(finished(measured(change)), django_capture_on_commit_callbacks)
    assert [(d.recipient, d.channel) for d in deliveries] == [(engineer, "email")]
    send_all()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["erin@example.com"]
    assert (
        message.subject
        == f"[fixledger] {change.number} {change.title}: measured, improved peak RSS {MINUS}31.5 %"
    )
    assert (
        f"- peak RSS: improved {MINUS}31.5 %\n- wall time: no detectable change +0.40 %"
        in message.body
    )
    assert settings.SITE_URL.rstrip("/") + change.get_absolute_url() in message.body
    deliveries[0].refresh_from_db()
    assert deliveries[0].status == DeliveryStatus.SENT and deliveries[0].sent_at is not None


def test_the_owner_hears_of_a_regression(change, engineer, django_capture_on_commit_callbacks):
    measurement = measured(change, REGRESSED)
    # The measurement's finish and its regression: one message, about the regression.
    notify(finished(measurement), django_capture_on_commit_callbacks)
    notify(regression(measurement), django_capture_on_commit_callbacks)
    send_all()
    assert [m.to for m in mail.outbox] == [["erin@example.com"]]
    assert mail.outbox[0].subject.endswith(": regressed wall time +12.0 %")


def test_who_hears_no_regressions_hears_the_finish_with_its_verdicts(
    change, engineer, django_capture_on_commit_callbacks
):
    preferences_set(
        actor=engineer,
        user=engineer,
        choices=[(EventKind.REGRESSION_FOUND, Destination("email"), False)],
    )
    measurement = measured(change, REGRESSED)
    [delivery] = notify(finished(measurement), django_capture_on_commit_callbacks)
    assert delivery.event == EventKind.MEASUREMENT_FINISHED
    assert "- wall time: regressed +12.0 % (blocks shipping)" in delivery.text
    assert notify(regression(measurement), django_capture_on_commit_callbacks) == []


def test_reviewers_and_admins_hear_that_a_change_is_ready(
    change, engineer, reviewer, admin, viewer, django_capture_on_commit_callbacks
):
    change.latest_verdict = {"verdict": "improved", "label": "peak RSS", "change_pct": -31.5}
    change.save()
    notify(ChangeReadyForReview(change_id=change.pk), django_capture_on_commit_callbacks)
    send_all()
    assert sorted(m.to[0] for m in mail.outbox) == ["ada@example.com", "rita@example.com"]
    assert f"Latest verdict: improved peak RSS {MINUS}31.5 %" in mail.outbox[0].body


def test_reviewers_hear_nothing_while_a_staging_measurement_waits_for_its_after_snapshot(
    change, reviewer, django_capture_on_commit_callbacks
):
    measured(change)
    change.latest_verdict = {"verdict": "improved", "label": "peak RSS", "change_pct": -31.5}
    change.save()
    waiting = measured(change, status=MeasurementStatus.WAITING, results=[])
    event = ChangeReadyForReview(change_id=change.pk)
    assert notify(event, django_capture_on_commit_callbacks) == []
    # Its after snapshot taken and compared: now it is ready.
    Measurement.objects.filter(pk=waiting.pk).update(status=MeasurementStatus.DONE)
    assert len(notify(event, django_capture_on_commit_callbacks)) == 1


def test_reviewers_hear_nothing_of_a_change_with_no_verdict(
    change, reviewer, django_capture_on_commit_callbacks
):
    # Its only measurement failed or was cancelled: there is nothing to review.
    assert (
        notify(ChangeReadyForReview(change_id=change.pk), django_capture_on_commit_callbacks) == []
    )


def test_nothing_else_is_on_by_default(change, engineer, django_capture_on_commit_callbacks):
    event = ChangeShipped(change_id=change.pk, actor_id=None, tag_name="fix-1")
    assert notify(event, django_capture_on_commit_callbacks) == []


def test_nobody_is_told_twice_about_the_same_state(
    change, engineer, django_capture_on_commit_callbacks
):
    measurement = measured(change)
    assert len(notify(finished(measurement), django_capture_on_commit_callbacks)) == 1
    assert notify(finished(measurement), django_capture_on_commit_callbacks) == []
    send_all()
    assert len(mail.outbox) == 1
    # Another measurement is another state: told again.
    assert len(notify(finished(measured(change)), django_capture_on_commit_callbacks))


def test_a_measurement_outside_a_change_tells_nobody(engineer, django_capture_on_commit_callbacks):
    event = MeasurementFinished(measurement_id=7, change_id=None, status="done")
    assert notify(event, django_capture_on_commit_callbacks) == []


def test_a_user_without_an_address_is_a_failed_delivery_with_the_reason(
    change, engineer, django_capture_on_commit_callbacks
):
    engineer.email = ""
    engineer.save()
    [delivery] = notify(finished(measured(change)), django_capture_on_commit_callbacks)
    send_all()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.error == "erin has no email address (after 1 attempt)"
    assert mail.outbox == []


def test_a_delivery_sent_twice_sends_once(change, engineer, django_capture_on_commit_callbacks):
    from apps.notifications.tasks import send_delivery

    [delivery] = notify(finished(measured(change)), django_capture_on_commit_callbacks)
    send_delivery.apply(args=[delivery.pk])
    send_delivery.apply(args=[delivery.pk])
    assert len(mail.outbox) == 1
