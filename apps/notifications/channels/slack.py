"""Slack-compatible incoming webhooks (Slack, Mattermost, Rocket.Chat): ``{"text": ...}``."""

from . import PermanentError
from .http import dumps, post_json


def _escape(text: str) -> str:
    # Slack's mrkdwn reads these three as markup.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def message(delivery) -> dict:
    """The change's number as a link, its title and what happened; the details below."""
    change = delivery.payload.get("change", {})
    link = f"<{change.get('url', '')}|{_escape(change.get('number', ''))}>"
    summary = delivery.payload.get("summary")
    head = f"{_escape(change.get('title', ''))}: {_escape(summary)}" if summary else ""
    head = head or _escape(delivery.subject.removeprefix(change.get("number", "")).strip())
    return {"text": f"{link} {head}\n{_escape(delivery.text)}"}


def send(delivery) -> None:
    endpoint = delivery.endpoint
    if endpoint is None or not endpoint.active:
        raise PermanentError("the endpoint was removed or deactivated by an admin")
    post_json(endpoint.url, dumps(message(delivery)))
