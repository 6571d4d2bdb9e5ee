"""Filling a change's commits, diffstat and files touched from its project's repository."""

import dataclasses

from django.core.exceptions import ValidationError

from apps.projects import repository
from apps.projects.git import GitError

from .models import Change
from .validators import MAX_FILES

WAITING_FOR_SYNC = "Waiting for a worker to sync the repository."


def _commit_json(commit) -> dict:
    return {**dataclasses.asdict(commit), "authored_at": commit.authored_at.isoformat()}


def _clear(change: Change) -> bool:
    """Forget what was resolved before; True when the change has revisions to resolve."""
    change.base_sha = change.head_sha = ""
    change.diffstat, change.commits, change.revision_error = [], [], ""
    return bool(change.project.repository_url and (change.base_revision or change.head_revision))


def leave_to_worker(change: Change) -> bool:
    """Resolve nothing on this host: the change waits for a worker's sync, as it does when
    this host has no clone (bulk writers: no git work per change). True when it waits."""
    if not _clear(change):
        return False
    change.revision_error = WAITING_FOR_SYNC
    return True


def fill_from_repository(change: Change, *, fill_files: bool) -> bool:
    """Resolve the change's revisions and record what lies between them.

    Returns True when this host has no clone yet and a worker must do it after syncing.
    Raises ValidationError naming the revision field when a name does not exist.
    """
    if not _clear(change):
        return False
    try:
        found = repository.resolve_revisions(
            change.project, change.base_revision, change.head_revision
        )
    except repository.NoClone:
        change.revision_error = WAITING_FOR_SYNC
        return True
    except GitError as exc:
        raise ValidationError({"head_revision": str(exc)}) from exc
    change.base_sha, change.head_sha = found["base_sha"], found["head_sha"]
    if "files" in found:
        change.diffstat = [dataclasses.asdict(f) for f in found["files"]]
        change.commits = [_commit_json(c) for c in found["commits"]]
        if fill_files:
            change.files_touched = [f.path for f in found["files"]][:MAX_FILES]
    return False
