"""What the middlewares share: the per-request query counter, the headers, the memory figures."""

from __future__ import annotations

import contextvars
import json
import time
from typing import Any

DB_HEADER = "X-DB-Queries"
MEMORY_PATH = "/_fixledger/memory"


class RequestStats:
    """Counts for one request; lives in a context variable so threads and tasks keep their own."""

    __slots__ = ("db_count", "db_seconds", "started")

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.db_count = 0
        self.db_seconds = 0.0

    def headers(self) -> list[tuple[str, str]]:
        total_ms = (time.perf_counter() - self.started) * 1000.0
        timing = (
            f"total;dur={total_ms:.2f}, db;count={self.db_count};dur={self.db_seconds * 1000:.2f}"
        )
        return [(DB_HEADER, str(self.db_count)), ("Server-Timing", timing)]


_current: contextvars.ContextVar[RequestStats | None] = contextvars.ContextVar(
    "fixledger_report_request", default=None
)


def begin() -> contextvars.Token:
    return _current.set(RequestStats())


def end(token: contextvars.Token) -> None:
    _current.reset(token)


def current() -> RequestStats | None:
    return _current.get()


def count_query(seconds: float = 0.0) -> None:
    """Count one database query for the request being answered (outside a request: nothing)."""
    stats = _current.get()
    if stats is not None:
        stats.db_count += 1
        stats.db_seconds += seconds


def trace_sqlite3(connection: Any) -> Any:
    """Count every statement an sqlite3 connection runs; returns the connection."""
    connection.set_trace_callback(lambda _statement: count_query())
    return connection


def memory_status(path: str = "/proc/self/status") -> dict[str, int | None]:
    """RSS, peak RSS and anonymous RSS of this process in bytes (None where /proc has no line)."""
    wanted = {"VmRSS": "rss", "VmHWM": "peak_rss", "RssAnon": "anon_rss"}
    figures: dict[str, int | None] = dict.fromkeys(wanted.values())
    try:
        with open(path) as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in wanted:
                    figures[wanted[key]] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return figures


def memory_body() -> bytes:
    return json.dumps(memory_status()).encode()
