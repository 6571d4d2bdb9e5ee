"""Keeping the search index current. Called by every service that changes what search sees,
inside that service's transaction, so the index is never ahead of or behind the data.

To index another text field, add one line to FIELDS.
"""

import re
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import connection

from apps.changes.models import Change

from .models import SearchEntry, SearchMetric, SearchTag

# (name, weight class A-D, value). A weighs most: a word in a title beats one in a command.
FIELDS: list[tuple[str, str, Callable[[Change], str]]] = [
    ("title", "A", lambda c: c.title),
    ("tags", "B", lambda c: " ".join(c.tags or [])),
    ("owner", "B", lambda c: c.owner.get_username()),
    # Paths as words too, so `billing` finds apps/billing/cache.py in plain word search.
    ("files_touched", "B", lambda c: " ".join(_path_words(c.files_touched))),
    ("reason", "C", lambda c: c.reason),
    ("expected_result", "C", lambda c: c.expected_result),
    ("final_notes", "C", lambda c: getattr(c, "final_notes", "") or ""),
    ("command", "D", lambda c: c.command),
    ("rollback_note", "D", lambda c: c.rollback_note),
]
WEIGHTS = ("A", "B", "C", "D")
BATCH = 2000


def _path_words(paths: Iterable[str]) -> list[str]:
    return [" ".join(re.split(r"[/\\._-]+", p)) for p in paths or []]


# Snippets mark matches with these two characters before escaping; none may come from the text.
_MARKERS = str.maketrans("", "", "\x02\x03")


def weighted_text(change: Change) -> dict[str, str]:
    """The change's text per weight class."""
    buckets: dict[str, list[str]] = {w: [] for w in WEIGHTS}
    for _name, weight, value in FIELDS:
        text = (value(change) or "").translate(_MARKERS)
        if text:
            buckets[weight].append(text)
    return {w: "\n".join(parts) for w, parts in buckets.items()}


def display_text(change: Change) -> str:
    """The text a snippet is cut from: the readable fields, most important first."""
    return "\n".join(weighted_text(change)[w] for w in WEIGHTS)


def gain_of(result: dict) -> float | None:
    """Improvement in percent, positive when the metric moved the right way."""
    pct = result.get("change_pct")
    if pct is None:
        return None
    return -pct if result.get("lower_is_better", True) else pct


def _latest_results(change_ids: list[int]) -> dict[int, list[dict]]:
    from apps.measurements.models import Measurement, MeasurementKind, MeasurementStatus

    latest: dict[int, list[dict]] = {}
    rows = (
        Measurement.objects.filter(
            change_id__in=change_ids,
            status=MeasurementStatus.DONE,
            kind=MeasurementKind.COMPARE,
        )
        .order_by("change_id", "-finished_at", "-id")
        .values_list("change_id", "results")
    )
    for change_id, results in rows:
        latest.setdefault(change_id, results or [])
    return latest


_deferred: ContextVar[set[int] | None] = ContextVar("search_index_deferred", default=None)


@contextmanager
def deferred():
    """Collect the changes written inside the block and index them once, in bulk, at its end.

    For bulk writers (imports): use it inside their transaction, so the index still commits
    or rolls back with the data.
    """
    pending: set[int] = set()
    token = _deferred.set(pending)
    try:
        yield
    finally:
        _deferred.reset(token)
    index_changes(sorted(pending))


def index_change(change: Change) -> None:
    """Bring the index of one change up to date (call inside the writing transaction)."""
    index_changes([change.pk])


def index_changes(change_ids: Iterable[int]) -> int:
    """Bring the index of many changes up to date, in batches; returns how many."""
    ids = list(change_ids)
    pending = _deferred.get()
    if pending is not None:
        pending.update(ids)
        return len(ids)
    for start in range(0, len(ids), BATCH):
        _index_batch(ids[start : start + BATCH])
    return len(ids)


def _index_batch(ids: list[int]) -> None:
    changes = list(Change.objects.filter(pk__in=ids).select_related("owner"))
    results = _latest_results(ids)
    SearchEntry.objects.filter(pk__in=ids).delete()
    entries, tags, metrics, texts = [], [], [], []
    for change in changes:
        gains = []
        for r in results.get(change.pk, []):
            gain = gain_of(r)
            if gain is not None:
                gains.append(gain)
            metrics.append(
                SearchMetric(
                    entry_id=change.pk,
                    metric=r.get("metric", ""),
                    verdict=r.get("verdict", ""),
                    gain=gain,
                )
            )
        entries.append(
            SearchEntry(
                change_id=change.pk,
                project_id=change.project_id,
                owner_id=change.owner_id,
                status=change.status,
                created=change.created,
                paths="\n".join(p.lower() for p in change.files_touched or []),
                best_gain=max(gains) if gains else None,
            )
        )
        tags += [SearchTag(entry_id=change.pk, tag=t) for t in dict.fromkeys(change.tags or [])]
        texts.append((change.pk, weighted_text(change), entries[-1].paths))
    SearchEntry.objects.bulk_create(entries)
    SearchTag.objects.bulk_create(tags)
    SearchMetric.objects.bulk_create(metrics)
    _write_text(ids, texts)


def _write_text(ids: list[int], texts: list[tuple[int, dict[str, str], str]]) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            if texts:
                cursor.execute(
                    "UPDATE search_searchentry e SET vector ="
                    " setweight(to_tsvector('english', t.a), 'A')"
                    " || setweight(to_tsvector('english', t.b), 'B')"
                    " || setweight(to_tsvector('english', t.c), 'C')"
                    " || setweight(to_tsvector('english', t.d), 'D')"
                    " FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[])"
                    " AS t(id, a, b, c, d) WHERE e.change_id = t.id",
                    [[pk for pk, _, _ in texts]]
                    + [[text[w] for _, text, _ in texts] for w in WEIGHTS],
                )
            return
        if connection.vendor != "sqlite":
            raise NotImplementedError(f"search does not support {connection.vendor}")
        placeholders = ",".join(["%s"] * len(ids))
        if ids:
            # Only placeholders are formatted in; the ids travel as parameters.
            for table in ("search_fts", "search_paths"):
                cursor.execute(f"DELETE FROM {table} WHERE rowid IN ({placeholders})", ids)  # noqa: S608
        cursor.executemany(
            "INSERT INTO search_fts (rowid, a, b, c, d) VALUES (%s, %s, %s, %s, %s)",
            [(pk, text["A"], text["B"], text["C"], text["D"]) for pk, text, _ in texts],
        )
        cursor.executemany(
            "INSERT INTO search_paths (rowid, paths) VALUES (%s, %s)",
            [(pk, paths) for pk, _, paths in texts],
        )
