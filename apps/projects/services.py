from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.accounts.services import require_role
from apps.core.audit import audit_record, audit_update, snapshot
from apps.core.services import record_save

from .models import Environment, Project, SyncStatus

AUDITED_FIELDS = ["name", "slug", "repository_url"]


def project_sync_enqueue(project: Project, *, fresh: bool = False) -> None:
    """Have a worker sync the project's repository once the current transaction commits."""
    from .tasks import sync_project

    transaction.on_commit(lambda: sync_project.delay(project.pk, fresh=fresh))


@transaction.atomic
def project_create(
    *, actor: User | None, name: str, slug: str, repository_url: str = ""
) -> Project:
    """Register a project; a worker clones its repository. `actor=None` is the system."""
    if actor is not None:
        require_role(actor, Role.ADMIN, doing="register projects")
    project = Project(name=name, slug=slug, repository_url=repository_url)
    project.full_clean()
    project.save()
    audit_record(actor=actor, action="create", obj=project, after=snapshot(project, AUDITED_FIELDS))
    if project.repository_url:
        project_sync_enqueue(project)
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
        if before["repository_url"] != after["repository_url"]:
            # A new repository is cloned afresh; the old clone's state says nothing about it.
            locked.sync_status, locked.sync_error, locked.synced_at = SyncStatus.NEVER, "", None
        locked.save()
        audit_update(actor=actor, obj=locked, before=before, after=after)
        if locked.repository_url and before["repository_url"] != after["repository_url"]:
            project_sync_enqueue(locked, fresh=True)
    return locked


@transaction.atomic
def project_sync_request(*, actor: User, project: Project) -> None:
    """Ask a worker to fetch the project's repository now."""
    require_role(actor, Role.ADMIN, doing="sync repositories")
    if not project.repository_url:
        raise ValidationError({"repository_url": f"{project} has no repository to sync."})
    Project.objects.filter(pk=project.pk).update(sync_status=SyncStatus.SYNCING)
    audit_record(actor=actor, action="sync", obj=project)
    project_sync_enqueue(project)


def project_record_sync(*, project: Project, error: str = "") -> None:
    """Store how a worker's sync went. Status only: not an edit of the project, so not audited."""
    values = {"sync_status": SyncStatus.FAILED if error else SyncStatus.OK, "sync_error": error}
    if not error:
        values["synced_at"] = timezone.now()
    Project.objects.filter(pk=project.pk).update(**values)
    for name, value in values.items():
        setattr(project, name, value)


ENVIRONMENT_FIELDS = ["name", "description", "base_url"]


def environment_save(*, actor: User | None, environment: Environment) -> Environment:
    """Register or edit an environment. `actor=None` is the system (demo seeding)."""
    if actor is not None:
        require_role(actor, Role.ADMIN, doing="register environments")
    return record_save(actor=actor, obj=environment, fields=ENVIRONMENT_FIELDS)
