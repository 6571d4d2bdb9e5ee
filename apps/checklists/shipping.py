"""Shipping: the gate between a change and its release, and tagging the release."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.accounts.services import require_role
from apps.changes.events import ChangeRolledBack, ChangeShipped
from apps.changes.models import Change, ChangeStatus
from apps.core import events
from apps.core.audit import audit_record
from apps.projects import git, repository
from apps.projects.models import JobKind
from apps.projects.services import repository_job_request

from .items import CLOSED, set_state
from .models import ChecklistItem, ItemKind, ItemState


def ship_blockers(change: Change) -> list[str]:
    """Everything that stands between this change and its release, in words."""
    return [text for text, _overridable in ship_gate(change)]


def ship_gate(change: Change) -> list[tuple[str, bool]]:
    """Each blocker with whether an admin's override can get past it.

    An override is a judgement: ship without the evidence (no measurement, a regression, an
    open item), e.g. a hotfix or a rollback during an outage. It cannot create what tagging
    itself needs: a resolved after revision and a clone of the repository to tag in, so for
    those no override is offered or accepted.
    """
    from apps.measurements.selectors import release_evidence

    blockers = []
    for item in change.checklist.all():
        if item.required and item.kind != ItemKind.TAG_RELEASE and not item.is_settled:
            blockers.append((f"“{item.title}” is neither done nor skipped.", True))
    if change.base_sha and change.head_sha:
        blockers += [(text, True) for text in release_evidence(change)]
    else:
        blockers.append(("Not measured: the revisions are not resolved commits yet.", True))
    if not change.rollback_note.strip():
        blockers.append(("The change has no rollback note.", True))
    if not change.head_sha:
        blockers.append(
            ("The after revision is not a resolved commit, so it cannot be tagged.", False)
        )
    elif not repository.has_clone(change.project):
        blockers.append(("This host has no clone of the repository yet; sync the project.", False))
    return blockers


@transaction.atomic
def change_ship(*, actor: User, change: Change, override_reason: str = "") -> Change:
    """Tick “Tag the release”: tag the after revision, mark the change shipped, write notes."""
    require_role(actor, Role.REVIEWER, doing="ship changes")
    locked = Change.objects.select_for_update().select_related("project").get(pk=change.pk)
    if locked.status in CLOSED:
        raise ValidationError(f"{locked.number} has shipped already.")
    gate = ship_gate(locked)
    blockers = [text for text, _overridable in gate]
    override_reason = (override_reason or "").strip()
    if blockers and not override_reason:
        raise ValidationError(["Cannot tag the release yet:", *blockers])
    final = [text for text, overridable in gate if not overridable]
    if final:
        raise ValidationError(["No override can tag this release:", *final])
    if blockers:
        require_role(actor, Role.ADMIN, doing="override the release checklist")
        audit_record(
            actor=actor,
            action="override",
            obj=locked,
            after={"blockers": blockers, "reason": override_reason[:500]},
        )
    if not locked.head_sha:
        raise ValidationError(
            "The after revision is not a resolved commit, so it cannot be tagged."
        )
    if not repository.has_clone(locked.project):
        raise ValidationError("This host has no clone of the repository yet; sync the project.")
    name = locked.project.tag_pattern.format(number=locked.number)
    try:
        with repository.locked(locked.project) as path:
            git.tag_create(
                path,
                name,
                locked.head_sha,
                message=f"{locked.number} {locked.title}",
                tagger_name=actor.get_full_name() or actor.get_username(),
                tagger_email=actor.email or f"{actor.get_username()}@fixledger.invalid",
            )
    except git.GitError as exc:
        raise ValidationError(f"Could not tag the release: {exc}") from exc
    tag_item = locked.checklist.filter(kind=ItemKind.TAG_RELEASE).first()
    if tag_item is not None:
        set_state(
            ChecklistItem.objects.select_for_update().get(pk=tag_item.pk),
            actor=actor,
            state=ItemState.DONE,
            reason=override_reason[:500],
        )
    locked.status = ChangeStatus.SHIPPED
    locked.tag_name = name
    locked.shipped_at = timezone.now()
    from .notes import final_notes

    locked.final_notes = final_notes(locked)
    locked.save()
    audit_record(
        actor=actor,
        action="ship",
        obj=locked,
        before={"status": change.status},
        after={"status": locked.status, "tag": name},
    )
    events.publish(
        ChangeShipped(
            change_id=locked.pk,
            actor_id=actor.pk,
            tag_name=name,
            overridden=bool(blockers),
            override_reason=override_reason[:500] if blockers else "",
        )
    )
    if locked.rollback_of_id:
        Change.objects.filter(pk=locked.rollback_of_id).update(status=ChangeStatus.ROLLED_BACK)
        events.publish(
            ChangeRolledBack(
                change_id=locked.rollback_of_id, rollback_id=locked.pk, actor_id=actor.pk
            )
        )

    repository_job_request(project=locked.project, kind=JobKind.PUSH_TAG, ref=name)
    return locked
