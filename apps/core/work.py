"""Work that workers claim from rows: publishing it, claiming it, keeping it alive, finding it.

The row is the source of truth for every kind of work (a measurement, a verification, a
repository job); a broker message is only a nudge to look at it. So:

- a publish that fails (the broker is down) is logged, not raised: the row stays due and beat
  publishes it once the broker is back, and the request that queued it still succeeds;
- a worker claims a row with a conditional update, which only a queued row or one whose
  heartbeat went stale passes, and keeps `heartbeat_at` fresh from a background thread however
  long one step of the work takes;
- beat publishes again the rows whose heartbeat went stale (their worker died) and those whose
  message was never claimed (the broker lost it); a duplicate message finds the row claimed and
  does nothing.
"""

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connections, models, transaction
from django.db.models import F, Q
from django.utils import timezone

from .context import log_context, request_id_var

log = logging.getLogger(__name__)

# Claims of one row before it fails for good: a command that kills its worker every time must
# not take every worker down in turn.
MAX_ATTEMPTS = 3
GAVE_UP = f"Gave up after {MAX_ATTEMPTS} attempts: the workers running it kept dying."
BROKER_DOWN = "Queued; it starts when the broker is back."

_unpublished: ContextVar[list | None] = ContextVar("unpublished", default=None)


def stale_before() -> datetime:
    return timezone.now() - timedelta(seconds=settings.WORK_HEARTBEAT_STALE_SECONDS)


# --- publishing ----------------------------------------------------------------------------


def publish(task, row: models.Model, *, args, kwargs=None, queue: str | None = None) -> bool:
    """Send `task` for `row`; False, logged, if the broker cannot be reached.

    Services call it on commit, so the worker finds the row. The broker settings make a
    failure quick (a short connect timeout, two retries); the row is then left due, and the
    request that queued it still succeeds.

    The message carries the id of the request in hand (apps.core.tasklog), and the row keeps
    it for `reconcile`'s re-publishes; work queued with no request in hand (beat's periodic
    sync) has none, rather than the one of the row's previous work.
    """
    request_id = request_id_var.get()
    rows = type(row).objects.filter(pk=row.pk)
    try:
        task.apply_async(args=args, kwargs=kwargs, queue=queue)
    except Exception as exc:
        # Each transport raises its own connection errors; none may fail the request.
        log.warning("could not publish %s for %s %s: %s", task.name, row._meta.label, row.pk, exc)
        rows.update(published_at=None, request_id=request_id)
        failures = _unpublished.get()
        if failures is not None:
            failures.append(row)
        return False
    rows.update(published_at=timezone.now(), request_id=request_id)
    return True


class Publishing:
    """What a request's publishes came to: the rows whose message did not reach the broker."""

    def __init__(self) -> None:
        self.failed: list[models.Model] = []

    @property
    def ok(self) -> bool:
        return not self.failed


@contextlib.contextmanager
def publishing() -> Iterator[Publishing]:
    """Tell a view whether the work its service queued reached the broker.

    Requests are not atomic as a whole, so a service's on-commit publishes run before the view
    goes on and can be observed here.
    """
    outcome = Publishing()
    token = _unpublished.set(outcome.failed)
    try:
        yield outcome
    finally:
        _unpublished.reset(token)


def reconcile(
    due_rows: models.QuerySet,
    *,
    send: Callable[[models.Model], bool],
    spent: Callable[[models.Model], bool] | None = None,
    give_up: Callable[[models.Model], object] | None = None,
) -> int:
    """Beat's pass over one kind's due rows (`due`): end those that used up their attempts
    (`spent`), publish the others again. Returns how many were published. Work that ends
    through its own attempts (a notification's delivery) has no `spent`: all of it is sent.

    Publishing stops at the first failure: the broker is down, and the next pass tries again.
    A pass logs at INFO only what it did; one that found nothing to do is silent.
    """
    kind = due_rows.model._meta.verbose_name_plural
    ended, waiting = [], []
    for row in due_rows:
        if spent is not None and spent(row):
            give_up(row)
            ended.append(row.pk)
        else:
            waiting.append(row)
    published = []
    for row in waiting:
        # The same work, asked for by the same request: its message carries that request's id.
        with log_context(request_id=row.request_id or None):
            if not send(row):
                break
        published.append(row.pk)
    if ended:
        log.info("gave up %s %s after %s attempts", kind, ended, MAX_ATTEMPTS)
    if published:
        log.info("published %s %s again", kind, published)
    return len(published)


def due(queryset: models.QuerySet) -> models.QuerySet:
    """The rows of `queryset` (one kind's queued or running work) to publish again.

    Their heartbeat is stale or missing and no message went out for as long: a message that
    waits in the broker behind other work is sent again once per period at most, which the
    claim makes harmless.
    """
    stale = stale_before()
    return queryset.filter(
        Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=stale),
        Q(published_at__isnull=True) | Q(published_at__lt=stale),
    )


# --- claiming and heart-beating ------------------------------------------------------------


def claim(queryset: models.QuerySet, *, pk: int, claimable: Q, worker: str, **values) -> int | None:
    """Take row `pk` for `worker` if `claimable` holds; returns the claim's attempt number.

    Exactly one of any number of racing deliveries wins. `values` are set with the claim
    (the row's status, usually); `attempts` may be overridden to start counting afresh.
    """
    values.setdefault("attempts", F("attempts") + 1)
    with transaction.atomic():
        won = queryset.filter(claimable, pk=pk).update(
            worker=worker, heartbeat_at=timezone.now(), **values
        )
        if not won:
            return None
        return queryset.filter(pk=pk).values_list("attempts", flat=True).get()


@contextlib.contextmanager
def heartbeat(queryset: models.QuerySet, *, pk: int, attempt: int) -> Iterator[threading.Event]:
    """Keep row `pk` alive from a background thread while the block runs.

    `queryset` selects the rows still running; the yielded event is set when the row stops
    being ours (cancelled, finished elsewhere, or claimed again after we were presumed dead),
    and the work checks it between steps.
    """
    lost = threading.Event()
    stop = threading.Event()
    mine = queryset.filter(pk=pk, attempts=attempt)

    def beat() -> None:
        try:
            while not stop.wait(settings.WORK_HEARTBEAT_SECONDS):
                try:
                    alive = mine.update(heartbeat_at=timezone.now())
                except DatabaseError as exc:
                    # A database hiccup: the next beat tries again, well before stale.
                    log.warning(
                        "heartbeat of %s %s failed: %s", queryset.model._meta.label, pk, exc
                    )
                    continue
                if not alive:
                    lost.set()
                    return
        finally:
            # The thread's own connection; the worker's are its main thread's business.
            connections.close_all()

    thread = threading.Thread(target=beat, name=f"heartbeat {pk}", daemon=True)
    thread.start()
    try:
        yield lost
    finally:
        stop.set()
        thread.join()
