"""Liveness and readiness probes for load balancers and orchestrators.

They answer before the rest of the stack (HealthProbeMiddleware): on any host name and over plain
http, so a probe on the host (`curl http://127.0.0.1:8000/healthz`) or a load balancer reaches
gunicorn without nginx, whatever ALLOWED_HOSTS and SECURE_SSL_REDIRECT say.
"""

import logging
from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from kombu import Connection

log = logging.getLogger(__name__)


@never_cache
def healthz(request):
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        log.warning("readiness: database unreachable: %s", exc)
        return f"database unreachable: {exc.__class__.__name__}"
    return None


def _check_broker() -> str | None:
    try:
        with Connection(
            settings.CELERY_BROKER_URL,
            transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            connect_timeout=2,
        ) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        log.warning("readiness: broker unreachable: %s", exc)
        return f"broker unreachable: {exc.__class__.__name__}"
    return None


# What higher apps tell an operator (e.g. queues no worker consumes). Registered from their
# `ready()`: core knows no domain app.
_warning_sources: list[Callable[[], list[str]]] = []


def register_warnings(source: Callable[[], list[str]]) -> None:
    """Add `source` to what readiness reports as warnings (once)."""
    if source not in _warning_sources:
        _warning_sources.append(source)


def _warnings() -> list[str]:
    """What an operator must fix but a load balancer must not act on: this process still serves."""
    return [warning for source in _warning_sources for warning in source()]


@never_cache
def readyz(request):
    checks = {"database": _check_database(), "broker": _check_broker()}
    problems = {name: err for name, err in checks.items() if err}
    body = {
        "status": "ok" if not problems else "unavailable",
        "checks": {name: (err or "ok") for name, err in checks.items()},
        "warnings": _warnings() if not problems else [],
    }
    return JsonResponse(body, status=503 if problems else 200)


PROBES = {"/healthz": healthz, "/readyz": readyz}


class HealthProbeMiddleware:
    """Answers the probes before host validation and the https redirect; they read no request
    data and show nothing private, so neither protects anything there."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        probe = PROBES.get(request.path_info)
        if probe is not None and request.method in ("GET", "HEAD"):
            return probe(request)
        return self.get_response(request)
