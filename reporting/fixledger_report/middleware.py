"""WSGI and ASGI middleware: wrap the app, and every response reports itself."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Callable

from .core import MEMORY_PATH, begin, current, end, memory_body


class WSGIMiddleware:
    """``app = WSGIMiddleware(app)``. Serves ``memory_path`` itself; other requests go to ``app``
    and get ``X-DB-Queries`` and ``Server-Timing`` (counted while ``app`` builds the response,
    i.e. until it calls ``start_response``, which is when the headers must be known)."""

    def __init__(self, app: Callable, memory_path: str = MEMORY_PATH) -> None:
        self.app = app
        self.memory_path = memory_path

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if self.memory_path and environ.get("PATH_INFO") == self.memory_path:
            body = memory_body()
            start_response(
                "200 OK",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]
        token = begin()
        try:
            stats = current()

            def reporting_start_response(status, headers, exc_info=None):
                return start_response(status, [*headers, *stats.headers()], exc_info)

            return self.app(environ, reporting_start_response)
        finally:
            end(token)


class ASGIMiddleware:
    """``app = ASGIMiddleware(app)`` for HTTP scopes; other scopes pass through untouched."""

    def __init__(self, app: Callable, memory_path: str = MEMORY_PATH) -> None:
        self.app = app
        self.memory_path = memory_path

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        if self.memory_path and scope.get("path") == self.memory_path:
            body = memory_body()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        token = begin()
        stats = current()

        async def reporting_send(message: dict[str, Any]) -> None:
            if message.get("type") == "http.response.start":
                extra = [(k.lower().encode(), v.encode()) for k, v in stats.headers()]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            await self.app(scope, receive, reporting_send)
        finally:
            end(token)
