"""Webhooks and Slack messages, received by a real HTTP server on 127.0.0.1."""

import time
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from apps.core.events import deliver
from apps.notifications.channels.webhook import TIMESTAMP_HEADER
from apps.notifications.models import Delivery, DeliveryStatus, Destination, EventKind
from apps.notifications.services import preferences_set
from tests.workers import wait_for

from .conftest import HANG
from .helpers import REGRESSED, finished, measured, notify, regression, send_all


def hear(user, kind, endpoint, enabled=True):
    destination = Destination(endpoint.kind, endpoint)
    preferences_set(actor=user, user=user, choices=[(kind, destination, enabled)])


@pytest.fixture
def sent_to_webhook(change, engineer, receiver, webhook, django_capture_on_commit_callbacks):
    """sent_to_webhook() -> the webhook delivery of a finished measurement of `change`, once
    every attempt at it was made (the receiver answers `receiver.statuses`)."""

    def send() -> Delivery:
        hear(engineer, EventKind.MEASUREMENT_FINISHED, webhook[0])
        notify(finished(measured(change)), django_capture_on_commit_callbacks)
        send_all()
        return Delivery.objects.get(channel="webhook")

    return send


@pytest.mark.django_db
def test_a_webhook_is_signed_json_the_receiver_can_verify(
    change, engineer, receiver, webhook, django_capture_on_commit_callbacks
):
    endpoint, secret = webhook
    hear(engineer, EventKind.MEASUREMENT_FINISHED, endpoint)
    deliveries = notify(finished(measured(change)), django_capture_on_commit_callbacks)
    assert sorted(d.channel for d in deliveries) == ["email", "webhook"]
    send_all()
    [request] = receiver.received
    assert request.path == "/hook"
    timestamp = request.headers[TIMESTAMP_HEADER]
    assert abs(int(timestamp) - time.time()) < 60
    assert request.signed_with(secret)
    # A wrong secret does not verify: the check above can fail.
    assert not request.signed_with("other")
    body = request.json()
    assert body["event"] == "measurement_finished"
    assert body["change"]["number"] == change.number
    assert body["change"]["url"].endswith(change.get_absolute_url())
    assert body["data"]["verdicts"] == {"peak_rss": "improved", "wall": "no detectable change"}
    assert Delivery.objects.get(channel="webhook").status == DeliveryStatus.SENT


@pytest.mark.django_db
def test_a_failing_receiver_is_retried_then_the_delivery_fails_with_the_reason(
    settings, receiver, sent_to_webhook
):
    settings.NOTIFICATION_MAX_ATTEMPTS = 3
    receiver.statuses = [500]
    delivery = sent_to_webhook()
    assert len(receiver.received) == 3
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 3
    assert (
        delivery.error == "the receiver answered 500 Internal Server Error: nope (after 3 attempts)"
    )


@pytest.mark.django_db
def test_a_receiver_that_recovers_gets_the_delivery(receiver, sent_to_webhook):
    receiver.statuses = [503, 204]
    delivery = sent_to_webhook()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 2)
    # Every attempt sends the same body.
    assert receiver.received[0].body == receiver.received[1].body


@pytest.mark.django_db
def test_a_redirect_is_not_followed(receiver, sent_to_webhook):
    receiver.statuses = [302]
    delivery = sent_to_webhook()
    assert len(receiver.received) == 1
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.error == "the receiver redirected (302); not followed (after 1 attempt)"


@pytest.mark.django_db
def test_a_receiver_that_does_not_answer_times_out(settings, receiver, sent_to_webhook):
    settings.NOTIFICATION_HTTP_TIMEOUT = 1
    settings.NOTIFICATION_MAX_ATTEMPTS = 1
    receiver.statuses = [HANG]
    started = time.monotonic()
    delivery = sent_to_webhook()
    assert time.monotonic() - started < 2.5
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.error == "the receiver did not answer within 1 s (after 1 attempt)"


@pytest.mark.django_db
def test_a_request_the_receiver_refuses_is_not_retried(receiver, sent_to_webhook):
    receiver.statuses = [404]
    assert sent_to_webhook().status == DeliveryStatus.FAILED
    assert len(receiver.received) == 1


