"""Search over changes: the one entry point for the web page, the API and exports."""

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time

from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from apps.accounts.models import User
from apps.changes.models import Change
from apps.measurements.metrics import all_builtin, label_of, signed_pct
from apps.projects.models import Project

from . import query as q
from . import tokens
from .backends import START, STOP, Criteria, Row, get_backend
from .index import display_text
from .models import SearchEntry

# Searches count, facet and order at most this many matches, the most recently filed.
WINDOW = 500


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
    # The metric `gain` is on: the one filtered by, else the one that improved most.
    gain_metric: str = ""

    @property
    def gain_text(self) -> str:
        """The gain as the metric moved, with its label: "peak RSS -84.8 %" (a true minus)."""
        if self.gain is None or not self.gain_metric:
            return ""
        metric = all_builtin().get(self.gain_metric)
        higher_is_better = metric is not None and not metric.lower_is_better
        moved = self.gain if higher_is_better else -self.gain
        return f"{label_of(self.gain_metric)} {signed_pct(moved)}"


@dataclass
class SearchResults:
    hits: list[Hit]
    # Exact unless `capped`: then more than `count` changes match, and the results (facet
    # counts too) cover the `count` most recently filed of them.
    count: int
    page: int
    page_size: int
    sort: str
    capped: bool = False
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


def criteria_of(params: SearchParams, parsed: q.ParsedQuery) -> Criteria:
    """Every filter of `params` as filter tokens, plus the checks that stay on the row."""
    c = Criteria(gain_metric=params.gain_metric)
    if params.project is not None:
        c.tokens.append(tokens.project(params.project.pk))
    if params.owner is not None:
        c.tokens.append(tokens.owner(params.owner.pk))
    if params.status:
        c.tokens.append(tokens.status(params.status))
    if params.tag:
        c.tokens.append(tokens.tag(params.tag))
    if params.verdict:
        c.tokens.append(tokens.verdict(params.verdict))
    step, exact = None, False
    if params.gain_min is not None:
        step, exact = tokens.gain(params.gain_min, params.gain_metric)
        if not exact:
            c.gain_min = params.gain_min
    if step:
        c.tokens.append(step)  # a gain step on a metric implies the metric was measured
    elif params.gain_metric:
        c.tokens.append(tokens.metric(params.gain_metric))
    if params.date_from:
        c.created_from = _day_start(params.date_from)
    if params.date_to:
        c.created_before = _day_start(params.date_to) + timezone.timedelta(days=1)
    fragments = [*parsed.paths, *([params.path] if params.path else [])]
    c.prefixes = [tokens.path(f) for f in fragments]
    c.excluded_prefixes = [tokens.path(f) for f in parsed.excluded_paths]
    return c


def metric_known(name: str) -> bool:
    """Whether any indexed change has a measured metric of this name."""
    return bool(get_backend().window(q.ParsedQuery(), Criteria(tokens=[tokens.metric(name)]), 1))


def _facets(rows: list[Row]) -> dict[str, list[tuple[str, str, int]]]:
    top = 10
    counts = {
        "project": Counter(r.project_id for r in rows),
        "owner": Counter(r.owner_id for r in rows),
        "status": Counter(r.status for r in rows),
        "verdict": Counter(v for r in rows for v in r.verdicts.splitlines()),
        "tag": Counter(t for r in rows for t in r.tags.splitlines()),
    }
    projects = Project.objects.filter(pk__in=counts["project"]).values_list("pk", "slug", "name")
    project_labels = {pk: (slug, name) for pk, slug, name in projects}
    owners = dict(
        User.objects.filter(pk__in=counts["owner"]).values_list("pk", User.USERNAME_FIELD)
    )

    def ranked(counter: Counter, limit: int | None = top) -> list:
        return sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))[:limit]

    return {
        "project": [(*project_labels[pk], n) for pk, n in ranked(counts["project"])],
        "owner": [(owners[pk], owners[pk], n) for pk, n in ranked(counts["owner"])],
        "status": [(s, s, n) for s, n in ranked(counts["status"], None)],
        "verdict": [(v, v, n) for v, n in ranked(counts["verdict"], None)],
        "tag": [(t, t, n) for t, n in ranked(counts["tag"])],
    }


