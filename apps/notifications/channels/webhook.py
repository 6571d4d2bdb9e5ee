"""Webhooks: the notice as JSON, signed so the receiver knows it came from us, unchanged.

The signature is HMAC-SHA256 with the endpoint's secret over ``<timestamp>.<body>``; the
receiver recomputes it and refuses an old timestamp, so a captured request cannot be replayed
later::

    X-Fixledger-Timestamp: 1767225600
    X-Fixledger-Signature: sha256=<hex digest>
"""

import hashlib
import hmac
import time

from . import PermanentError
from .http import dumps, post_json

TIMESTAMP_HEADER = "X-Fixledger-Timestamp"
SIGNATURE_HEADER = "X-Fixledger-Signature"
DELIVERY_HEADER = "X-Fixledger-Delivery"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def send(delivery) -> None:
    endpoint = delivery.endpoint
    if endpoint is None or not endpoint.active:
        raise PermanentError("the endpoint was removed or deactivated by an admin")
    body = dumps({**delivery.payload, "delivery": delivery.pk})
    timestamp = str(int(time.time()))
    post_json(
        endpoint.url,
        body,
        {
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(endpoint.secret, timestamp, body),
            DELIVERY_HEADER: str(delivery.pk),
        },
    )
