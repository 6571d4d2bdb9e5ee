"""The two text-search engines behind one interface. Only `get_backend()` picks one;
selectors, views and the API never ask which database they run on.

Each engine answers `window()`: the most recently filed entries matching a query, newest first,
with what the selector needs to count, facet and order them. The words and the filter tokens
(see `apps.search.tokens`) are matched in one inverted-index lookup; dates and gains between two
steps are checked on the rows it finds.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.db import DatabaseError, connection
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from . import partitions
from . import query as q
from .index import SNIPPET_CLASSES, WEIGHTS, fts5_token, pg_token

START, STOP = "\x02", "\x03"


def _marks(escaped: str) -> SafeString:
    """Escaped text with our markers (never present in indexed text) turned into <mark>."""
    return mark_safe(escaped.replace(START, "<mark>").replace(STOP, "</mark>"))  # noqa: S308


@dataclass
class Criteria:
    """What an entry must have to match, besides the parsed words."""

    tokens: list[str] = field(default_factory=list)
    # Path fragments: some token must start with each of `prefixes`, none with an excluded one.
    prefixes: list[str] = field(default_factory=list)
    excluded_prefixes: list[str] = field(default_factory=list)
    created_from: datetime | None = None
    created_before: datetime | None = None
    # Checked on the row: the gain on `gain_metric` (or the best gain, without one) >= this.
    gain_min: float | None = None
    gain_metric: str = ""
    # Only entries filed before this change: how an export walks every match a page at a time.
    below_id: int | None = None


@dataclass(frozen=True)
class Row:
    change_id: int
    created: float  # only to order by: comparable within one database
    project_id: int
    owner_id: int
    status: str
    tags: str
    verdicts: str
    gain: float | None  # on the requested metric, or the best gain without one
    score: float | None  # higher is more relevant; None without words


def _rows(cursor) -> list[Row]:
    return [Row(*r) for r in cursor.fetchall()]


class _Backend:
    """What both engines share: the gain column and the checks made on each found row."""

    # SQL of the gain on one metric, whose key (see gain_key) is its one parameter.
    GAIN = ""
    # SQL of the time filed as a number: it orders like the time and is cheap to read.
    CREATED = ""

    def columns(self) -> str:
        """The entry's columns a Row begins with."""
        return (
            f"e.change_id, {self.CREATED}, e.project_id, e.owner_id, e.status, e.tags, e.verdicts"
        )

    def gain_key(self, metric: str) -> str:
        return metric

    def adapt_datetime(self, value: datetime):
        return value

    def _gain(self, c: Criteria) -> tuple[str, list]:
        """The gain column (on the requested metric, else the best gain) and its parameters."""
        if c.gain_metric:
            return self.GAIN, [self.gain_key(c.gain_metric)]
        return "e.best_gain", []

    def _row_checks(self, c: Criteria, id_column: str = "e.change_id") -> tuple[list[str], list]:
        where, params = [], []
        if c.below_id is not None:
            where.append(f"{id_column} < %s")
            params.append(c.below_id)
        if c.created_from:
            where.append("e.created >= %s")
            params.append(self.adapt_datetime(c.created_from))
        if c.created_before:
            where.append("e.created < %s")
            params.append(self.adapt_datetime(c.created_before))
        if c.gain_min is not None:
            gain, gain_params = self._gain(c)
            where.append(f"{gain} >= %s")
            params += [*gain_params, c.gain_min]
        return where, params


class PostgresBackend(_Backend):
    config = "english"
    GAIN = "(e.gains ->> %s)::float8"
    CREATED = "extract(epoch FROM e.created)::float8"

    def window(self, parsed: q.ParsedQuery, criteria: Criteria, limit: int | None) -> list[Row]:
        # Partition by partition, newest first: each is planned on its own (a walk down its
        # ids for a common word, its own GIN index for a rarer one), and the search stops as
        # soon as it has enough.
        sql, params = self._window_sql(parsed, criteria)
        # PostgreSQL estimates a phrase like its words anywhere in the text, so for two common
        # words that rarely stand together it would walk a whole partition row by row. Its GIN
        # index bounds the work by the rows holding both words instead.
        phrase = any(term.phrase for group in parsed.groups for term in group)
        with connection.cursor() as cursor:
            if phrase:
                cursor.execute("SET enable_indexscan = off")
            try:
                rows = self._partitions_newest_first(cursor, sql, params, limit)
            except DatabaseError:
                # In a transaction, its rollback undoes the SET (and nothing else may run).
                if phrase and not connection.in_atomic_block:
                    cursor.execute("RESET enable_indexscan")
                raise
            if phrase:
                cursor.execute("RESET enable_indexscan")
        return rows

    @staticmethod
    def _partitions_newest_first(cursor, sql: str, params: list, limit: int | None) -> list[Row]:
        rows: list[Row] = []
        for number in partitions.newest_first():
            wanted = None if limit is None else limit - len(rows)
            if wanted == 0:
                break
            # Named directly: planning one table is cheaper than pruning the parent.
            cursor.execute(
                sql.format(table=partitions.name(number))
                + (" LIMIT %s" if wanted is not None else ""),
                [*params, *([wanted] if wanted is not None else [])],
            )
            rows += _rows(cursor)
        return rows

    def _window_sql(self, parsed: q.ParsedQuery, criteria: Criteria) -> tuple[str, list]:
        """The query over one partition, whose name goes in {table} (and the limit last)."""
        words = q.to_websearch(parsed)
        gain, params_select = self._gain(criteria)
        select = [gain]
        if parsed.groups:
            select.append("ts_rank(e.vector, websearch_to_tsquery(%s::regconfig, %s))")
            params_select += [self.config, words]
        else:
            select.append("NULL")
        where, params_where, parts = [], [], []
        if parsed.has_words:
            parts.append("websearch_to_tsquery(%s::regconfig, %s)")
            params_where += [self.config, words]
        filters = self._tsquery(criteria)
        if filters:
            parts.append("%s::tsquery")
            params_where.append(filters)
        if parts:
            where.append(f"e.vector @@ ({' && '.join(parts)})")
        if parsed.has_words:
            # Stop words alone make an empty query, which must match nothing.
            where.append("numnode(websearch_to_tsquery(%s::regconfig, %s)) > 0")
            params_where += [self.config, words]
        checks, check_params = self._row_checks(criteria)
        where += checks
        params_where += check_params
        sql = (
            f"SELECT {self.columns()}, {', '.join(select)} FROM {{table}} e"  # noqa: S608
            f"{' WHERE ' + ' AND '.join(where) if where else ''} ORDER BY e.change_id DESC"
        )
        return sql, params_select + params_where

    @staticmethod
    def _literal(token: str) -> str:
        escaped = pg_token(token).replace("\\", "\\\\").replace("'", "''")
        return f"'{escaped}'"

    def _tsquery(self, c: Criteria) -> str:
        terms = [self._literal(t) for t in c.tokens]
        terms += [self._literal(p) + ":*" for p in c.prefixes]
        terms += ["!" + self._literal(p) + ":*" for p in c.excluded_prefixes]
        return " & ".join(terms)

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


