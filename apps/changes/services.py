"""Writes on changes. Every one checks the actor's role and leaves an audit entry."""

import gc
from typing import Required, TypedDict, Unpack

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.accounts.services import require_role
from apps.core import events
from apps.core.audit import audit_record_many, audit_update, snapshot
from apps.projects.models import Project
from apps.projects.services import project_sync_enqueue

from .events import ChangeEdited, ChangesFiled, RevisionsResolved
from .expectations import expectation_error
from .models import Change, ChangeStatus
from .revisions import files_from_diff, fill_from_repository, leave_to_worker

# What an engineer can edit on a change; status belongs to the change's lifecycle.
EDITABLE_FIELDS = (
    "title",
    "project",
    "reason",
    "expected_result",
    "command",
    "rollback_note",
    "files_touched",
    "base_revision",
    "head_revision",
    "tags",
)
AUDITED_FIELDS = (*EDITABLE_FIELDS, "owner", "status", "base_sha", "head_sha")
REVISION_FIELDS = ("project", "base_revision", "head_revision")


def can_edit_change(actor: User, change: Change) -> bool:
    """Engineers edit their own changes; reviewers and admins edit any."""
    if actor is None or not actor.is_authenticated:
        return False
    if actor.has_role(Role.REVIEWER):
        return True
    return actor.has_role(Role.ENGINEER) and change.owner_id == actor.pk


def _check_expected_result(change: Change) -> None:
    """An expected result naming a metric must name one that can be checked."""
    error = expectation_error(change.project_id, change.expected_result)
    if error:
        raise ValidationError({"expected_result": error})


def _require_owner_choice(actor: User, owner: User) -> None:
    if owner.pk != actor.pk:
        require_role(actor, Role.REVIEWER, doing="file or hand a change to someone else")
    if not owner.has_role(Role.ENGINEER):
        raise PermissionDenied(
            f"{owner.get_username()} is not an engineer and cannot own a change."
        )


class ChangeFields(TypedDict, total=False):
    """What filing a change takes; everything else on it is derived."""

    project: Required[Project]
    title: Required[str]
    reason: Required[str]
    expected_result: Required[str]
    command: str
    rollback_note: str
    files_touched: list[str]
    base_revision: str
    head_revision: str
    tags: list[str]
    owner: User | None  # defaults to the actor
    rollback_of: Change | None


def change_prepare(
    *, actor: User, related_checked: bool = False, **fields: Unpack[ChangeFields]
) -> Change:
    """The unsaved change `actor` files, checked like any other: the owner may own it and
    every field is valid. Raises PermissionDenied, or ValidationError naming the fields.

    `related_checked`: project and owner are rows the caller fetched itself (bulk writers
    look them up once per file), so they are not fetched again per change.
    """
    unknown = set(fields) - set(ChangeFields.__annotations__)
    missing = ChangeFields.__required_keys__ - set(fields)
    if unknown or missing:
        raise TypeError(f"change_prepare() got {sorted(unknown)}, lacks {sorted(missing)}")
    owner = fields.get("owner") or actor
    _require_owner_choice(actor, owner)
    change = Change(
        **{
            **fields,
            "owner": owner,
            "files_touched": list(fields.get("files_touched") or []),
            "tags": list(fields.get("tags") or []),
        }
    )
    change.full_clean(exclude=["project", "owner"] if related_checked else None)
    return change


def _audit_filed(*, actor: User, changes: list[Change]) -> None:
    audit_record_many(
        actor=actor,
        action="create",
        objs=changes,
        after=lambda change: snapshot(change, AUDITED_FIELDS),
    )


def _publish_filed(*, actor: User, changes: list[Change], imported: bool) -> None:
    """Checklists copy their template and search indexes them, after commit."""
    events.publish(
        ChangesFiled(
            change_ids=tuple(change.pk for change in changes),
            actor_id=actor.pk,
            imported=imported,
        )
    )


@transaction.atomic
def change_create(*, actor: User, **fields: Unpack[ChangeFields]) -> Change:
    """File one change. Its revisions resolve now when this host has a clone of the
    repository, otherwise on a worker after it syncs."""
    require_role(actor, Role.ENGINEER, doing="file changes")
    change = change_prepare(actor=actor, related_checked=False, **fields)
    # Imported history keeps the words it was written with; a change filed now must name a
    # metric that can be checked.
    _check_expected_result(change)
    needs_sync = fill_from_repository(change, fill_files=not change.files_touched)
    change.full_clean()
    change.save()
    _audit_filed(actor=actor, changes=[change])
    _publish_filed(actor=actor, changes=[change], imported=False)
    if needs_sync:
        project_sync_enqueue(change.project)
    return change


