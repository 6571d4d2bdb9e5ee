"""Writing audit entries. Services call `audit_record` inside their own transaction."""

from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal

from django.contrib.contenttypes.models import ContentType
from django.db import models

from .context import request_id_var
from .models import AuditEntry

# Rows per INSERT for bulk writers (SQLite may lower it to its own limit on variables).
BATCH = 2000


def _jsonable(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, models.Model):
        return str(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def snapshot(obj: models.Model, fields: Iterable[str]) -> dict:
    """The JSON-ready values of `fields` on `obj`; foreign keys are recorded by their label."""
    return {name: _jsonable(getattr(obj, name)) for name in fields}


def audit_entry(
    *,
    actor,
    action: str,
    obj: models.Model,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditEntry:
    """An unsaved entry: `actor` did `action` to `obj`, in the current request."""
    return AuditEntry(
        action=action,
        content_type=ContentType.objects.get_for_model(obj),
        object_id=str(obj.pk),
        object_label=str(obj)[:250],
        actor=actor,
        actor_name=actor.get_username() if actor is not None else "system",
        request_id=request_id_var.get(),
        before=before,
        after=after,
    )


def audit_record(
    *,
    actor,
    action: str,
    obj: models.Model,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditEntry:
    entry = audit_entry(actor=actor, action=action, obj=obj, before=before, after=after)
    entry.save(force_insert=True)
    return entry


def audit_record_many(
    *,
    actor,
    action: str,
    objs: Iterable[models.Model],
    after: Callable[[models.Model], dict] | None = None,
) -> list[AuditEntry]:
    """One `audit_record` entry per object, written in batches (bulk writers: imports).

    `after(obj)` gives each object's values after the action.
    """
    return AuditEntry.objects.bulk_create(
        (
            audit_entry(actor=actor, action=action, obj=obj, after=after(obj) if after else None)
            for obj in objs
        ),
        batch_size=BATCH,
    )


def audit_update(*, actor, obj: models.Model, before: dict, after: dict) -> AuditEntry | None:
    """Record an update with only the fields whose values differ; nothing if none does."""
    changed = [key for key in after if before.get(key) != after[key]]
    if not changed:
        return None
    return audit_record(
        actor=actor,
        action="update",
        obj=obj,
        before={key: before.get(key) for key in changed},
        after={key: after[key] for key in changed},
    )


def audit_history(obj: models.Model):
    """Audit entries of one object, newest first."""
    return AuditEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(obj), object_id=str(obj.pk)
    )
