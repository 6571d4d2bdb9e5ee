"""Let a Python web service report what fixledger's HTTP probe reads: no dependencies.

Every response gets ``X-DB-Queries`` (database queries run while answering it) and a
``Server-Timing`` header (``total;dur=<ms>`` and ``db;count=<n>;dur=<ms>``); the path
``/_fixledger/memory`` answers JSON with the process's RSS, peak RSS and anonymous RSS from
/proc/self/status.

WSGI and ASGI apps count queries by calling `count_query` (or by handing an sqlite3 connection
to `trace_sqlite3`); the Django middleware counts them itself with
``connection.execute_wrapper``. Django is imported only inside `fixledger_report.django`.
"""

from .core import (
    DB_HEADER,
    MEMORY_PATH,
    count_query,
    memory_status,
    trace_sqlite3,
)
from .middleware import ASGIMiddleware, WSGIMiddleware

__all__ = [
    "DB_HEADER",
    "MEMORY_PATH",
    "ASGIMiddleware",
    "WSGIMiddleware",
    "count_query",
    "memory_status",
    "trace_sqlite3",
]
