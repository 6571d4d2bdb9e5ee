"""Checklist work on workers: verifying items with admin commands."""

from celery import shared_task

from apps.projects import repository

from .services import (
    verification_alive,
    verification_claim,
    verification_record,
    verifications_reconcile,
)


@shared_task(bind=True, acks_late=True)
def verify_item(self, item_id: int) -> None:
    worker = self.request.hostname or "worker"
    item = verification_claim(item_id=item_id, worker=worker)
    if item is None:
        return  # already verified, or held by a live worker
    from apps.measurements.runner import CommandRunner

    # What a dead worker left on this host would compete with the command.
    repository.remove_dead_worktrees()
    change = item.change
    with (
        verification_alive(item),
        repository.checkout(change.project, change.head_sha, worker=worker) as tree,
    ):
        result = CommandRunner().run(
            item.argv, cwd=tree, env={}, timeout=float(item.timeout_seconds)
        )
    verification_record(item=item, worker=worker, result=result)


@shared_task
def reconcile_verifications() -> None:
    verifications_reconcile()
