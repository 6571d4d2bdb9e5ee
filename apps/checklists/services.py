"""Writes on release checklists: templates, ticks, worker verification, shipping, rollback."""

import json
from collections.abc import Callable, Iterable

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.accounts.services import require_role
from apps.changes.models import Change, ChangeStatus
from apps.core import work
from apps.core.audit import audit_record, snapshot
from apps.core.exceptions import Conflict
from apps.core.services import record_save
from apps.projects import git, repository
from apps.projects.models import JobKind, Project
from apps.projects.services import repository_job_request
from apps.search.index import index_changes

from .models import ChecklistItem, ItemKind, ItemState, TemplateItem, VerificationStatus

# The implementation checklist the team started from; a project's own template replaces it.
DEFAULT_TEMPLATE = (
    ("Run linting", ItemKind.VERIFY),
    ("Run unit tests", ItemKind.VERIFY),
    ("Run one integration check", ItemKind.VERIFY),
    ("Verify staging config", ItemKind.STAGING_CONFIG),
    ("Tag the release", ItemKind.TAG_RELEASE),
)
TEMPLATE_FIELDS = [
    "project",
    "position",
    "title",
    "kind",
    "required",
    "argv",
    "timeout_seconds",
    # Where a verification runs is part of what it proves.
    "environment",
]
ITEM_FIELDS = ["state", "reason", "actor_name"]
CLOSED = (ChangeStatus.SHIPPED, ChangeStatus.ROLLED_BACK)


# --- templates ---------------------------------------------------------------------------


def templates_for(projects: Iterable[Project]) -> dict[int, list[TemplateItem]]:
    """Each project's checklist template (by project id), or the default one (unsaved) if it
    has none; one query for all of them."""
    by_pk = {p.pk: p for p in projects}
    own: dict[int, list[TemplateItem]] = {}
    for item in TemplateItem.objects.filter(project_id__in=list(by_pk)):
        item.project = by_pk[item.project_id]
        own.setdefault(item.project_id, []).append(item)
    return {
        pk: own.get(pk)
        or [
            TemplateItem(project=project, position=i, title=title, kind=kind)
            for i, (title, kind) in enumerate(DEFAULT_TEMPLATE)
        ]
        for pk, project in by_pk.items()
    }


def template_for(project: Project) -> list[TemplateItem]:
    """The project's checklist template, or the default one (unsaved) if it has none."""
    return templates_for([project])[project.pk]


def _own_template(actor: User, project) -> list[TemplateItem]:
    """The project's template, made its own (saved) on the first edit."""
    require_role(actor, Role.ADMIN, doing="edit checklist templates")
    items = template_for(project)
    for item in items:
        if item.pk is None:
            record_save(actor=actor, obj=item, fields=TEMPLATE_FIELDS)
    return items


@transaction.atomic
def template_item_add(*, actor: User, project, **values) -> TemplateItem:
    items = _own_template(actor, project)
    position = max((i.position for i in items), default=-1) + 1
    # New items go before "Tag the release", which stays last.
    tag = next((i for i in items if i.kind == ItemKind.TAG_RELEASE), None)
    if tag is not None:
        position, tag.position = tag.position, position
        record_save(actor=actor, obj=tag, fields=TEMPLATE_FIELDS)
    item = TemplateItem(project=project, position=position, **values)
    return record_save(actor=actor, obj=item, fields=TEMPLATE_FIELDS)


@transaction.atomic
def template_item_update(*, actor: User, item: TemplateItem, **values) -> TemplateItem:
    _own_template(actor, item.project)
    for name, value in values.items():
        setattr(item, name, value)
    return record_save(actor=actor, obj=item, fields=TEMPLATE_FIELDS)


@transaction.atomic
def template_item_remove(*, actor: User, item: TemplateItem) -> None:
    _own_template(actor, item.project)
    if item.kind == ItemKind.TAG_RELEASE:
        raise ValidationError("Every checklist ends with “Tag the release”: it ships the change.")
    audit_record(actor=actor, action="delete", obj=item, before=snapshot(item, TEMPLATE_FIELDS))
    item.delete()