@transaction.atomic
def changes_create_many(*, actor: User, changes: list[Change], batch: int = 2000) -> list[Change]:
    """File many changes from `change_prepare` as `change_create` would, in batches: a few
    queries per batch, none per change.

    No git work per change: revisions are left to one repository sync per project, after
    which a worker resolves them (and fills empty file lists), as for a host without a clone.
    """
    require_role(actor, Role.ENGINEER, doing="file changes")
    to_sync: dict[int, Project] = {}
    for change in changes:
        # Services check roles themselves; for owners fetched with their groups, no query.
        _require_owner_choice(actor, change.owner)
        if leave_to_worker(change):
            to_sync[change.project_id] = change.project
    # Every batch leaves thousands of short-lived objects, which set off full garbage
    # collections; each scanned everything alive (all the changes, the caller's records) again
    # and took a third of an import's time. Frozen, what is alive now is left out of them.
    gc.freeze()
    try:
        for start in range(0, len(changes), batch):
            part = Change.objects.bulk_create(changes[start : start + batch])
            _audit_filed(actor=actor, changes=part)
    finally:
        gc.unfreeze()
    # One event for the whole file: its subscribers work in batches too.
    _publish_filed(actor=actor, changes=changes, imported=True)
    for project in to_sync.values():
        project_sync_enqueue(project)
    return changes


def _files_from_diff(change: Change) -> bool:
    """True while files touched is still exactly what the last diff filled in."""
    return change.files_touched == files_from_diff(change)


@transaction.atomic
def change_update(*, actor: User, change: Change, **fields) -> Change:
    """Set the given editable fields (and `owner`, for reviewers); unknown names are refused."""
    unknown = set(fields) - {*EDITABLE_FIELDS, "owner"}
    if unknown:
        raise TypeError(f"change_update() got fields it cannot set: {sorted(unknown)}")
    # Lock the row so two concurrent edits apply one after the other, each audited against
    # the values it really replaced.
    locked = Change.objects.select_for_update().select_related("project", "owner").get(pk=change.pk)
    if not can_edit_change(actor, locked):
        raise PermissionDenied("Only the change's owner, a reviewer or an admin may edit it.")
    if locked.status in (ChangeStatus.SHIPPED, ChangeStatus.ROLLED_BACK):
        raise ValidationError(f"{locked.number} has shipped: roll it back or file a new change.")
    if "owner" in fields and fields["owner"].pk != locked.owner_id:
        _require_owner_choice(actor, fields["owner"])
    before = snapshot(locked, AUDITED_FIELDS)
    hand_edited_files = not _files_from_diff(locked)
    for name, value in fields.items():
        setattr(locked, name, value)
    needs_sync = False
    if any(snapshot(locked, [f]) != {f: before[f]} for f in REVISION_FIELDS):
        locked.full_clean()
        # New revisions bring a new file list, unless the engineer wrote it or edits it now.
        files_edited_now = locked.files_touched != before["files_touched"]
        needs_sync = fill_from_repository(
            locked, fill_files=not (hand_edited_files or files_edited_now)
        )
    if not locked.files_touched and locked.diffstat:
        # Cleared: git says again which files the change touches.
        locked.files_touched = files_from_diff(locked)
    after = snapshot(locked, AUDITED_FIELDS)
    if before == after:
        return locked
    locked.full_clean()
    if after["expected_result"] != before["expected_result"] or "project" in fields:
        _check_expected_result(locked)
    locked.save()
    if needs_sync:
        project_sync_enqueue(locked.project)
    audit_update(actor=actor, obj=locked, before=before, after=after)
    events.publish(ChangeEdited(change_id=locked.pk, actor_id=actor.pk))
    return locked


@transaction.atomic
def change_refresh_revisions(*, change: Change) -> Change:
    """Resolve a change's revisions again (a worker, after a sync); errors are stored."""
    locked = Change.objects.select_for_update().select_related("project").get(pk=change.pk)
    before = snapshot(locked, AUDITED_FIELDS)
    previous_error = locked.revision_error
    fill_files = not locked.files_touched or _files_from_diff(locked)
    try:
        fill_from_repository(locked, fill_files=fill_files, fetch_unknown=False)
    except ValidationError as exc:
        locked.revision_error = " ".join(exc.messages)
    after = snapshot(locked, AUDITED_FIELDS)
    if before != after or previous_error != locked.revision_error:
        locked.save()
    audit_update(actor=None, obj=locked, before=before, after=after)
    events.publish(RevisionsResolved(change_id=locked.pk, error=locked.revision_error))
    return locked


def change_refresh_revisions_pending(*, project: Project) -> int:
    """Resolve every unshipped change of `project` whose revisions are not resolved yet."""
    pending = (
        Change.objects.filter(project=project, base_sha="", head_sha="")
        .exclude(base_revision="", head_revision="")
        .exclude(status__in=[ChangeStatus.SHIPPED, ChangeStatus.ROLLED_BACK])
    )
    count = 0
    for change in pending.iterator():
        change_refresh_revisions(change=change)
        count += 1
    return count