def _ordered(rows: list[Row], sort: str) -> list[Row]:
    """`rows` (newest filed first) in the order asked for; ties stay newest filed first."""
    if sort == SortOrder.RELEVANCE:
        return sorted(rows, key=lambda r: -(r.score or 0.0))
    if sort == SortOrder.GAIN:
        with_gain = sorted((r for r in rows if r.gain is not None), key=lambda r: -r.gain)
        return with_gain + [r for r in rows if r.gain is None]
    return sorted(rows, key=lambda r: r.created, reverse=True)


def search(params: SearchParams) -> SearchResults:
    """One page of changes matching `params`, best first, with facet counts.

    Counting, facets and ordering cover the WINDOW most recently filed matches; when more
    match, the results say so (`capped`) and ask for narrower words or filters.
    Raises ValidationError (bad query syntax) or PageOutOfRange.
    """
    parsed = q.parse(params.q)
    rows = get_backend().window(parsed, criteria_of(params, parsed), WINDOW + 1)
    capped = len(rows) > WINDOW
    rows = rows[:WINDOW]
    sort = params.sort or (SortOrder.RELEVANCE if parsed.groups else SortOrder.DATE)
    if sort == SortOrder.RELEVANCE and not parsed.groups:
        sort = SortOrder.DATE
    last = max(1, math.ceil(len(rows) / params.page_size))
    if params.page > last:
        raise PageOutOfRange(params.page, last)
    offset = (params.page - 1) * params.page_size
    page = _ordered(rows, sort)[offset : offset + params.page_size]
    return SearchResults(
        hits=_hits(page, parsed, params.gain_metric),
        count=len(rows),
        capped=capped,
        page=params.page,
        page_size=params.page_size,
        sort=sort,
        facets=_facets(rows),
    )


def _best_metric(gains: dict[str, float | None]) -> str:
    known = {k: v for k, v in gains.items() if v is not None}
    return max(known, key=known.__getitem__) if known else ""


def _hits(rows: list[Row], parsed: q.ParsedQuery, gain_metric: str = "") -> list[Hit]:
    ids = [r.change_id for r in rows]
    changes = Change.objects.select_related("project", "owner").in_bulk(ids)
    snippets = {}
    if parsed.groups:
        snippets = get_backend().snippets(parsed, {pk: display_text(changes[pk]) for pk in ids})
    gains = {}
    if not gain_metric:
        with_gain = [r.change_id for r in rows if r.gain is not None]
        gains = dict(SearchEntry.objects.filter(pk__in=with_gain).values_list("pk", "gains"))
    hits = []
    for row in rows:
        change = changes[row.change_id]
        snippet = snippets.get(row.change_id) or highlight(_lead(change.reason))
        metric = gain_metric or _best_metric(gains.get(row.change_id) or {})
        hits.append(Hit(change=change, snippet=snippet, gain=row.gain, gain_metric=metric))
    return hits


def _lead(text: str, limit: int = 200) -> str:
    text = " ".join(text.replace(START, "").replace(STOP, "").split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def matching_changes(params: SearchParams, *, limit: int, chunk: int = 500) -> Iterator[Change]:
    """At most `limit` changes matching `params` (for exports), newest filed first.

    Read a page of `chunk` at a time, each page below the last one's oldest id, so memory stays
    the same however many match. The query is parsed now (a syntax error raises here); the
    pages are read as the result is iterated.
    """
    parsed = q.parse(params.q)
    return _pages(parsed, criteria_of(params, parsed), limit, chunk)


def _pages(parsed: q.ParsedQuery, criteria: Criteria, limit: int, chunk: int) -> Iterator[Change]:
    backend = get_backend()
    left = limit
    while left > 0:
        rows = backend.window(parsed, criteria, min(chunk, left))
        if not rows:
            return
        ids = [r.change_id for r in rows]
        changes = Change.objects.select_related("project", "owner").in_bulk(ids)
        # A change deleted since the page was read is skipped, not an error.
        yield from (changes[pk] for pk in ids if pk in changes)
        left -= len(rows)
        criteria = replace(criteria, below_id=ids[-1])