@pytest.mark.django_db
def test_slack_gets_text_with_a_link_to_the_change(
    change, engineer, receiver, slack, django_capture_on_commit_callbacks
):
    hear(engineer, EventKind.REGRESSION_FOUND, slack)
    notify(regression(measured(change, REGRESSED)), django_capture_on_commit_callbacks)
    send_all()
    [request] = receiver.received
    assert request.path == "/slack"
    body = request.json()
    assert set(body) == {"text"}
    url = change.get_absolute_url()
    assert f"|{change.number}>" in body["text"] and url in body["text"]
    title = f"{change.title}: regressed wall time +12.0 %"
    link = f"<{django_settings.SITE_URL.rstrip('/')}{url}|{change.number}>"
    assert body["text"].startswith(f"{link} {title}\n"), body["text"]
    assert "- wall time: regressed +12.0 %" in body["text"]


@pytest.mark.django_db
def test_a_deactivated_endpoint_fails_the_delivery(
    change, engineer, admin, receiver, webhook, django_capture_on_commit_callbacks
):
    from apps.notifications.services import endpoint_save

    endpoint, _secret = webhook
    hear(engineer, EventKind.MEASUREMENT_FINISHED, endpoint)
    notify(finished(measured(change)), django_capture_on_commit_callbacks)
    endpoint.active = False
    endpoint_save(actor=admin, endpoint=endpoint)
    send_all()
    assert receiver.received == []
    delivery = Delivery.objects.get(channel="webhook")
    assert delivery.status == DeliveryStatus.FAILED
    assert "deactivated" in delivery.error


def test_a_worker_retries_with_growing_waits(worker, change, engineer, receiver, webhook):
    """The real thing: a worker on the default queue, its retries through the broker."""
    receiver.statuses = [500, 502, 204]
    endpoint, _secret = webhook
    hear(engineer, EventKind.MEASUREMENT_FINISHED, endpoint)
    worker(env={"NOTIFICATION_RETRY_SECONDS": "0.5", "NOTIFICATION_MAX_ATTEMPTS": "4"})
    deliver(finished(measured(change)))  # no transaction here: sends are published at once
    delivery = Delivery.objects.get(channel="webhook")

    def sent():
        delivery.refresh_from_db()
        return delivery.status == DeliveryStatus.SENT

    wait_for(sent, timeout=60, what="the webhook delivery to be sent")
    assert delivery.attempts == 3
    first, second, third = (r.at for r in receiver.received)
    # 0.5 s, then 1 s: the backoff doubles.
    assert second - first >= 0.5
    assert third - second >= 1.0
    # The email went through the worker too, to the file backend.
    wait_for(
        lambda: Delivery.objects.filter(channel="email", status=DeliveryStatus.SENT).exists(),
        what="the email delivery",
    )


def test_a_delivery_whose_message_was_lost_is_sent_by_the_reconcile_pass(
    worker, change, engineer, receiver, webhook
):
    """The broker lost the messages (a Redis flush, a broken disk): the rows stay pending and
    the reconcile pass publishes them again once they are long overdue."""
    from apps.celery_app import app
    from apps.notifications.services import deliveries_reconcile

    hear(engineer, EventKind.MEASUREMENT_FINISHED, webhook[0])
    deliver(finished(measured(change)))
    with app.connection_for_write() as conn:
        app.control.purge(connection=conn)
    pending = Delivery.objects.filter(status=DeliveryStatus.PENDING)
    assert pending.count() == 2
    # Not yet overdue: nothing is published twice while its message may still be on its way.
    assert deliveries_reconcile() == 0
    long_ago = timezone.now() - timedelta(minutes=5)
    pending.update(due_at=long_ago, published_at=long_ago)
    assert deliveries_reconcile() == 2
    worker()
    wait_for(
        lambda: Delivery.objects.filter(status=DeliveryStatus.SENT).count() == 2,
        what="both deliveries",
    )
    assert len(receiver.received) == 1
    assert deliveries_reconcile() == 0
