"""The workers: which are alive, the queues each consumes, what each is doing, and the
environment queues that no worker consumes (work filed there would wait for ever).

Two sources, and the answer says which it used:

- `broker`: the workers answer Celery's remote control (ping, active queues) within a short
  timeout. Both Redis and the filesystem broker carry it; it knows idle workers too.
- `database`: no worker answered (none runs, or the broker is unreachable). Then the running
  rows of every kind of work name their workers, and an environment queue counts as without a
  consumer when work has waited on it unclaimed for longer than a worker's heartbeat may lapse.
  Idle workers and their queues cannot be seen this way; the answer says so.

What each worker is doing comes from the database in both cases: the rows it holds and keeps
heart-beating are the truth about running work.
"""

import dataclasses
import logging

from django.conf import settings
from django.core.cache import cache

from apps.checklists.models import ChecklistItem, VerificationStatus
from apps.core.queues import CACHE_SECONDS, INSPECT_TIMEOUT, ask_workers
from apps.core.work import stale_before
from apps.measurements.models import Measurement, MeasurementStatus
from apps.projects.models import Environment, JobStatus, RepositoryJob

log = logging.getLogger(__name__)

_CACHE_KEY = "fixledger:fleet"


@dataclasses.dataclass(frozen=True)
class WorkerState:
    name: str
    # None when the source cannot tell (the database knows only what a worker is running).
    queues: list[str] | None
    doing: list[str]


@dataclasses.dataclass(frozen=True)
class Fleet:
    source: str
    workers: list[WorkerState]
    environment_queues: list[str]
    unconsumed: list[str]
    note: str = ""

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _doing() -> dict[str, list[str]]:
    """What each worker holds and keeps alive, by worker name."""
    fresh = stale_before()
    doing: dict[str, list[str]] = {}
    measurements = Measurement.objects.filter(
        status=MeasurementStatus.RUNNING, heartbeat_at__gte=fresh
    ).select_related("change", "profile")
    for m in measurements:
        subject = f" of {m.change.number}" if m.change_id else f" ({m.get_kind_display()})"
        doing.setdefault(m.worker, []).append(
            f"measurement {m.pk}{subject}: {m.profile.name}, {m.phase}"
        )
    items = ChecklistItem.objects.filter(
        verification=VerificationStatus.RUNNING, heartbeat_at__gte=fresh
    ).select_related("change")
    for item in items:
        doing.setdefault(item.worker, []).append(
            f"verification of {item.change.number}: {item.title}"
        )
    jobs = RepositoryJob.objects.filter(status=JobStatus.RUNNING, heartbeat_at__gte=fresh)
    for job in jobs.select_related("project"):
        doing.setdefault(job.worker, []).append(str(job))
    return doing


def _waiting_queues() -> set[str]:
    """Environment queues with work that nobody claimed for longer than a heartbeat may lapse."""
    stale = stale_before()
    measurements = Measurement.objects.filter(status=MeasurementStatus.QUEUED, created__lt=stale)
    items = ChecklistItem.objects.filter(
        verification=VerificationStatus.QUEUED, environment__isnull=False, updated__lt=stale
    )
    names = set(measurements.values_list("profile__environment__name", flat=True))
    names |= set(items.values_list("environment__name", flat=True))
    return {Environment(name=name).queue for name in names}


def fleet_status(*, timeout: float = INSPECT_TIMEOUT) -> Fleet:
    """The workers and the environment queues without one, asked now."""
    environment_queues = sorted(e.queue for e in Environment.objects.all())
    doing = _doing()
    answered = ask_workers(timeout)
    if answered is not None:
        consumed = {queue for queues in answered.values() for queue in queues}
        workers = [
            WorkerState(name=name, queues=queues, doing=doing.get(name, []))
            for name, queues in sorted(answered.items())
        ]
        return Fleet(
            source="broker",
            workers=workers,
            environment_queues=environment_queues,
            unconsumed=[q for q in environment_queues if q not in consumed],
        )
    workers = [
        WorkerState(name=name, queues=None, doing=held) for name, held in sorted(doing.items())
    ]
    return Fleet(
        source="database",
        workers=workers,
        environment_queues=environment_queues,
        unconsumed=sorted(_waiting_queues() & set(environment_queues)),
        note="No worker answered remote control: listed are the workers running work, and "
        "the queues whose work waited unclaimed for longer than "
        f"{settings.WORK_HEARTBEAT_STALE_SECONDS} s. Idle workers and their queues are not "
        "seen this way.",
    )


def fleet_status_cached() -> Fleet:
    """The last answer, at most CACHE_SECONDS old: for probes and pages polled often."""
    fleet = cache.get(_CACHE_KEY)
    if fleet is None:
        fleet = fleet_status()
        cache.set(_CACHE_KEY, fleet, CACHE_SECONDS)
    return fleet


def readiness_warnings() -> list[str]:
    """For the readiness probe: queues no worker consumes (it answers even if listing fails)."""
    try:
        fleet = fleet_status_cached()
    except Exception as exc:
        log.warning("readiness: could not list the workers: %s", exc)
        return [f"workers unknown: {exc.__class__.__name__}"]
    return [f"no worker consumes {queue} ({fleet.source})" for queue in fleet.unconsumed]
