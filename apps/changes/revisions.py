"""Filling a change's commits, diffstat and files touched from its project's repository."""

import dataclasses
import re

from django.core.exceptions import ValidationError

from apps.projects import repository
from apps.projects.git import GitError

from .models import Change
from .validators import MAX_FILES

WAITING_FOR_SYNC = "Waiting for a worker to sync the repository."
# A commit pushed moments ago (CI files a change right after pushing) is not in the clone until
# the next sync: what looks like a SHA waits for one fetch before it is called unknown. A name
# is still refused at once, so a typo shows in the form.
_SHA_LIKE = re.compile(r"[0-9a-f]{7,64}")


def waits_for_sync(change: Change) -> bool:
    """Whether a worker's repository sync has yet to resolve the change's revisions."""
    return change.revision_error == WAITING_FOR_SYNC


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


def fill_from_repository(change: Change, *, fill_files: bool, fetch_unknown: bool = True) -> bool:
    """Resolve the change's revisions and record what lies between them.

    Returns True when a worker must do it after syncing: this host has no clone yet, or (with
    `fetch_unknown`, i.e. not after a sync already) a SHA is not in the clone yet. Raises
    ValidationError naming the revision field when a name does not exist.
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
    except ValidationError as exc:
        unknown = {
            field: getattr(change, field)
            for field in exc.message_dict
            if field in ("base_revision", "head_revision")
        }
        if fetch_unknown and unknown and all(map(_SHA_LIKE.fullmatch, unknown.values())):
            change.revision_error = WAITING_FOR_SYNC
            return True
        raise
    except GitError as exc:
        raise ValidationError({"head_revision": str(exc)}) from exc
    change.base_sha, change.head_sha = found["base_sha"], found["head_sha"]
    if "files" in found:
        change.diffstat = [dataclasses.asdict(f) for f in found["files"]]
        change.commits = [_commit_json(c) for c in found["commits"]]
        if fill_files:
            change.files_touched = [f.path for f in found["files"]][:MAX_FILES]
    return False
