"""Checklist templates: what each project's changes must do before release, and copying it
to newly filed changes."""

import json
from collections.abc import Callable, Iterable

from django.core.exceptions import ValidationError
from django.db import connection, transaction

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.accounts.services import require_role
from apps.changes.models import Change
from apps.core.audit import audit_record, snapshot
from apps.core.services import record_save
from apps.projects.models import Project

from .models import ChecklistItem, ItemKind, TemplateItem

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


def checklist_copy(*, change_ids: Iterable[int]) -> None:
    """Give newly filed changes their project's checklist."""
    ids_of: dict[int, list[int]] = {}
    for pk, project_id in Change.objects.filter(pk__in=list(change_ids)).values_list(
        "pk", "project_id"
    ):
        ids_of.setdefault(project_id, []).append(pk)
    templates = templates_for(Project.objects.filter(pk__in=list(ids_of)))
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
