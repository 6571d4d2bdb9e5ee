"""Measurement tasks: thin shells over execution and services, safe to deliver twice."""

import logging

from celery import shared_task
from celery.signals import worker_ready

from apps.core.context import log_context

from .execution import execute
from .logs import measurement_log_save
from .reports import measurements_reconcile
from .retention import measurements_prune
from .sandbox import CannotSandbox, for_this_worker
from .selectors import change_number_of

log = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def measure(self, measurement_id: int) -> None:
    with log_context(measurement=measurement_id, change=change_number_of(measurement_id)):
        # The lines that frame a measurement's own in the log, wherever it ran.
        log.info("measurement %s: starting on %s", measurement_id, self.request.hostname)
        try:
            execute(measurement_id=measurement_id, worker=self.request.hostname)
            log.info("measurement %s: worker done", measurement_id)
        finally:
            measurement_log_save(measurement_id=measurement_id)


@shared_task
def reconcile_measurements() -> None:
    measurements_reconcile()


@shared_task
def prune_measurements() -> None:
    pruned = measurements_prune()
    if pruned:
        log.info("pruned the raw samples of %s measurements", pruned)


@worker_ready.connect
def _probe_sandbox(sender, **kwargs) -> None:
    # Once per worker, at its start: the answer is cached for every task it runs, and an admin
    # reads in the log at once why this host would refuse to measure.
    try:
        sandbox = for_this_worker()
    except CannotSandbox as exc:
        log.error("%s Measurements and verifications will fail until it can.", exc)
        return
    if sandbox is not None:
        log.info("commands at a revision run in a bubblewrap sandbox (%s)", sandbox.bwrap)
