"""The change list's rows and filter menus, written in Python.

The list is the page people open most. Written by the template engine, its 50 rows and some 60
filter options cost most of the page's time (a dozen variable lookups and filters a row); here
they are one format string each, escaped by `format_html` like any template variable.
"""

from django import template
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince
from django.utils.timezone import localtime

from ..models import ChangeStatus

register = template.Library()

_ROW = (
    '<tr><td class="mono"><a href="{url}">{number}</a></td><td><a href="{url}">{title}</a></td>'
    "<td>{project}</td><td>{owner}</td>"
    '<td><span class="badge status-{status}">{status_label}</span></td>'
    '<td class="verdict">{verdict}</td>'
    '<td><time datetime="{updated}">{ago} ago</time></td></tr>\n'
)
_PLACEHOLDER = 2_147_483_647
_STATUS_LABELS = dict(ChangeStatus.choices)
_NOT_MEASURED = mark_safe('<span class="muted">not measured</span>')


def _verdict(change) -> str:
    line = change.verdict_line
    if line is None:
        return _NOT_MEASURED
    badge = format_html('<span class="badge verdict-{}">{}</span>', line["css"], line["verdict"])
    if line["gain"]:
        return format_html("{} <small>{}</small>", badge, line["gain"])
    return badge


@register.simple_tag
def change_rows(changes):
    """A `<tr>` per change (project and owner loaded): the badge of `changes/_status.html`,
    the verdict as `Change.verdict_line` words it."""
    # Reversed once for the page: every row's link differs only in the number.
    url = reverse("changes:detail", kwargs={"pk": _PLACEHOLDER})
    head, _, tail = url.partition(str(_PLACEHOLDER))
    return format_html_join(
        "",
        _ROW,
        (
            {
                "url": f"{head}{change.pk}{tail}",
                "number": change.number,
                "title": change.title,
                "project": change.project.name,
                "owner": change.owner.username,
                "status": change.status,
                "status_label": _STATUS_LABELS.get(change.status, change.status),
                "verdict": _verdict(change),
                "updated": localtime(change.updated).isoformat(),
                "ago": timesince(change.updated),
            }
            for change in changes
        ),
    )


@register.simple_tag
def filter_select(field, choices, label: str):
    """A filter's `<select>` with its options (Django's widget renders a template per option),
    `choices` as the view read them, the field's value selected."""
    current = "" if field.value() is None else str(field.value())
    options = format_html_join(
        "\n",
        '<option value="{}"{}>{}</option>',
        ((value, " selected" if str(value) == current else "", text) for value, text in choices),
    )
    return format_html(
        '<select name="{}" id="{}" aria-label="{}">\n{}\n</select>',
        field.html_name,
        field.auto_id,
        label,
        options,
    )
