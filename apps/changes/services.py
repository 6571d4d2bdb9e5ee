"""Writes on changes. Every one checks the actor's role and leaves an audit entry."""

from django.core.exceptions import PermissionDenied
from django.db import transaction

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.accounts.services import require_role
from apps.core.audit import audit_record, snapshot
from apps.projects.models import Project

from .models import Change

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
AUDITED_FIELDS = (*EDITABLE_FIELDS, "owner", "status")


def can_edit_change(actor: User, change: Change) -> bool:
    """Engineers edit their own changes; reviewers and admins edit any."""
    if actor is None or not actor.is_authenticated:
        return False
    if actor.has_role(Role.REVIEWER):
        return True
    return actor.has_role(Role.ENGINEER) and change.owner_id == actor.pk


def _require_owner_choice(actor: User, owner: User) -> None:
    if owner.pk != actor.pk:
        require_role(actor, Role.REVIEWER, doing="file or hand a change to someone else")
    if not owner.has_role(Role.ENGINEER):
        raise PermissionDenied(
            f"{owner.get_username()} is not an engineer and cannot own a change."
        )


@transaction.atomic
def change_create(
    *,
    actor: User,
    project: Project,
    title: str,
    reason: str,
    expected_result: str,
    command: str = "",
    rollback_note: str = "",
    files_touched: list[str] | None = None,
    base_revision: str = "",
    head_revision: str = "",
    tags: list[str] | None = None,
    owner: User | None = None,
) -> Change:
    require_role(actor, Role.ENGINEER, doing="file changes")
    owner = owner or actor
    _require_owner_choice(actor, owner)
    change = Change(
        project=project,
        owner=owner,
        title=title,
        reason=reason,
        expected_result=expected_result,
        command=command,
        rollback_note=rollback_note,
        files_touched=list(files_touched or []),
        base_revision=base_revision,
        head_revision=head_revision,
        tags=list(tags or []),
    )
    change.full_clean()
    change.save()
    audit_record(actor=actor, action="create", obj=change, after=snapshot(change, AUDITED_FIELDS))
    return change


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
    if "owner" in fields and fields["owner"].pk != locked.owner_id:
        _require_owner_choice(actor, fields["owner"])
    before = snapshot(locked, AUDITED_FIELDS)
    for name, value in fields.items():
        setattr(locked, name, value)
    after = snapshot(locked, AUDITED_FIELDS)
    if before == after:
        return locked
    locked.full_clean()
    locked.save()
    changed = [k for k in AUDITED_FIELDS if before[k] != after[k]]
    audit_record(
        actor=actor,
        action="update",
        obj=locked,
        before={k: before[k] for k in changed},
        after={k: after[k] for k in changed},
    )
    return locked
