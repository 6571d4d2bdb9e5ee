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


@register.filter
def pvalue(value) -> str:
    """p-values the way people read them: tiny ones as a bound, not as 0.0000."""
    if value is None:
        return "—"
    return "< 0.0001" if value < 0.0001 else f"{value:.4f}"


@register.filter
def signed_size(value: int) -> str:
    """A byte difference, with its sign: -57.2 MB, 1.5 kB."""
    sign = "\u2212" if value < 0 else ""  # a true minus sign lines up with the digits
    size = abs(value)
    for unit, scale in (("MB", 1_000_000), ("kB", 1_000)):
        if size >= scale:
            return f"{sign}{size / scale:.1f} {unit}"
    return f"{sign}{size} B"
