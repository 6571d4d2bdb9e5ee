"""Search over changes: the one entry point for the web page, the API and exports."""

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time

from django.db.models import Count, F, OuterRef, QuerySet, Subquery
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from apps.accounts.models import User
from apps.changes.models import Change
from apps.projects.models import Project

from . import query as q
from .backends import START, STOP, get_backend
from .index import display_text
from .models import SearchEntry, SearchMetric, SearchTag


class SortOrder:
    RELEVANCE = "relevance"
    DATE = "date"
    GAIN = "gain"
    CHOICES = [(RELEVANCE, "Relevance"), (DATE, "Newest"), (GAIN, "Largest gain")]


class PageOutOfRange(Exception):
    def __init__(self, page: int, last: int):
        super().__init__(f"Page {page} is past the last page ({last}).")


@dataclass
class SearchParams:
    q: str = ""
    path: str = ""
    project: Project | None = None
    owner: User | None = None
    status: str = ""
    verdict: str = ""
    tag: str = ""
    date_from: date | None = None
    date_to: date | None = None
    gain_metric: str = ""
    gain_min: float | None = None
    sort: str = ""
    page: int = 1
    page_size: int = 20


@dataclass
class Hit:
    change: Change
    snippet: SafeString
    gain: float | None = None


@dataclass
class SearchResults:
    hits: list[Hit]
    count: int
    page: int
    page_size: int
    sort: str
    facets: dict[str, list[tuple[str, str, int]]] = field(default_factory=dict)

    @property
    def num_pages(self) -> int:
        return max(1, math.ceil(self.count / self.page_size))

    @property
    def has_next(self) -> bool:
        return self.page < self.num_pages

    @property
    def has_previous(self) -> bool:
        return self.page > 1


def highlight(marked: str) -> SafeString:
    """Escape everything, then turn our own markers (never present in indexed text) into <mark>."""
    return mark_safe(  # noqa: S308 - escaped just above; only our own tags are added
        escape(marked).replace(START, "<mark>").replace(STOP, "</mark>")
    )


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def filtered_entries(params: SearchParams, parsed: q.ParsedQuery) -> QuerySet:
    """Entries passing every filter except the words (which need the backend's ranking)."""
    backend = get_backend()
    qs = SearchEntry.objects.all()
    if params.project is not None:
        qs = qs.filter(project=params.project)
    if params.owner is not None:
        qs = qs.filter(owner=params.owner)
    if params.status:
        qs = qs.filter(status=params.status)
    if params.date_from:
        qs = qs.filter(created__gte=_day_start(params.date_from))
    if params.date_to:
        qs = qs.filter(created__lt=_day_start(params.date_to) + timezone.timedelta(days=1))
    if params.tag:
        qs = qs.filter(pk__in=SearchTag.objects.filter(tag=params.tag).values("entry_id"))
    if params.verdict:
        qs = qs.filter(
            pk__in=SearchMetric.objects.filter(verdict=params.verdict).values("entry_id")
        )
    if params.gain_metric:
        metric_rows = SearchMetric.objects.filter(metric=params.gain_metric)
        if params.gain_min is not None:
            metric_rows = metric_rows.filter(gain__gte=params.gain_min)
        qs = qs.filter(pk__in=metric_rows.values("entry_id"))
    elif params.gain_min is not None:
        qs = qs.filter(best_gain__gte=params.gain_min)
    paths = [*parsed.paths, *([params.path.lower()] if params.path else [])]
    for fragment in paths:
        qs = backend.path(qs, fragment)
    for fragment in parsed.excluded_paths:
        qs = backend.path(qs, fragment, exclude=True)
    return qs


def metric_known(name: str) -> bool:
    return SearchMetric.objects.filter(metric=name).exists()


