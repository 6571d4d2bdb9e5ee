"""Checklist work on workers: verifying items with admin commands, pushing release tags."""

import dataclasses
import logging

from celery import shared_task

from apps.changes.models import Change
from apps.projects import git, repository

from .services import verification_claim, verification_record

log = logging.getLogger(__name__)
UNSANDBOXED = (
    "[ran without a sandbox: this worker cannot sandbox and FIXLEDGER_ALLOW_UNSANDBOXED is on]"
)


@shared_task(bind=True, acks_late=True)
def verify_item(self, item_id: int) -> None:
    item = verification_claim(item_id=item_id)
    if item is None:
        return  # already verified, or taken by another delivery
    from apps.measurements.runner import CommandRunner, RunResult
    from apps.measurements.sandbox import CannotSandbox, for_this_worker

    change = item.change
    worker = self.request.hostname or "worker"
    try:
        runner = CommandRunner(sandbox=for_this_worker())
    except CannotSandbox as exc:
        verification_record(
            item=item, worker=worker, result=RunResult(argv=item.argv, failure=str(exc))
        )
        return
    with repository.checkout(change.project, change.head_sha, worker=worker) as tree:
        result = runner.run(item.argv, cwd=tree, env={}, timeout=float(item.timeout_seconds))
    if not result.sandboxed:
        # At the end, where the evidence's tail keeps it.
        result = dataclasses.replace(result, output_tail=f"{result.output_tail}\n{UNSANDBOXED}")
    verification_record(item=item, worker=worker, result=result)


@shared_task(acks_late=True)
def push_release_tag(change_id: int) -> None:
    """Best effort: the tag is made in the clone; origin gets it if the worker may push."""
    change = Change.objects.select_related("project").get(pk=change_id)
    try:
        with repository.locked(change.project) as path:
            git.tag_push(path, change.tag_name)
    except git.GitError as exc:
        log.warning("could not push %s for %s: %s", change.tag_name, change.number, exc)
