"""Writing audit entries (services call `audit_record` inside their own transaction) and
reading them back as people read them."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils.text import capfirst

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


# --- reading ------------------------------------------------------------------------------

# Keys an audit entry may carry that are not fields of its object (a metric's verdict, a
# blocker list): each app that writes such keys registers how to name them, in its `ready()`.
_label_finders: list[Callable[[str], str | None]] = []


def register_audit_labels(finder: Callable[[str], str | None]) -> None:
    """`finder(key)` names a key that is not a model field, or returns None if it cannot."""
    if finder not in _label_finders:
        _label_finders.append(finder)


@dataclass(frozen=True)
class FieldChange:
    """One field of an audit entry as people read it: its label, and its value before and
    after with the choice labels shown instead of stored values."""

    key: str
    label: str
    before: object
    after: object

    @property
    def is_list(self) -> bool:
        return isinstance(self.before, list) or isinstance(self.after, list)

    @property
    def removed(self) -> list:
        """List fields: the entries the action took out."""
        after = self.after if isinstance(self.after, list) else []
        return [v for v in self.before or [] if v not in after] if self.is_list else []

    @property
    def added(self) -> list:
        """List fields: the entries the action put in."""
        before = self.before if isinstance(self.before, list) else []
        return [v for v in self.after or [] if v not in before] if self.is_list else []


def _label(model: type[models.Model] | None, key: str) -> tuple[str, dict]:
    """The key's label and, for a field with choices, its value → label map."""
    if model is not None:
        try:
            field = model._meta.get_field(key)
        except FieldDoesNotExist:
            pass
        else:
            choices = {str(v): str(text) for v, text in getattr(field, "flatchoices", [])}
            return capfirst(str(field.verbose_name)), choices
    for finder in _label_finders:
        found = finder(key)
        if found:
            return capfirst(found), {}
    return capfirst(key.replace("_", " ")), {}


def _empty(value) -> bool:
    return value is None or value == "" or value == [] or value == {}


def readable_changes(entry: AuditEntry) -> list[FieldChange]:
    """The fields an entry changed, labelled for people, in the order of the object's fields
    (other keys after them, by label)."""
    # By id: the content types are cached, so a page of entries costs no query for them.
    model = ContentType.objects.get_for_id(entry.content_type_id).model_class()
    order = {f.name: n for n, f in enumerate(model._meta.fields)} if model else {}
    rows = []
    for key, before, after in entry.changed_fields():
        if _empty(before) and _empty(after):
            continue  # None became "": nothing a person would call a change
        label, choices = _label(model, key)
        if choices:
            before = choices.get(str(before), before) if before is not None else None
            after = choices.get(str(after), after) if after is not None else None
        rows.append(FieldChange(key=key, label=label, before=before, after=after))
    return sorted(rows, key=lambda r: (order.get(r.key, len(order)), r.label))
