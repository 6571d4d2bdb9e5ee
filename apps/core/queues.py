"""Which queues the running workers consume, as they say over Celery's remote control, and
what to tell a person whose work waits on a queue nobody has taken it from."""

import logging

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from django.utils.timesince import timesince

from apps.celery_app import app

log = logging.getLogger(__name__)

# Seconds to wait for workers' answers: a probe or a page must not hang on a busy broker.
INSPECT_TIMEOUT = 1.0
# Seconds a page polled often reuses the last answer.
CACHE_SECONDS = 15
_CACHE_KEY = "fixledger:consumed-queues"


def ask_workers(timeout: float = INSPECT_TIMEOUT) -> dict[str, list[str]] | None:
    """The queues of every worker that answers, by name; None if none answered."""
    try:
        pongs = app.control.inspect(timeout=timeout).ping() or {}
        if not pongs:
            return None
        # Every worker that answered the ping is asked by name: the call returns once all did.
        inspect = app.control.inspect(timeout=timeout, destination=list(pongs), limit=len(pongs))
        queues = inspect.active_queues() or {}
    except Exception as exc:
        # Each transport raises its own connection errors: callers fall back on the database.
        log.warning("workers did not answer remote control: %s", exc)
        return None
    return {name: sorted(q["name"] for q in queues.get(name) or []) for name in pongs}


def consumed_queues_cached() -> set[str] | None:
    """The queues some worker consumes, at most CACHE_SECONDS old; None if no worker answered."""
    answer = cache.get(_CACHE_KEY, default=False)
    if answer is False:
        workers = ask_workers()
        answer = None if workers is None else {q for queues in workers.values() for q in queues}
        cache.set(_CACHE_KEY, answer, CACHE_SECONDS)
    return answer


def waiting_notice(*, since, queue: str) -> dict | None:
    """What to say about work on `queue` that no worker has taken since `since`: nothing while
    a worker may still be on its way; once none took it for longer than a heartbeat may lapse,
    or the workers that answer consume no such queue, how long it waited and whether any worker
    consumes the queue.
    Shown by core/_queue_warning.html."""
    waited = timezone.now() - since
    overdue = waited.total_seconds() >= settings.WORK_HEARTBEAT_STALE_SECONDS
    consumed = consumed_queues_cached()
    # No worker answered: nothing is known of the queue, only how long the work waited.
    unconsumed = consumed is not None and queue not in consumed
    if not unconsumed and not overdue:
        return None
    return {"queue": queue, "unconsumed": unconsumed, "waited": timesince(since, depth=1)}
