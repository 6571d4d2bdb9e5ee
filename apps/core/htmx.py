"""What the views say to htmx: which element a request swaps, and the events a response
raises in the page so that the regions that depend on what changed ask for themselves again."""

import json

from django.http import HttpResponse

# Raised when a change's state moved (a measurement started, ended or was cancelled; the change
# shipped): the change page's checklist and header listen for it.
CHANGE_UPDATED = "change-updated"
# Raised when a change closed in place (shipped): what offers to act on it, such as the
# measurements section's Measure form, asks for itself again.
CHANGE_CLOSED = "change-closed"


def htmx_target(request) -> str | None:
    """The id of the element an htmx request will swap, or None for a full page load."""
    if request.headers.get("HX-Request") != "true" or request.headers.get("HX-Boosted"):
        return None
    return request.headers.get("HX-Target")


def trigger(response: HttpResponse, *events: str) -> HttpResponse:
    """Raise `events` in the page once htmx has swapped the response in."""
    named = dict.fromkeys(events, None)
    existing = response.get("HX-Trigger-After-Settle")
    if existing:
        named = {**json.loads(existing), **named}
    response["HX-Trigger-After-Settle"] = json.dumps(named)
    return response
