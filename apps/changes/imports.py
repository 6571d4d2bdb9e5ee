"""Importing past fixes. Each record is checked like a change filed through the API (the same
serializer and `change_prepare`), then the whole file is filed at once by
`changes_create_many` (audited, given its checklist and indexed like any other change); a file
imports whole or not at all.

Ownership: the importing admin is the actor; each change is owned by the user the record
names, who must exist and be an engineer or above. A record naming nobody takes the
default owner given to the import, if any; otherwise it is refused. Imported changes start
as drafts: status, revisions' SHAs and verdicts belong to fixledger's own lifecycle.
"""

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from rest_framework import serializers

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.accounts.services import require_role
from apps.projects.models import Project

from .models import Change
from .services import change_prepare, changes_create_many

# Names per lookup query: well under any database's limit on query parameters.
LOOKUP_CHUNK = 500


@dataclass(frozen=True)
class RecordError:
    record: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.record}: {self.field}: {self.message}"


class ImportRefused(Exception):
    """Nothing was imported; `errors` says which record and field, for every bad record."""

    def __init__(self, errors: list[RecordError]):
        self.errors = errors
        super().__init__(f"{len(errors)} error(s); nothing was imported.")


def _label(index: int, record: dict) -> str:
    title = record.get("title")
    return f"record {index}" + (f" ({str(title)[:60]!r})" if title else "")


def _errors_of(label: str, detail, prefix: str = "") -> list[RecordError]:
    if isinstance(detail, dict):
        return [e for key, value in detail.items() for e in _errors_of(label, value, key)]
    if isinstance(detail, list):
        return [e for item in detail for e in _errors_of(label, item, prefix)]
    return [RecordError(label, prefix or "record", str(detail))]


@transaction.atomic
def changes_import(
    *, actor: User, records: list[dict], default_owner: str = "", default_project: str = ""
) -> list[Change]:
    require_role(actor, Role.ADMIN, doing="import changes")
    changes = _checked(actor, records, default_owner, default_project)
    return changes_create_many(actor=actor, changes=changes)


def _checked(actor, records, default_owner, default_project) -> list[Change]:
    """Every record as an unsaved change checked like a hand-filed one, or ImportRefused
    naming each bad record and field. Projects and owners are fetched once for the file."""
    from .api import ChangeSerializer

    filled = []
    for raw in records:
        record = dict(raw)
        if default_owner and not record.get("owner"):
            record["owner"] = default_owner
        if default_project and not record.get("project"):
            record["project"] = default_project
        filled.append(record)
    # One serializer for every record: its fields are built once.
    checker = ChangeSerializer(context={"known": _known(filled)})
    errors: list[RecordError] = []
    changes: list[Change] = []
    for index, (raw, record) in enumerate(zip(records, filled, strict=True), 1):
        label = _label(index, raw)
        if not record.get("owner"):
            errors.append(RecordError(label, "owner", "Name the owner (a username)."))
            continue
        try:
            data = checker.run_validation(record)
        except serializers.ValidationError as exc:
            errors += _errors_of(label, exc.detail)
            continue
        owner = data.get("owner")
        if owner is not None and not owner.has_role(Role.ENGINEER):
            errors.append(
                RecordError(label, "owner", f"{owner.get_username()} is not an engineer.")
            )
            continue
        try:
            changes.append(change_prepare(actor=actor, related_checked=True, **data))
        except ValidationError as exc:
            detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
            errors += _errors_of(label, detail)
        except PermissionDenied as exc:
            errors.append(RecordError(label, "owner", str(exc)))
    if errors:
        raise ImportRefused(errors)
    return changes


def _known(records: list[dict]) -> dict[str, dict]:
    """The projects and active users the records name, by slug and username: a few queries
    for the whole file instead of two per record."""
    return {
        "project": _fetch(Project.objects.all(), "slug", _named(records, "project")),
        # With their groups, so each owner's role is known without a query per record.
        "owner": _fetch(
            User.objects.filter(is_active=True).prefetch_related("groups"),
            "username",
            _named(records, "owner"),
        ),
    }


def _named(records: list[dict], field: str) -> list[str]:
    from .api import slug_key

    values = {slug_key(r[field]) for r in records if isinstance(r.get(field), str | int | float)}
    # PostgreSQL refuses NUL in a query; the serializer refuses such a name anyway.
    return sorted(v for v in values if v and "\x00" not in v)


def _fetch(queryset, field: str, values: list[str]) -> dict:
    found = {}
    for start in range(0, len(values), LOOKUP_CHUNK):
        for obj in queryset.filter(**{f"{field}__in": values[start : start + LOOKUP_CHUNK]}):
            found[getattr(obj, field)] = obj
    return found
