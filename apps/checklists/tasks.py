"""Checklist work on workers: verifying items with admin commands."""

import dataclasses

from celery import shared_task

from apps.core.context import log_context
from apps.projects import repository

from .verification import (
    verification_alive,
    verification_claim,
    verification_record,
    verifications_reconcile,
)

UNSANDBOXED = (
    "[ran without a sandbox: this worker cannot sandbox and FIXLEDGER_ALLOW_UNSANDBOXED is on]"
)


@shared_task(bind=True, acks_late=True)
def verify_item(self, item_id: int) -> None:
    worker = self.request.hostname or "worker"
    item = verification_claim(item_id=item_id, worker=worker)
    if item is None:
        return  # already verified, or held by a live worker
    from apps.measurements.runner import CommandRunner, RunResult
    from apps.measurements.sandbox import CannotSandbox, for_this_worker

    try:
        runner = CommandRunner(sandbox=for_this_worker())
    except CannotSandbox as exc:
        verification_record(
            item=item, worker=worker, result=RunResult(argv=item.argv, failure=str(exc))
        )
        return
    # What a dead worker left on this host would compete with the command.
    repository.remove_dead_worktrees()
    change = item.change
    with (
        log_context(change=change.number),
        verification_alive(item),
        repository.checkout(change.project, change.head_sha, worker=worker) as tree,
    ):
        result = runner.run(item.argv, cwd=tree, env={}, timeout=float(item.timeout_seconds))
    if not result.sandboxed:
        # At the end, where the evidence's tail keeps it.
        result = dataclasses.replace(result, output_tail=f"{result.output_tail}\n{UNSANDBOXED}")
    verification_record(item=item, worker=worker, result=result)


@shared_task
def reconcile_verifications() -> None:
    verifications_reconcile()
