"""Email: who hears what by default, through Django's test mail backend."""

import pytest
from django.conf import settings
from django.core import mail

from apps.changes.events import ChangeReadyForReview, ChangeShipped
from apps.measurements.events import MeasurementFinished, RegressionFound
from apps.notifications.models import DeliveryStatus

from .helpers import notify, send_all

pytestmark = pytest.mark.django_db


def finished(change, **kw):
    return MeasurementFinished(
        measurement_id=kw.get("measurement_id", 41),
        change_id=change.pk,
        status=kw.get("status", "done"),
        verdicts=(("peak_rss", "improved"), ("wall_time", "no detectable change")),
    )


def test_the_owner_hears_by_email_when_a_measurement_finishes(
    change, engineer, reviewer, admin, viewer, django_capture_on_commit_callbacks
):
    deliveries = notify(finished(change), django_capture_on_commit_callbacks)
    assert [(d.recipient, d.channel) for d in deliveries] == [(engineer, "email")]
    send_all()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["erin@example.com"]
    assert change.number in message.subject and "done" in message.subject
    assert "peak_rss improved" in message.body
    assert settings.SITE_URL.rstrip("/") + change.get_absolute_url() in message.body
    deliveries[0].refresh_from_db()
    assert deliveries[0].status == DeliveryStatus.SENT and deliveries[0].sent_at is not None


def test_the_owner_hears_of_a_regression(change, engineer, django_capture_on_commit_callbacks):
    event = RegressionFound(measurement_id=41, change_id=change.pk, metrics=("peak_rss",))
    notify(event, django_capture_on_commit_callbacks)
    send_all()
    assert [m.to for m in mail.outbox] == [["erin@example.com"]]
    assert "regression in peak_rss" in mail.outbox[0].subject


def test_reviewers_and_admins_hear_that_a_change_is_ready(
    change, engineer, reviewer, admin, viewer, django_capture_on_commit_callbacks
):
    notify(ChangeReadyForReview(change_id=change.pk), django_capture_on_commit_callbacks)
    send_all()
    assert sorted(m.to[0] for m in mail.outbox) == ["ada@example.com", "rita@example.com"]


def test_nothing_else_is_on_by_default(change, engineer, django_capture_on_commit_callbacks):
    event = ChangeShipped(change_id=change.pk, actor_id=None, tag_name="fix-1")
    assert notify(event, django_capture_on_commit_callbacks) == []


def test_nobody_is_told_twice_about_the_same_state(
    change, engineer, django_capture_on_commit_callbacks
):
    assert len(notify(finished(change), django_capture_on_commit_callbacks)) == 1
    assert notify(finished(change), django_capture_on_commit_callbacks) == []
    send_all()
    assert len(mail.outbox) == 1
    # Another measurement is another state: told again.
    assert len(notify(finished(change, measurement_id=42), django_capture_on_commit_callbacks))


def test_a_measurement_outside_a_change_tells_nobody(engineer, django_capture_on_commit_callbacks):
    event = MeasurementFinished(measurement_id=7, change_id=None, status="done")
    assert notify(event, django_capture_on_commit_callbacks) == []


def test_a_user_without_an_address_is_a_failed_delivery_with_the_reason(
    change, engineer, django_capture_on_commit_callbacks
):
    engineer.email = ""
    engineer.save()
    [delivery] = notify(finished(change), django_capture_on_commit_callbacks)
    send_all()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.error == "erin has no email address (after 1 attempt)"
    assert mail.outbox == []


def test_a_delivery_sent_twice_sends_once(change, engineer, django_capture_on_commit_callbacks):
    from apps.notifications.tasks import send_delivery

    [delivery] = notify(finished(change), django_capture_on_commit_callbacks)
    send_delivery.apply(args=[delivery.pk])
    send_delivery.apply(args=[delivery.pk])
    assert len(mail.outbox) == 1