@transaction.atomic
def template_item_move(*, actor: User, item: TemplateItem, offset: int) -> None:
    items = sorted(_own_template(actor, item.project), key=lambda i: i.position)
    index = next(n for n, i in enumerate(items) if i.pk == item.pk)
    other = index + offset
    if not 0 <= other < len(items) or ItemKind.TAG_RELEASE in (
        items[index].kind,
        items[other].kind,
    ):
        return
    a, b = items[index], items[other]
    a.position, b.position = b.position, a.position
    for moved in (a, b):
        record_save(actor=actor, obj=moved, fields=TEMPLATE_FIELDS)


def checklist_copy(*, changes: Iterable[Change]) -> None:
    """Give newly filed changes their project's checklist (inside the filing transaction)."""
    ids_of: dict[int, list[int]] = {}
    projects = {}
    for change in changes:
        ids_of.setdefault(change.project_id, []).append(change.pk)
        projects[change.project_id] = change.project
    templates = templates_for(projects.values())
    # An item is the same for every change of a project but for the change it belongs to:
    # it is converted for the database once and written for all of them by one INSERT ...
    # SELECT over their ids. bulk_create converted and sent every value of every row again,
    # most of the time an import of many changes took.
    change_field = ChecklistItem._meta.get_field("change")
    fields = [
        f
        for f in ChecklistItem._meta.concrete_fields
        if not f.primary_key and f is not change_field
    ]
    source, as_param = _one_row_per_id()
    quote = connection.ops.quote_name
    # Only names from the model and placeholders are formatted in.
    sql = "INSERT INTO {} ({}, {}) SELECT value, {} FROM {}".format(  # noqa: S608
        quote(ChecklistItem._meta.db_table),
        quote(change_field.column),
        ", ".join(quote(f.column) for f in fields),
        ", ".join(["%s"] * len(fields)),
        source,
    )
    with connection.cursor() as cursor:
        for project_id, ids in ids_of.items():
            ordered = sorted(templates[project_id], key=lambda t: t.position)
            for n, t in enumerate(ordered):
                item = ChecklistItem(
                    position=n,
                    title=t.title,
                    kind=t.kind,
                    required=t.required,
                    argv=t.argv,
                    timeout_seconds=t.timeout_seconds,
                    # By id: the template's environment is not fetched.
                    environment_id=t.environment_id,
                )
                values = [
                    f.get_db_prep_save(f.pre_save(item, add=True), connection) for f in fields
                ]
                cursor.execute(sql, [*values, as_param(ids)])


def _one_row_per_id() -> tuple[str, Callable[[list[int]], object]]:
    """A FROM item with one row (column `value`) per id of a list given as one parameter, and
    what to pass as that parameter."""
    if connection.vendor == "postgresql":
        return "unnest(%s::bigint[]) AS ids(value)", list
    if connection.vendor == "sqlite":
        return "json_each(%s)", json.dumps
    raise NotImplementedError(f"checklists do not support {connection.vendor}")


# --- ticking -----------------------------------------------------------------------------


def can_tick(actor: User, change: Change, item: ChecklistItem | None = None) -> bool:
    """Reviewers and admins tick anything; engineers their own change, except shipping it."""
    if actor is None or not actor.is_authenticated:
        return False
    if actor.has_role(Role.REVIEWER):
        return True
    if item is not None and item.kind == ItemKind.TAG_RELEASE:
        return False
    return actor.has_role(Role.ENGINEER) and change.owner_id == actor.pk


def _locked_item(item: ChecklistItem, version: int | None) -> ChecklistItem:
    # Without the version the caller saw, a write from a stale page would land unnoticed.
    if version is None:
        raise ValidationError(
            {"version": "The item's version is missing; reload the page and try again."}
        )
    locked = ChecklistItem.objects.select_for_update().select_related("change").get(pk=item.pk)
    if locked.version != version:
        who = locked.actor_name or "a worker"
        raise Conflict(
            f"“{locked.title}” was changed by {who} meanwhile (it is now "
            f"{locked.get_state_display().lower()}); reload the page and try again."
        )
    if locked.change.status in CLOSED:
        raise ValidationError(f"{locked.change.number} has shipped; its checklist is closed.")
    return locked


def _set(item: ChecklistItem, *, actor, state: str, reason: str = "", **extra) -> None:
    before = snapshot(item, ITEM_FIELDS)
    item.state, item.reason = state, reason
    item.actor = actor
    item.actor_name = actor.get_username() if actor else "worker"
    item.ticked_at = timezone.now() if state != ItemState.OPEN else None
    for name, value in extra.items():
        setattr(item, name, value)
    item.version = F("version") + 1
    item.save()
    item.refresh_from_db(fields=["version"])
    action = {"done": "tick", "skipped": "skip", "open": "reopen"}[state]
    audit_record(
        actor=actor, action=action, obj=item, before=before, after=snapshot(item, ITEM_FIELDS)
    )


