"""Reads on changes, shared by the web pages and the API."""

from dataclasses import dataclass

import django_filters
from django import forms
from django.db.models import Q
from django.http import Http404

from apps.accounts.models import User
from apps.accounts.roles import RANK, Role
from apps.core.audit import audit_history
from apps.projects.models import Project

from .models import Change, ChangeStatus, parse_change_number

PAGE_SIZE = 50
# The list counts its matches up to here and says "10,000+" beyond: counting every one of a
# million changes costs more than the rest of the page together.
COUNT_CAP = 10_000
# Beyond any real list; keeps the offset a plain integer.
MAX_PAGE = 1_000_000


def owner_choices(also: str = ""):
    """Who the owner filter lists: the users who may own a change now (engineers and above),
    plus `also` (a username in the request), so a link to a former owner's changes still works.

    Read from the users table alone: listing the distinct owners of a million changes took most
    of the change list's time.
    """
    owners = [role.value for role in Role if RANK[role] >= RANK[Role.ENGINEER]]
    may_own = Q(is_active=True) & (Q(is_superuser=True) | Q(groups__name__in=owners))
    chosen = Q(username=also) if also else Q(pk__in=[])
    return User.objects.filter(may_own | chosen).distinct().only("username").order_by("username")


class ChangeFilter(django_filters.FilterSet):
    """The change list's filters, with the same names in the UI and the API.

    Every combination of them has an index on Change that lists it newest first.
    """

    project = django_filters.ModelChoiceFilter(
        queryset=Project.objects.order_by("name"),
        to_field_name="slug",
        empty_label="All projects",
        widget=forms.Select(attrs={"aria-label": "Project"}),
    )
    owner = django_filters.ModelChoiceFilter(
        queryset=owner_choices(),
        to_field_name="username",
        empty_label="All owners",
        widget=forms.Select(attrs={"aria-label": "Owner"}),
    )
    status = django_filters.ChoiceFilter(
        choices=ChangeStatus.choices,
        empty_label="Any status",
        widget=forms.Select(attrs={"aria-label": "Status"}),
    )

    class Meta:
        model = Change
        fields = ["project", "owner", "status"]

    def __init__(self, data=None, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        chosen = (data or {}).get("owner") or ""
        self.filters["owner"].queryset = owner_choices(chosen if isinstance(chosen, str) else "")


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


@dataclass(frozen=True)
class ChangePage:
    """One page of the change list. `count` is exact unless `capped` (then a lower bound)."""

    changes: list[Change]
    number: int
    count: int
    capped: bool
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def previous_page_number(self) -> int:
        return self.number - 1

    @property
    def next_page_number(self) -> int:
        return self.number + 1

    @property
    def last_id(self) -> int | None:
        """What the *Older* link seeks from."""
        return self.changes[-1].pk if self.changes else None

    @property
    def num_pages(self) -> int | None:
        """None while the count is capped: the last page is not known."""
        return None if self.capped else _pages(self.count)


def page_boundary(value) -> int | None:
    """The `before` id of a pager link, or None for anything that is not a positive id."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number <= 2**63 - 1 else None


def page_number(value) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return 1
    return min(max(number, 1), MAX_PAGE)


def change_page(changes, number: int, *, before: int | None = None) -> ChangePage:
    """Page `number` (from 1) of `changes` (filtered, not sliced), newest first.

    In at most three short queries, whatever the page: the count up to COUNT_CAP (a page past
    the cap needs none: there are more), the ids of the page read off the index the filters
    use (an index-only walk, even a thousand pages deep), then those rows with their project
    and owner. A number past the last page shows the last page (found by counting up to the
    number asked for, only then).

    `before` (the last id of the page before, as the pager's *Older* link carries it) seeks
    to the page in the index instead of walking past every row before it; a link that names
    no row of the list any more falls back to the walk.
    """
    changes = changes.order_by("-pk")
    offset = (number - 1) * PAGE_SIZE
    count = None  # exact when known
    if offset < COUNT_CAP:
        counted = changes.order_by()[: COUNT_CAP + 1].count()
        count = counted if counted <= COUNT_CAP else None
    if count is not None:
        number = min(number, _pages(count))
        offset = (number - 1) * PAGE_SIZE
    ids = _ids(changes.filter(pk__lt=before), 0) if before and number > 1 else []
    if not ids:
        ids = _ids(changes, offset)
    if not ids and count is None and number > 1:
        count = changes.order_by()[:offset].count()
        number = _pages(count)
        offset = (number - 1) * PAGE_SIZE
        ids = _ids(changes, offset)
    rows = list(
        Change.objects.filter(pk__in=ids[:PAGE_SIZE])
        .select_related("project", "owner")
        .only(
            "title",
            "status",
            "updated",
            "latest_verdict",
            "project__name",
            "project__slug",
            "owner__username",
        )
        .order_by("-pk")
    )
    capped = count is None
    if capped:
        count = max(COUNT_CAP, offset + len(rows))
    return ChangePage(rows, number, count, capped, has_next=len(ids) > PAGE_SIZE)


def _pages(count: int) -> int:
    return max(1, -(-count // PAGE_SIZE))


def _ids(changes, offset: int) -> list[int]:
    """The ids of a page and of the first row after it, if any (to know there is a next)."""
    return list(changes.values_list("pk", flat=True)[offset : offset + PAGE_SIZE + 1])
