"""Measurement tasks: thin shells over execution and services, safe to deliver twice."""

from celery import shared_task

from .execution import execute
from .services import measurements_reconcile


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def measure(self, measurement_id: int) -> None:
    execute(measurement_id=measurement_id, worker=self.request.hostname)


@shared_task
def reconcile_measurements() -> None:
    measurements_reconcile()