@transaction.atomic
def checklist_item_tick(
    *, actor: User, item: ChecklistItem, state: str, version: int | None, reason: str = ""
) -> ChecklistItem:
    """Tick, untick or skip one item. A stale `version` raises Conflict and changes nothing."""
    if state not in ItemState.values:
        raise ValidationError({"state": f"One of {', '.join(ItemState.values)}."})
    locked = _locked_item(item, version)
    if not can_tick(actor, locked.change, locked):
        raise PermissionDenied("Your role does not allow ticking this item.")
    if locked.kind == ItemKind.TAG_RELEASE:
        raise ValidationError("“Tag the release” ships the change: use its own button.")
    reason = (reason or "").strip()
    if state == ItemState.SKIPPED and not reason:
        raise ValidationError({"reason": "Say why the item is skipped."})
    if len(reason) > 500:
        raise ValidationError({"reason": "At most 500 characters."})
    if locked.kind == ItemKind.STAGING_CONFIG and state == ItemState.DONE:
        _require_staging_evidence(locked.change)
    _set(locked, actor=actor, state=state, reason=reason if state == ItemState.SKIPPED else "")
    return locked


# --- worker verification -----------------------------------------------------------------


@transaction.atomic
def checklist_item_verify_request(*, actor: User, item: ChecklistItem, version: int | None):
    locked = _locked_item(item, version)
    if not can_tick(actor, locked.change, locked):
        raise PermissionDenied("Your role does not allow verifying this item.")
    if locked.kind != ItemKind.VERIFY or not locked.argv:
        raise ValidationError("An admin has not given this item a command to verify it with.")
    if not locked.change.head_sha:
        raise ValidationError("Resolve the change's after revision first.")
    if locked.verification in (VerificationStatus.QUEUED, VerificationStatus.RUNNING):
        raise ValidationError("A worker is verifying this item already.")
    locked.verification = VerificationStatus.QUEUED
    locked.version = F("version") + 1
    # A new round: the last one's claim says nothing about this one.
    locked.attempts, locked.heartbeat_at, locked.published_at = 0, None, timezone.now()
    locked.save(
        update_fields=["verification", "version", "attempts", "heartbeat_at", "published_at"]
    )
    audit_record(actor=actor, action="verify", obj=locked)
    transaction.on_commit(lambda: verification_publish(locked))
    locked.refresh_from_db()
    return locked


def verification_publish(item: ChecklistItem) -> bool:
    from .tasks import verify_item

    queue = item.environment.queue if item.environment else "default"
    return work.publish(verify_item, item, args=[item.pk], queue=queue)


def verification_claim(*, item_id: int, worker: str) -> ChecklistItem | None:
    """Take the item's verification for `worker`: a queued one, or one whose worker stopped
    heart-beating. None if a live worker holds it, it is over, or it used up its attempts."""
    item = ChecklistItem.objects.filter(pk=item_id).first()
    if item is None or item.verification not in (
        VerificationStatus.QUEUED,
        VerificationStatus.RUNNING,
    ):
        return None
    stale = Q(verification=VerificationStatus.RUNNING, heartbeat_at__lt=work.stale_before())
    if item.attempts >= work.MAX_ATTEMPTS:
        if ChecklistItem.objects.filter(stale, pk=item_id).exists():
            verification_give_up(item=item)
        return None
    attempt = work.claim(
        ChecklistItem.objects,
        pk=item_id,
        claimable=Q(verification=VerificationStatus.QUEUED) | stale,
        worker=worker,
        verification=VerificationStatus.RUNNING,
    )
    if attempt is None:
        return None
    return ChecklistItem.objects.select_related("change__project").get(pk=item_id)


def verification_alive(item: ChecklistItem):
    """Heart-beat from a background thread while the block runs."""
    return work.heartbeat(
        ChecklistItem.objects.filter(verification=VerificationStatus.RUNNING),
        pk=item.pk,
        attempt=item.attempts,
    )


