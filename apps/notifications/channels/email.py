"""Email through Django's backend: SMTP in production, files under the data folder embedded."""

import smtplib

from django.conf import settings
from django.core.mail import EmailMessage
from django.urls import reverse

from . import DeliveryError, PermanentError


def send(delivery) -> None:
    recipient = delivery.recipient
    if recipient is None or not recipient.is_active:
        raise PermanentError("the recipient's account is gone or inactive")
    if not recipient.email:
        raise PermanentError(f"{recipient.get_username()} has no email address")
    url = delivery.payload.get("change", {}).get("url", "")
    preferences = settings.SITE_URL.rstrip("/") + reverse("notifications:preferences")
    body = f"{delivery.text}\n\nOpen it: {url}\n\n-- \nChoose what you hear: {preferences}\n"
    message = EmailMessage(
        subject=f"[fixledger] {delivery.subject}",
        body=body,
        to=[recipient.email],
        headers={"X-Fixledger-Delivery": str(delivery.pk)},
    )
    try:
        message.send()
    except smtplib.SMTPRecipientsRefused as exc:
        raise PermanentError(f"the mail server refused {recipient.email}: {exc}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"could not send mail: {exc}") from None
