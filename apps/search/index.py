"""Keeping the search index current. The subscribers in `subscribers.py` call it after every
write that changes what search sees has committed; `index_missing` catches up after a migrate.

To index another text field, add one line to FIELDS.
"""

import re
from collections.abc import Callable, Iterable

from django.db import connection, transaction

from apps.changes.models import Change

from . import partitions, tokens
from .models import SearchEntry

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


# Snippets are cut from what people wrote: the prose (class C: reason, expected result, final
# notes), else the title (class A). Class B holds tags, the owner and file paths split into
# words ("lru admin service py"), which read as index tokens; class D holds commands.
SNIPPET_CLASSES = ("C", "A")


def display_text(change: Change) -> str:
    """The text a snippet is cut from: what people wrote about the change, as they wrote it."""
    text = weighted_text(change)
    return "\n".join(text[w] for w in reversed(SNIPPET_CLASSES) if text[w])


def gain_of(result: dict) -> float | None:
    """Improvement in percent, positive when the metric moved the right way."""
    pct = result.get("change_pct")
    if pct is None:
        return None
    return -pct if result.get("lower_is_better", True) else pct


def _latest_results(change_ids: list[int]) -> dict[int, list[dict]]:
    from apps.measurements.selectors import finished_comparisons

    latest: dict[int, list[dict]] = {}
    rows = finished_comparisons(change_id__in=change_ids).values_list("change_id", "results")
    for change_id, results in rows:
        latest.setdefault(change_id, results or [])
    return latest


def index_change(change: Change) -> None:
    """Bring the index of one change up to date (call inside the writing transaction)."""
    index_changes([change.pk])


def index_changes(change_ids: Iterable[int]) -> int:
    """Bring the index of many changes up to date, in batches; returns how many."""
    ids = list(change_ids)
    for start in range(0, len(ids), BATCH):
        _index_batch(ids[start : start + BATCH])
    return len(ids)


def index_missing() -> int:
    """Index every change without an entry, and drop text rows whose entry is gone."""
    missing = Change.objects.filter(search_entry__isnull=True).order_by("pk")
    with transaction.atomic():
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute(
                    "DELETE FROM search_fts"
                    " WHERE rowid NOT IN (SELECT change_id FROM search_searchentry)"
                )
        return index_changes(missing.values_list("pk", flat=True))


def index_filed(change_ids: Iterable[int]) -> None:
    """Index changes just filed, in batches: they have no entry and no measurement yet, so
    only the changes and their owners are read back, and nothing is deleted first."""
    ids = list(change_ids)
    for start in range(0, len(ids), BATCH):
        part = ids[start : start + BATCH]
        _write_entries(list(Change.objects.filter(pk__in=part).select_related("owner")), {})


def _index_batch(ids: list[int]) -> None:
    changes = list(Change.objects.filter(pk__in=ids).select_related("owner"))
    results = _latest_results(ids)
    SearchEntry.objects.filter(pk__in=ids).delete()
    _write_entries(changes, results)


def _write_entries(changes: list[Change], results: dict[int, list[dict]]) -> None:
    entries, texts = [], []
    for change in sorted(changes, key=lambda c: c.pk):
        gains: dict[str, float | None] = {}
        verdicts: dict[str, None] = {}
        for r in results.get(change.pk, []):
            if r.get("endpoint") is None:  # an HTTP metric's gain is that of all requests
                gains[r.get("metric", "")] = gain_of(r)
            if r.get("verdict"):
                verdicts[r["verdict"]] = None
        known = [g for g in gains.values() if g is not None]
        tags = list(dict.fromkeys(change.tags or []))
        entries.append(
            SearchEntry(
                change_id=change.pk,
                project_id=change.project_id,
                owner_id=change.owner_id,
                status=change.status,
                created=change.created,
                tags="\n".join(tags),
                verdicts="\n".join(verdicts),
                gains=gains,
                best_gain=max(known) if known else None,
            )
        )
        filters = tokens.for_change(
            project_id=change.project_id,
            owner_id=change.owner_id,
            status_value=change.status,
            tags=tags,
            verdicts=verdicts,
            gains=gains,
            paths=change.files_touched or [],
        )
        texts.append((change.pk, weighted_text(change), filters))
    if connection.vendor == "postgresql":
        # The vector is computed first and inserted with its row: an UPDATE afterwards would
        # leave every entry a dead copy and scatter the live ones across the table.
        vectors = _pg_vectors(texts)
        for entry in entries:
            entry.vector = vectors[entry.change_id]
        partitions.ensure_for([e.change_id for e in entries])
    SearchEntry.objects.bulk_create(entries)
    if connection.vendor == "sqlite":
        _write_fts([e.change_id for e in entries], texts)
    elif connection.vendor != "postgresql":
        raise NotImplementedError(f"search does not support {connection.vendor}")


def _pg_vectors(texts: list[tuple[int, dict[str, str], list[str]]]) -> dict[int, str]:
    if not texts:
        return {}
    with connection.cursor() as cursor:
        # Filter tokens go in as they are (array_to_tsvector parses nothing), behind a
        # character the text parser never keeps, so no word can be mistaken for one.
        cursor.execute(
            "SELECT t.id, (setweight(to_tsvector('english', t.a), 'A')"
            " || setweight(to_tsvector('english', t.b), 'B')"
            " || setweight(to_tsvector('english', t.c), 'C')"
            " || setweight(to_tsvector('english', t.d), 'D')"
            " || array_to_tsvector(string_to_array(t.f, chr(30))))::text"
            " FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[],"
            " %s::text[]) AS t(id, a, b, c, d, f)",
            [[pk for pk, _, _ in texts]]
            + [[text[w] for _, text, _ in texts] for w in WEIGHTS]
            + [[chr(30).join(pg_token(t) for t in f) for _, _, f in texts]],
        )
        return dict(cursor.fetchall())


def _write_fts(ids: list[int], texts: list[tuple[int, dict[str, str], list[str]]]) -> None:
    with connection.cursor() as cursor:
        if ids:
            # Only placeholders are formatted in; the ids travel as parameters.
            placeholders = ",".join(["%s"] * len(ids))
            cursor.execute(f"DELETE FROM search_fts WHERE rowid IN ({placeholders})", ids)  # noqa: S608
        cursor.executemany(
            "INSERT INTO search_fts (rowid, a, b, c, d, f) VALUES (%s, %s, %s, %s, %s, %s)",
            [
                (pk, text["A"], text["B"], text["C"], text["D"], " ".join(map(fts5_token, f)))
                for pk, text, f in texts
            ],
        )


def pg_token(token: str) -> str:
    """A filter token as a PostgreSQL lexeme: after chr(31), which no parsed word contains."""
    return "\x1f" + token


def fts5_token(token: str) -> str:
    """A filter token as an FTS5 term: its UTF-8 bytes as three digits each, so the tokenizer
    keeps it whole, the stemmer leaves it alone, and a prefix of a token is the term of a
    prefix of its text."""
    return "".join(f"{b:03d}" for b in token.encode())
