"""The deliveries section of a change's page, included by the page without importing us."""

from django import template

from ..selectors import change_deliveries

register = template.Library()

# The newest ones; the API lists them all.
SHOWN = 50


@register.inclusion_tag("notifications/_deliveries.html")
def change_deliveries_section(change):
    deliveries = change_deliveries(change)
    return {"deliveries": deliveries[:SHOWN], "change": change}