@transaction.atomic
def verification_record(*, item: ChecklistItem, worker: str, result) -> None:
    """A worker's verdict on an item: done with the evidence, or left open with the failure.

    Only the claim that holds the verification records; an older one's result is dropped.
    """
    locked = ChecklistItem.objects.select_for_update().get(pk=item.pk)
    if locked.verification != VerificationStatus.RUNNING or locked.attempts != item.attempts:
        return
    evidence = {
        "worker": worker,
        "exit_code": result.exit_code,
        "seconds": round(result.wall_seconds, 3),
        "output_tail": result.output_tail[-4000:],
        "failure": result.failure,
    }
    if result.ok:
        _set(
            locked,
            actor=None,
            state=ItemState.DONE,
            evidence=evidence,
            verification=VerificationStatus.IDLE,
        )
    else:
        _verification_failed(locked, evidence)


def _verification_failed(locked: ChecklistItem, evidence: dict) -> None:
    locked.evidence, locked.verification = evidence, VerificationStatus.FAILED
    locked.version = F("version") + 1
    locked.save(update_fields=["evidence", "verification", "version"])
    audit_record(
        actor=None,
        action="verification failed",
        obj=locked,
        after={"failure": evidence["failure"]},
    )


@transaction.atomic
def verification_give_up(*, item: ChecklistItem) -> None:
    """End a verification whose workers kept dying: failed, with the reason as evidence."""
    locked = ChecklistItem.objects.select_for_update().get(pk=item.pk)
    if locked.verification in (VerificationStatus.QUEUED, VerificationStatus.RUNNING):
        evidence = {"worker": locked.worker, "exit_code": None, "failure": work.GAVE_UP}
        _verification_failed(locked, evidence)


def verifications_reconcile() -> int:
    """Beat: publish again the verifications a dead worker held or whose message was lost; end
    those that used up their attempts. Returns how many were published."""
    active = ChecklistItem.objects.filter(
        verification__in=(VerificationStatus.QUEUED, VerificationStatus.RUNNING)
    ).select_related("environment")
    return work.reconcile(
        work.due(active).order_by("pk"),
        spent=lambda item: (
            item.verification == VerificationStatus.RUNNING and item.attempts >= work.MAX_ATTEMPTS
        ),
        give_up=lambda item: verification_give_up(item=item),
        send=verification_publish,
    )


def _require_staging_evidence(change: Change) -> None:
    """“Verify staging config” is done only with a measurement of the current revisions whose
    environment kept its configuration from the first run to the last."""
    from apps.measurements.models import Measurement, MeasurementKind, MeasurementStatus

    latest = (
        Measurement.objects.filter(
            change=change,
            kind=MeasurementKind.COMPARE,
            status=MeasurementStatus.DONE,
            base_sha=change.base_sha,
            head_sha=change.head_sha,
        )
        .order_by("-id")
        .first()
    )
    if not (change.base_sha and change.head_sha) or latest is None:
        raise ValidationError(
            "“Verify staging config” compares the configuration a measurement of the current "
            "revisions ran under: measure the change first (or skip the item, saying why)."
        )
    if latest.config_at_start != latest.config_at_end:
        raise ValidationError(
            f"The staging configuration changed during measurement {latest.pk}: measure again."
        )


def staging_config_record(*, change: Change, start: str, end: str) -> None:
    """After a measurement: the staging-config item is done when the config did not move."""
    item = change.checklist.filter(kind=ItemKind.STAGING_CONFIG, state=ItemState.OPEN).first()
    if item is None or not start:
        return
    with transaction.atomic():
        locked = ChecklistItem.objects.select_for_update().get(pk=item.pk)
        if start == end:
            _set(locked, actor=None, state=ItemState.DONE, evidence={"fingerprint": start})
        else:
            locked.evidence = {
                "warning": "The staging configuration changed during the measurement.",
                "fingerprint_before": start,
                "fingerprint_after": end,
            }
            locked.save(update_fields=["evidence"])


# --- shipping ----------------------------------------------------------------------------


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
        _set(
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
    if locked.rollback_of_id:
        Change.objects.filter(pk=locked.rollback_of_id).update(status=ChangeStatus.ROLLED_BACK)
    # Status and final notes are searchable, and so is the status of what this rolled back.
    index_changes([locked.pk, *([locked.rollback_of_id] if locked.rollback_of_id else [])])

    repository_job_request(project=locked.project, kind=JobKind.PUSH_TAG, ref=name)
    return locked


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