class SqliteBackend(_Backend):
    # bm25 column weights for the A, B, C, D classes (see index.FIELDS); filter tokens weigh 0.
    weights = "10.0, 4.0, 2.0, 1.0, 0.0"
    WORDS = "{a b c d}"
    GAIN = "json_extract(e.gains, %s)"
    CREATED = "julianday(e.created)"

    def gain_key(self, metric: str) -> str:
        return '$."' + metric.replace("\\", "\\\\").replace('"', '\\"') + '"'

    def adapt_datetime(self, value: datetime):
        return connection.ops.adapt_datetimefield_value(value)

    def window(self, parsed: q.ParsedQuery, criteria: Criteria, limit: int | None) -> list[Row]:
        positive, negative = self._match(parsed, criteria)
        gain, params_select = self._gain(criteria)
        # On the FTS table's own rowid, FTS5 starts its walk below the bound instead of
        # skipping every newer match first.
        where, params_where = self._row_checks(
            criteria, "search_fts.rowid" if positive else "e.change_id"
        )
        if positive:
            expression = positive + "".join(f" NOT ({n})" for n in negative)
            score = f"-bm25(search_fts, {self.weights})" if parsed.groups else "NULL"
            # FTS5 walks its matches newest first and stops at the limit; each is joined to
            # its entry by rowid.
            sql = (
                f"SELECT {self.columns()}, {gain}, {score} FROM search_fts"  # noqa: S608
                " JOIN search_searchentry e ON e.change_id = search_fts.rowid"
                " WHERE search_fts MATCH %s"
                f"{''.join(' AND ' + w for w in where)} ORDER BY search_fts.rowid DESC"
            )
            params = [*params_select, expression, *params_where]
        else:
            if negative:
                where.append(
                    "e.change_id NOT IN (SELECT rowid FROM search_fts WHERE search_fts MATCH %s)"
                )
                params_where.append(" OR ".join(f"({n})" for n in negative))
            sql = (
                f"SELECT {self.columns()}, {gain}, NULL FROM search_searchentry e"  # noqa: S608
                f"{' WHERE ' + ' AND '.join(where) if where else ''} ORDER BY e.change_id DESC"
            )
            params = [*params_select, *params_where]
        if limit is not None:
            sql += " LIMIT %s"
            params.append(limit)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return _rows(cursor)

    def _match(self, parsed: q.ParsedQuery, c: Criteria) -> tuple[str, list[str]]:
        """(the positive FTS5 expression, the expressions none of which may match)."""
        positive = []
        words = q.to_fts5(parsed)
        if words:
            positive.append(f"{self.WORDS} : ({words})")
        positive += [f'{{f}} : "{fts5_token(t)}"' for t in c.tokens]
        positive += [f'{{f}} : "{fts5_token(p)}" *' for p in c.prefixes]
        negative = [f"{self.WORDS} : ({e})" for e in q.to_fts5_excluded(parsed)]
        negative += [f'{{f}} : "{fts5_token(p)}" *' for p in c.excluded_prefixes]
        return " AND ".join(positive), negative

    def snippets(self, parsed: q.ParsedQuery, texts: dict[int, str]) -> dict[int, SafeString]:
        words = q.to_fts5(parsed)
        if not texts or not words:
            return {}
        placeholders = ",".join(["%s"] * len(texts))
        # One snippet per column of written text (index.SNIPPET_CLASSES), the first that holds a
        # match wins: left to pick the column itself, FTS5 would cut one from file-path words.
        columns = ", ".join(
            f"snippet(search_fts, {WEIGHTS.index(w)}, char(2), char(3), ' … ', 24)"
            for w in SNIPPET_CLASSES
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT rowid, {columns}"  # noqa: S608
                f" FROM search_fts WHERE search_fts MATCH %s AND rowid IN ({placeholders})",
                [f"{self.WORDS} : ({words})", *texts],
            )
            found = {}
            for pk, *candidates in cursor.fetchall():
                marked = [c for c in candidates if c and START in c]
                text = (marked or [c for c in candidates if c] or [""])[0]
                found[pk] = _marks(escape(text))
            return found


def get_backend():
    """The engine for the default database."""
    if connection.vendor == "postgresql":
        return PostgresBackend()
    if connection.vendor == "sqlite":
        return SqliteBackend()
    raise NotImplementedError(f"search does not support {connection.vendor}")
