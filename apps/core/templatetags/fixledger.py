from datetime import datetime

from django import template

from apps.core.units import format_bytes

register = template.Library()


@register.filter
def isodatetime(value: str):
    """A datetime stored as ISO 8601 text in JSON, back as a datetime for `|date`."""
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None


@register.filter
def pvalue(value) -> str:
    """p-values the way people read them: tiny ones as a bound, not as 0.0000."""
    if value is None:
        return "—"
    return "< 0.0001" if value < 0.0001 else f"{value:.4f}"


@register.filter
def signed_size(value: int) -> str:
    """A byte difference with its sign: \u221257.2 MiB, +1.5 KiB."""
    return format_bytes(value, signed=True)


@register.filter
def binary_size(value: int) -> str:
    """A size with binary prefixes: 57.2 MiB."""
    return format_bytes(value)
