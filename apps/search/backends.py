"""The two text-search engines behind one interface. Only `get_backend()` picks one;
selectors, views and the API never ask which database they run on.
"""

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import connection
from django.db.models import F, QuerySet
from django.db.models.expressions import RawSQL
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from . import query as q

START, STOP = "\x02", "\x03"


def _marks(escaped: str) -> SafeString:
    """Escaped text with our markers (never present in indexed text) turned into <mark>."""
    return mark_safe(escaped.replace(START, "<mark>").replace(STOP, "</mark>"))  # noqa: S308


class PostgresBackend:
    config = "english"

    def _query(self, parsed: q.ParsedQuery) -> SearchQuery:
        return SearchQuery(q.to_websearch(parsed), search_type="websearch", config=self.config)

    def match(self, qs: QuerySet, parsed: q.ParsedQuery) -> QuerySet:
        # websearch_to_tsquery handles "-word" alone too (everything without it).
        return qs.filter(vector=self._query(parsed)) if parsed.has_words else qs

    def path(self, qs: QuerySet, fragment: str, *, exclude: bool = False) -> QuerySet:
        # Paths are stored lower-cased, so a plain LIKE (which the trigram index serves) does.
        return (
            qs.exclude(paths__contains=fragment) if exclude else qs.filter(paths__contains=fragment)
        )

    def ranked_ids(
        self, filtered: QuerySet, parsed: q.ParsedQuery, offset: int, limit: int
    ) -> list[int]:
        query = self._query(parsed)
        ranked = (
            filtered.filter(vector=query)
            .annotate(rank=SearchRank(F("vector"), query))
            .order_by("-rank", "-created", "-change_id")
        )
        return list(ranked.values_list("change_id", flat=True)[offset : offset + limit])

    def snippets(self, parsed: q.ParsedQuery, texts: dict[int, str]) -> dict[int, SafeString]:
        if not texts:
            return {}
        ids = list(texts)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT t.id, ts_headline(%s::regconfig, t.body,"
                " websearch_to_tsquery(%s::regconfig, %s), %s)"
                " FROM unnest(%s::bigint[], %s::text[]) AS t(id, body)",
                [
                    self.config,
                    self.config,
                    q.to_websearch(parsed, include_excluded=False),
                    f'StartSel="{START}", StopSel="{STOP}", MaxFragments=2, MaxWords=30,'
                    ' MinWords=12, FragmentDelimiter=" … "',
                    ids,
                    # Escaped first: ts_headline would drop tags rather than show them, and
                    # it keeps entities as they are.
                    [escape(texts[i]) for i in ids],
                ],
            )
            return {pk: _marks(text) for pk, text in cursor.fetchall()}


class SqliteBackend:
    # bm25 column weights for the A, B, C, D classes (see index.FIELDS).
    weights = "10.0, 4.0, 2.0, 1.0"

    def match(self, qs: QuerySet, parsed: q.ParsedQuery) -> QuerySet:
        sql = "SELECT rowid FROM search_fts WHERE search_fts MATCH %s"
        positive = q.to_fts5(parsed)
        if positive:
            return qs.filter(pk__in=RawSQL(sql, [positive]))  # noqa: S611 - constant SQL
        if parsed.excluded:
            excluded = q.to_fts5_excluded(parsed)
            return qs.exclude(pk__in=RawSQL(sql, [excluded]))  # noqa: S611 - constant SQL
        return qs

    def path(self, qs: QuerySet, fragment: str, *, exclude: bool = False) -> QuerySet:
        if len(fragment) >= 3:
            # A quoted string in a trigram table matches as a substring.
            condition = {
                "pk__in": RawSQL(
                    "SELECT rowid FROM search_paths WHERE search_paths MATCH %s",
                    ['"' + fragment.replace('"', '""') + '"'],
                )
            }
        else:
            # Trigrams cannot look up one or two characters; scan instead.
            condition = {"paths__contains": fragment}
        return qs.exclude(**condition) if exclude else qs.filter(**condition)

    def ranked_ids(
        self, filtered: QuerySet, parsed: q.ParsedQuery, offset: int, limit: int
    ) -> list[int]:
        # bm25 is computed inside FTS5 for the matching rows only; the other filters come in
        # as a set of ids, so no per-row subquery is needed.
        # Only Django's own compiled SQL is formatted in (below); values stay parameters.
        sql = (
            f"SELECT rowid FROM search_fts WHERE search_fts MATCH %s{{restrict}}"  # noqa: S608
            f" ORDER BY bm25(search_fts, {self.weights}), rowid DESC LIMIT %s OFFSET %s"
        )
        params: list = [q.to_fts5(parsed)]
        restrict = ""
        if filtered.query.where:
            inner, inner_params = filtered.values("pk").query.sql_with_params()
            # The unary + keeps SQLite from driving the search from this list (one full-text
            # lookup per id); the list is only checked against the full-text matches.
            restrict = f" AND +rowid IN ({inner})"
            params += list(inner_params)
        with connection.cursor() as cursor:
            cursor.execute(sql.format(restrict=restrict), [*params, limit, offset])
            return [row[0] for row in cursor.fetchall()]

    def snippets(self, parsed: q.ParsedQuery, texts: dict[int, str]) -> dict[int, SafeString]:
        expression = q.to_fts5(parsed)
        if not texts or not expression:
            return {}
        placeholders = ",".join(["%s"] * len(texts))
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT rowid, snippet(search_fts, -1, char(2), char(3), ' … ', 24)"  # noqa: S608
                f" FROM search_fts WHERE search_fts MATCH %s AND rowid IN ({placeholders})",
                [expression, *texts],
            )
            return {pk: _marks(escape(text)) for pk, text in cursor.fetchall()}


def get_backend():
    """The engine for the default database."""
    if connection.vendor == "postgresql":
        return PostgresBackend()
    if connection.vendor == "sqlite":
        return SqliteBackend()
    raise NotImplementedError(f"search does not support {connection.vendor}")
