"""Django middleware: add ``"fixledger_report.django.ReportMiddleware"`` to MIDDLEWARE (first).

Queries are counted on every database connection with ``connection.execute_wrapper``; Django
is imported here only, so the rest of the package works without it.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from .core import MEMORY_PATH, begin, count_query, current, end, memory_status


class ReportMiddleware:
    """Adds ``X-DB-Queries`` and ``Server-Timing``; answers ``/_fixledger/memory`` itself."""

    memory_path = MEMORY_PATH

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        from django.db import connections
        from django.http import JsonResponse

        if self.memory_path and request.path == self.memory_path:
            return JsonResponse(memory_status())
        token = begin()
        try:
            stats = current()
            wrappers = [conn.execute_wrapper(_count) for conn in connections.all()]
            for wrapper in wrappers:
                wrapper.__enter__()
            try:
                response = self.get_response(request)
            finally:
                for wrapper in reversed(wrappers):
                    wrapper.__exit__(None, None, None)
            for name, value in stats.headers():
                response[name] = value
            return response
        finally:
            end(token)


def _count(execute: Callable, sql: str, params: Any, many: bool, context: Any) -> Any:
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        count_query(time.perf_counter() - started)
