"""What the generator reads from a response, and its memory reader, without a network."""

import os

import pytest
from multidict import CIMultiDict

from apps.measurements.http.generator import cache_status, db_queries, tree_rss

pytestmark = pytest.mark.config_independent

NAMES = ("Cache-Status", "X-Cache", "Age")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Cache-Status": "ExampleCache; hit"}, "hit"),
        ({"Cache-Status": "ExampleCache; hit; ttl=30"}, "hit"),
        ({"Cache-Status": "Origin; fwd=uri-miss, CDN; hit"}, "hit"),
        ({"Cache-Status": "CDN; fwd=uri-miss; stored"}, "miss"),
        ({"Cache-Status": "CDN; fwd=stale; fwd-status=304"}, "miss"),
        ({"Cache-Status": "CDN"}, "unknown"),
        ({"X-Cache": "HIT from edge-1"}, "hit"),
        ({"X-Cache": "TCP_MISS"}, "miss"),
        ({"X-Cache": "Miss from cloudfront"}, "miss"),
        ({"Age": "12"}, "hit"),
        ({"Age": "0"}, "miss"),
        ({"Age": "soon"}, "unknown"),
        ({"Cache-Status": "CDN", "X-Cache": "HIT"}, "hit"),
        ({}, "unknown"),
    ],
)
def test_cache_status(headers, expected):
    assert cache_status(CIMultiDict(headers), NAMES) == expected


def test_cache_status_reads_only_the_configured_headers():
    assert cache_status(CIMultiDict({"X-Cache": "HIT"}), ("Cache-Status",)) == "unknown"


@pytest.mark.parametrize(
    ("headers", "header", "entry", "expected"),
    [
        ({"X-DB-Queries": "3"}, "X-DB-Queries", "", 3),
        ({"x-db-queries": "0"}, "X-DB-Queries", "", 0),
        ({"X-DB-Queries": "many"}, "X-DB-Queries", "", None),
        ({"Server-Timing": "total;dur=12, db;count=4;dur=1.5"}, "", "db", 4),
        ({"Server-Timing": 'db;desc="7 queries";dur=3'}, "", "db", 7),
        ({"Server-Timing": "cache;desc=hit, db;dur=2"}, "", "db", None),
        ({"Server-Timing": "sql;count=2"}, "X-DB-Queries", "sql", 2),
        ({}, "X-DB-Queries", "db", None),
    ],
)
def test_db_queries(headers, header, entry, expected):
    assert db_queries(CIMultiDict(headers), header, entry) == expected


def test_db_queries_reads_every_server_timing_header():
    headers = CIMultiDict([("Server-Timing", "total;dur=3"), ("Server-Timing", "db;count=5")])
    assert db_queries(headers, "", "db") == 5


def test_tree_rss_reads_this_process():
    rss, peak = tree_rss(os.getpid())
    assert 0 < rss <= peak
    assert tree_rss(2**22 + 12345) == (0, 0)
