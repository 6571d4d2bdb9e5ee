"""Rolling back a shipped change: filing its reverse."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from apps.accounts.models import User
from apps.changes.models import Change, ChangeStatus


@transaction.atomic
def change_rollback(*, actor: User, change: Change) -> Change:
    """File the reverse of a shipped change, to be measured and shipped like any other."""
    from apps.changes.services import can_edit_change, change_create

    change = Change.objects.select_for_update().select_related("project").get(pk=change.pk)
    if not can_edit_change(actor, change):
        raise PermissionDenied("Only the change's owner, a reviewer or an admin may roll it back.")
    if change.status != ChangeStatus.SHIPPED:
        raise ValidationError("Only a shipped change can be rolled back.")
    if change.rollbacks.exists():
        raise ValidationError(f"{change.number} already has a rollback change.")
    return change_create(
        actor=actor,
        project=change.project,
        title=f"Roll back {change.number}: {change.title}"[:200],
        reason=change.rollback_note or f"Undo {change.number}.",
        expected_result=f"The metrics return to what they were before {change.number}.",
        rollback_note=f"Ship {change.number} again.",
        base_revision=change.head_revision,
        head_revision=change.base_revision,
        files_touched=change.files_touched,
        tags=change.tags,
        rollback_of=change,
    )
