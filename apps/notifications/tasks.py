"""Sending deliveries on workers: a thin shell around the channels and the services."""

import logging

from celery import shared_task

from . import channels
from .services import deliveries_reconcile, delivery_claim, delivery_failed, delivery_sent

log = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, max_retries=None)
def send_delivery(self, delivery_id: int) -> None:
    """One attempt at one delivery; on a passing failure, another after a growing wait.

    The attempts are counted on the row (NOTIFICATION_MAX_ATTEMPTS bounds them), so a
    duplicate message neither sends twice at once nor adds attempts.
    """
    delivery = delivery_claim(delivery_id=delivery_id)
    if delivery is None:
        return
    try:
        channels.send(delivery)
    except channels.DeliveryError as exc:
        final = isinstance(exc, channels.PermanentError)
        delay = delivery_failed(delivery=delivery, error=str(exc), final=final)
        log.warning("delivery %s, attempt %s failed: %s", delivery.pk, delivery.attempts, exc)
        if delay is not None:
            raise self.retry(countdown=delay) from None
        return
    except Exception as exc:
        # A bug or an unforeseen library error: recorded on the delivery, never retried blindly.
        log.exception("delivery %s failed", delivery.pk)
        delivery_failed(delivery=delivery, error=f"internal error: {exc!r}", final=True)
        return
    delivery_sent(delivery=delivery)


@shared_task
def reconcile_deliveries() -> None:
    deliveries_reconcile()
