"""Search entries in partitions of consecutive change ids (PostgreSQL), made while filing."""

import threading
import time

import pytest
from django.conf import settings
from django.db import connection, connections, transaction

from apps.changes.services import change_create
from apps.search import partitions
from apps.search.selectors import SearchParams, search

ON_POSTGRESQL = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def _file(actor, project, title):
    return change_create(
        actor=actor,
        project=project,
        title=title,
        reason="The pool grows under load.",
        expected_result="peak RSS -10 %",
    )


@pytest.mark.skipif(not ON_POSTGRESQL, reason="SQLite keeps one FTS5 table, not partitions")
def test_filing_makes_the_next_partition_once_it_commits(
    engineer, project, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(partitions, "PARTITION_SIZE", 2)
    with django_capture_on_commit_callbacks(execute=True):
        first = _file(engineer, project, "Cap the heron pool")
    with django_capture_on_commit_callbacks(execute=True):
        second = _file(engineer, project, "Cap the heron pool again")
    # One of the two is the last id of its partition's range.
    newest = max(first.pk, second.pk) // 2
    made = set(partitions.newest_first())
    assert {first.pk // 2, second.pk // 2} <= made
    assert newest + 1 in made or second.pk % 2 == 0
    assert {h.change for h in search(SearchParams(q="heron")).hits} == {first, second}


def _drop_partitions():
    # Between transactional tests the entries are flushed: the partitions are empty.
    if ON_POSTGRESQL:
        with connection.cursor() as cursor:
            for number in partitions.newest_first():
                cursor.execute(f"DROP TABLE IF EXISTS {partitions.name(number)}")


@pytest.fixture
def small_partitions(transactional_db, monkeypatch):
    """Partitions of two ids. Committed partitions at the real size (from earlier tests) are
    dropped first, and the small ones afterwards, so that each size makes its own."""
    _drop_partitions()
    monkeypatch.setattr(partitions, "PARTITION_SIZE", 2)
    yield
    _drop_partitions()


@pytest.mark.django_db(transaction=True)
def test_a_search_goes_on_while_a_filing_makes_a_partition(engineer, project, small_partitions):
    """A long filing (an import) that makes a partition holds its transaction open; searches
    and edits in other connections neither wait for it nor see its changes until it commits."""
    from apps.changes.services import change_update

    egret = _file(engineer, project, "Cap the egret pool")
    made, release, failed = threading.Event(), threading.Event(), []

    def long_filing():
        try:
            with transaction.atomic():
                for n in range(5):  # past the partition made ahead of them
                    _file(engineer, project, f"Cap the ibis pool {n}")
                made.set()
                release.wait(10)
        except Exception as exc:
            failed.append(exc)
            made.set()
        finally:
            connections.close_all()

    filing = threading.Thread(target=long_filing)
    filing.start()
    try:
        assert made.wait(10) and not failed
        started = time.monotonic()
        results = search(SearchParams(q="pool"))
        if ON_POSTGRESQL:  # SQLite lets one transaction write at a time
            change_update(actor=engineer, change=egret, title="Cap the egret pool again")
        assert time.monotonic() - started < 5
        assert [h.change.title for h in results.hits] == ["Cap the egret pool"]
    finally:
        release.set()
        filing.join(10)
    assert not failed
    assert search(SearchParams(q="ibis")).count == 5
    connection.close()
