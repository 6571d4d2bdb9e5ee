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


@dataclasses.dataclass(frozen=True)
class FilesCheck:
    """Where the files touched that people typed disagree with the git diff."""

    not_in_diff: list[str]
    not_listed: list[str]


def files_against_diff(change: Change) -> FilesCheck | None:
    """How the files touched disagree with the diff between the resolved revisions; None when
    they agree or there is no resolved diff to compare with."""
    if not (change.base_sha and change.head_sha) or not change.files_touched:
        return None
    in_diff = [f["path"] for f in change.diffstat]
    known = {*in_diff, *(f.get("old_path") for f in change.diffstat if f.get("old_path"))}
    typed = set(change.files_touched)
    check = FilesCheck(
        not_in_diff=[path for path in change.files_touched if path not in known],
        # Past the limit the list is cut short on purpose: the rest is not missing.
        not_listed=[path for path in in_diff if path not in typed]
        if len(in_diff) <= MAX_FILES
        else [],
    )
    return check if check.not_in_diff or check.not_listed else None


def files_from_diff(change: Change) -> list[str]:
    """The files touched as the last diff gives them."""
    return [f["path"] for f in change.diffstat][:MAX_FILES]
