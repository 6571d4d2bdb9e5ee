"""Reads on changes, shared by the web pages and the API."""

import django_filters
from django.db.models import Q
from django.http import Http404

from apps.accounts.models import User
from apps.core.audit import audit_history
from apps.projects.models import Project

from .models import Change, ChangeStatus, parse_change_number


class ChangeFilter(django_filters.FilterSet):
    """The change list's filters, with the same names in the UI and the API."""

    project = django_filters.ModelChoiceFilter(
        queryset=Project.objects.all(), to_field_name="slug", empty_label="All projects"
    )
    owner = django_filters.ModelChoiceFilter(
        queryset=User.objects.filter(owned_changes__isnull=False).distinct().order_by("username"),
        to_field_name="username",
        empty_label="All owners",
    )
    status = django_filters.ChoiceFilter(choices=ChangeStatus.choices, empty_label="Any status")
    q = django_filters.CharFilter(method="filter_text", label="Words", max_length=200)

    class Meta:
        model = Change
        fields = ["project", "owner", "status"]

    def filter_text(self, queryset, name, value):
        return queryset.filter(Q(title__icontains=value) | Q(reason__icontains=value))


def change_list():
    return Change.objects.select_related("project", "owner")


def change_by_ref(ref: int | str, queryset=None) -> Change | None:
    """The change `ref` names: a primary key, or `FIX-12` / `12` as people write it; None if
    it names none."""
    pk = ref if isinstance(ref, int) else parse_change_number(ref)
    if pk is None:
        return None
    return (change_list() if queryset is None else queryset).filter(pk=pk).first()


def change_or_404(ref: int | str, queryset=None) -> Change:
    """The change `ref` names (as `change_by_ref`), or a 404 for the page or API asking."""
    change = change_by_ref(ref, queryset)
    if change is None:
        raise Http404(f"No change {ref}.")
    return change


def change_get(pk: int) -> Change:
    return change_list().get(pk=pk)


def change_history(change: Change):
    return audit_history(change)
