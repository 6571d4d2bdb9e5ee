"""One small module per channel; each sends one delivery or raises why it could not.

`DeliveryError` is worth retrying (a receiver down, a timeout, a 5xx); `PermanentError` is not
(no address to send to, a redirect, a refused request): the delivery fails at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..models import Delivery


class DeliveryError(Exception):
    """The attempt failed; a later one may succeed."""


class PermanentError(DeliveryError):
    """The attempt failed in a way no retry will mend."""


def send(delivery: Delivery) -> None:
    from . import email, slack, webhook

    senders = {"email": email.send, "webhook": webhook.send, "slack": slack.send}
    senders[delivery.channel](delivery)