def _facets(matched: QuerySet) -> dict[str, list[tuple[str, str, int]]]:
    top = 10
    projects = dict(Project.objects.values_list("pk", "slug"))
    project_names = dict(Project.objects.values_list("pk", "name"))
    rows = matched.values("project").annotate(n=Count("pk")).order_by("-n")[:top]
    facets = {
        "project": [(projects[r["project"]], project_names[r["project"]], r["n"]) for r in rows]
    }
    rows = list(matched.values("owner").annotate(n=Count("pk")).order_by("-n")[:top])
    names = dict(
        User.objects.filter(pk__in=[r["owner"] for r in rows]).values_list("pk", "username")
    )
    facets["owner"] = [(names[r["owner"]], names[r["owner"]], r["n"]) for r in rows]
    facets["status"] = [
        (r["status"], r["status"], r["n"])
        for r in matched.values("status").annotate(n=Count("pk")).order_by("-n")
    ]
    ids = matched.values("pk")
    facets["verdict"] = [
        (r["verdict"], r["verdict"], r["n"])
        for r in SearchMetric.objects.filter(entry_id__in=ids)
        .values("verdict")
        .annotate(n=Count("entry_id", distinct=True))
        .order_by("-n")
    ]
    facets["tag"] = [
        (r["tag"], r["tag"], r["n"])
        for r in SearchTag.objects.filter(entry_id__in=ids)
        .values("tag")
        .annotate(n=Count("pk"))
        .order_by("-n", "tag")[:top]
    ]
    return facets


def search(params: SearchParams, *, facets: bool = True) -> SearchResults:
    """One page of changes matching `params`, best first, with facet counts.

    Raises ValidationError (bad query syntax) or PageOutOfRange.
    """
    backend = get_backend()
    parsed = q.parse(params.q)
    filtered = filtered_entries(params, parsed)
    matched = backend.match(filtered, parsed)
    count = matched.count()
    sort = params.sort or (SortOrder.RELEVANCE if parsed.groups else SortOrder.DATE)
    if sort == SortOrder.RELEVANCE and not parsed.groups:
        sort = SortOrder.DATE
    last = max(1, math.ceil(count / params.page_size))
    if params.page > last:
        raise PageOutOfRange(params.page, last)
    offset = (params.page - 1) * params.page_size
    gain_metric = params.gain_metric
    if sort == SortOrder.RELEVANCE:
        ids = backend.ranked_ids(filtered, parsed, offset, params.page_size)
    elif sort == SortOrder.GAIN:
        if gain_metric:
            ordered = matched.annotate(
                gain=Subquery(
                    SearchMetric.objects.filter(entry_id=OuterRef("pk"), metric=gain_metric)
                    .order_by("-gain")
                    .values("gain")[:1]
                )
            )
        else:
            ordered = matched.annotate(gain=F("best_gain"))
        ordered = ordered.order_by(F("gain").desc(nulls_last=True), "-created", "-change_id")
        ids = list(ordered.values_list("change_id", flat=True)[offset : offset + params.page_size])
    else:
        ordered = matched.order_by("-created", "-change_id")
        ids = list(ordered.values_list("change_id", flat=True)[offset : offset + params.page_size])
    hits = _hits(ids, parsed, gain_metric)
    return SearchResults(
        hits=hits,
        count=count,
        page=params.page,
        page_size=params.page_size,
        sort=sort,
        facets=_facets(matched) if facets else {},
    )


def _hits(ids: list[int], parsed: q.ParsedQuery, gain_metric: str) -> list[Hit]:
    changes = Change.objects.select_related("project", "owner").in_bulk(ids)
    gains: dict[int, float | None] = {}
    rows = SearchMetric.objects.filter(entry_id__in=ids)
    if gain_metric:
        rows = rows.filter(metric=gain_metric)
    for entry_id, gain in rows.values_list("entry_id", "gain"):
        if gain is not None and (gains.get(entry_id) is None or gain > gains[entry_id]):
            gains[entry_id] = gain
    snippets = {}
    if parsed.groups:
        snippets = get_backend().snippets(parsed, {pk: display_text(changes[pk]) for pk in ids})
    hits = []
    for pk in ids:
        change = changes[pk]
        snippet = snippets.get(pk) or highlight(_lead(change.reason))
        hits.append(Hit(change=change, snippet=snippet, gain=gains.get(pk)))
    return hits


def _lead(text: str, limit: int = 200) -> str:
    text = " ".join(text.replace(START, "").replace(STOP, "").split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def matching_changes(params: SearchParams) -> QuerySet:
    """Every change matching `params` (for exports), newest first, unpaginated."""
    parsed = q.parse(params.q)
    matched = get_backend().match(filtered_entries(params, parsed), parsed)
    return (
        Change.objects.filter(pk__in=matched.values("pk"))
        .select_related("project", "owner")
        .order_by("-id")
    )
