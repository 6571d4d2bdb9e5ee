from datetime import datetime

from django import template

register = template.Library()


@register.filter
def isodatetime(value: str):
    """A datetime stored as ISO 8601 text in JSON, back as a datetime for `|date`."""
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
