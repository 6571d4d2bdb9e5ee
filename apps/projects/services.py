from django.db import transaction

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.accounts.services import require_role
from apps.core.audit import audit_record, snapshot

from .models import Project

AUDITED_FIELDS = ["name", "slug"]


@transaction.atomic
def project_create(*, actor: User | None, name: str, slug: str) -> Project:
    """Register a project. `actor=None` is the system (demo seeding)."""
    if actor is not None:
        require_role(actor, Role.ADMIN, doing="register projects")
    project = Project(name=name, slug=slug)
    project.full_clean()
    project.save()
    audit_record(actor=actor, action="create", obj=project, after=snapshot(project, AUDITED_FIELDS))
    return project


@transaction.atomic
def project_update(*, actor: User, project: Project, **fields) -> Project:
    require_role(actor, Role.ADMIN, doing="edit projects")
    unknown = set(fields) - set(AUDITED_FIELDS)
    if unknown:
        raise TypeError(f"project_update() got fields it cannot set: {sorted(unknown)}")
    locked = Project.objects.select_for_update().get(pk=project.pk)
    before = snapshot(locked, AUDITED_FIELDS)
    for name, value in fields.items():
        setattr(locked, name, value)
    after = snapshot(locked, AUDITED_FIELDS)
    if before != after:
        locked.full_clean()
        locked.save()
        audit_record(actor=actor, action="update", obj=locked, before=before, after=after)
    return locked
