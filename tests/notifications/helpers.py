"""Publishing events the way services will, and sending what they queued in-process."""

from apps.core.events import deliver
from apps.notifications.models import Delivery, DeliveryStatus
from apps.notifications.tasks import send_delivery


def notify(event, capture) -> list[Delivery]:
    """Deliver `event` to its subscribers; the deliveries it queued (their sends captured, not
    run: `send_all` runs them)."""
    before = set(Delivery.objects.values_list("pk", flat=True))
    with capture(execute=False) as callbacks:
        deliver(event)
    created = list(Delivery.objects.exclude(pk__in=before).order_by("pk"))
    # One on-commit send per new delivery, nothing else.
    assert len(callbacks) == len(created)
    return created


def send_all() -> None:
    """Run the send task in this process for every pending delivery, retries included."""
    for pk in Delivery.objects.filter(status=DeliveryStatus.PENDING).values_list("pk", flat=True):
        send_delivery.apply(args=[pk])
