"""PostgreSQL keeps search entries in partitions of PARTITION_SIZE consecutive change ids.

Each partition has its own GIN index, so a search reads the newest slice first and stops
when it has enough: a word matching one change in a hundred costs a slice's worth of index and
rows, not the whole table's. Partitions are made when the first change of their range is
indexed, inside that change's transaction, without blocking searches or other writers; an
advisory lock lets one writer make each.
"""

from django.db import connection, transaction

PARTITION_SIZE = 100_000
TABLE = "search_searchentry"
# pg_advisory_xact_lock key: "search partitions".
_LOCK = 0x5EA2C4


def bounds(number: int) -> tuple[int, int]:
    return number * PARTITION_SIZE, (number + 1) * PARTITION_SIZE


def name(number: int) -> str:
    return f"{TABLE}_{int(number)}"


def ensure_for(ids: list[int]) -> None:
    """Make the partitions that rows with these change ids go into (inside a transaction);
    near the end of a range, once it commits, the next one too, in a transaction of its own.
    Filings then find their partition made; only one filing more than the rest of a range
    at once makes one itself (and others filing into that range wait for it to commit)."""
    if not ids:
        return
    _make(sorted({pk // PARTITION_SIZE for pk in ids}))
    newest = max(ids)
    # In the last tenth of a partition's range, make sure of the next one.
    if newest % PARTITION_SIZE >= PARTITION_SIZE - max(1, PARTITION_SIZE // 10):
        ahead = newest // PARTITION_SIZE + 1
        transaction.on_commit(lambda: _make_ahead(ahead))


def _make_ahead(number: int) -> None:
    with transaction.atomic():
        _make([number])


def _make(wanted: list[int]) -> None:
    with connection.cursor() as cursor:
        missing = [n for n in wanted if not _exists(cursor, n)]
        if not missing:
            return
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK])
        for number in missing:
            if _exists(cursor, number):  # made by another writer meanwhile
                continue
            low, high = bounds(number)
            # Made apart, then attached: attaching locks the parent only against other schema
            # changes, so searches and writes go on while the filing transaction lasts (an
            # import may take minutes). The parent's indexes and keys are added on attaching.
            # Integers only are formatted in.
            cursor.execute(
                f"CREATE TABLE {name(number)}"
                f" (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
            )
            cursor.execute(
                f"ALTER TABLE {TABLE} ATTACH PARTITION {name(number)}"
                f" FOR VALUES FROM ({low}) TO ({high})"
            )


def _exists(cursor, number: int) -> bool:
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name(number)])
    return cursor.fetchone()[0]


def newest_first() -> list[int]:
    """The numbers of the partitions there are, newest changes first."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = %s::regclass",
            [TABLE],
        )
        names = [row[0] for row in cursor.fetchall()]
    prefix = f"{TABLE}_"
    return sorted(
        (
            int(n[len(prefix) :])
            for n in names
            if n.startswith(prefix) and n[len(prefix) :].isdigit()
        ),
        reverse=True,
    )
