"""Reads on changes, shared by the web pages and the API."""

import django_filters
from django.db.models import Q

from apps.accounts.models import User
from apps.core.audit import audit_history
from apps.projects.models import Project

from .models import Change, ChangeStatus


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


def change_get(pk: int) -> Change:
    return change_list().get(pk=pk)


def change_history(change: Change):
    return audit_history(change)
