"""Importing past fixes. Each record goes through `change_create` (so it is checked, audited
and indexed like any other change); a file imports whole or not at all.

Ownership: the importing admin is the actor; each change is owned by the user the record
names, who must exist and be an engineer or above. A record naming nobody takes the
default owner given to the import, if any; otherwise it is refused. Imported changes start
as drafts: status, revisions' SHAs and verdicts belong to fixledger's own lifecycle.
"""

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.accounts.services import require_role
from apps.changes.models import Change
from apps.changes.services import change_create
from apps.changes.validators import validate_tags

from .index import deferred


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
    with deferred():
        created = _import_records(actor, records, default_owner, default_project)
    return created


def _import_records(actor, records, default_owner, default_project) -> list[Change]:
    from apps.changes.api import ChangeSerializer

    errors: list[RecordError] = []
    created: list[Change] = []
    for index, raw in enumerate(records, 1):
        label = _label(index, raw)
        record = dict(raw)
        if default_owner and not record.get("owner"):
            record["owner"] = default_owner
        if default_project and not record.get("project"):
            record["project"] = default_project
        if not record.get("owner"):
            errors.append(RecordError(label, "owner", "Name the owner (a username)."))
            continue
        serializer = ChangeSerializer(data=record)
        if not serializer.is_valid():
            errors += _errors_of(label, serializer.errors)
            continue
        owner = serializer.validated_data.get("owner")
        if owner is not None and not owner.has_role(Role.ENGINEER):
            errors.append(
                RecordError(label, "owner", f"{owner.get_username()} is not an engineer.")
            )
            continue
        try:
            validate_tags(serializer.validated_data.get("tags", []))
        except ValidationError as exc:
            errors += [RecordError(label, "tags", m) for m in exc.messages]
            continue
        if errors:
            # The file is refused already; keep checking records, but write nothing more.
            continue
        try:
            # A savepoint per record: PostgreSQL must be able to carry on after a refusal.
            with transaction.atomic():
                created.append(change_create(actor=actor, **serializer.validated_data))
        except ValidationError as exc:
            detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
            errors += _errors_of(label, detail)
        except PermissionDenied as exc:
            errors.append(RecordError(label, "owner", str(exc)))
    if errors:
        raise ImportRefused(errors)
    return created
