from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Case, F, Q, When
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.accounts.services import require_role
from apps.core import events, work
from apps.core.audit import audit_record, audit_update, snapshot
from apps.core.services import record_save

from .events import ProjectSynced
from .models import JOB_ACTIVE, Environment, JobKind, JobStatus, Project, RepositoryJob, SyncStatus

AUDITED_FIELDS = ["name", "slug", "repository_url"]


def project_sync_enqueue(project: Project, *, fresh: bool = False) -> None:
    """Have a worker sync the project's repository once the current transaction commits."""
    repository_job_request(project=project, kind=JobKind.SYNC, fresh=fresh)


# --- repository jobs: syncs and tag pushes, claimed and heart-beaten like all work ----------


@transaction.atomic
def repository_job_request(
    *, project: Project, kind: str, ref: str = "", fresh: bool = False
) -> RepositoryJob:
    """Queue work on the project's repository; a worker gets it once the transaction commits.

    A request while the same job is queued or running joins it.
    """
    job, created = RepositoryJob.objects.get_or_create(
        project=project,
        kind=kind,
        ref=ref,
        defaults={"fresh": fresh, "published_at": timezone.now()},
    )
    if not created:
        requeued = RepositoryJob.objects.filter(pk=job.pk).exclude(status__in=JOB_ACTIVE)
        if not requeued.update(
            status=JobStatus.QUEUED,
            fresh=fresh,
            attempts=0,
            heartbeat_at=None,
            error="",
            finished_at=None,
            published_at=timezone.now(),
            # Queued again now: what "waiting since" is read from (update() skips auto_now).
            updated=timezone.now(),
        ):
            if fresh:
                RepositoryJob.objects.filter(pk=job.pk).update(fresh=True)
            return job
    transaction.on_commit(lambda: repository_job_publish(job))
    return job


def repository_job_publish(job: RepositoryJob) -> bool:
    from .tasks import push_tag, sync_project

    if job.kind == JobKind.SYNC:
        return work.publish(sync_project, job, args=[job.project_id], kwargs={"fresh": job.fresh})
    return work.publish(push_tag, job, args=[job.project_id, job.ref])


def repository_job_claim(
    *, project: Project, kind: str, ref: str = "", worker: str
) -> RepositoryJob | None:
    """Take the job for `worker`, unless a live worker holds it; None then.

    A sync or a push done again is harmless, so a finished job is claimed afresh (a direct
    call, a late duplicate message); only a dead worker's claim counts as another attempt.
    """
    job, _created = RepositoryJob.objects.get_or_create(project=project, kind=kind, ref=ref)
    running = Q(status=JobStatus.RUNNING)
    if job.attempts >= work.MAX_ATTEMPTS and job.status == JobStatus.RUNNING:
        if job.heartbeat_at and job.heartbeat_at < work.stale_before():
            repository_job_finish(job=job, error=work.GAVE_UP)
        return None
    attempt = work.claim(
        RepositoryJob.objects,
        pk=job.pk,
        claimable=~running | Q(running, heartbeat_at__lt=work.stale_before()),
        worker=worker,
        status=JobStatus.RUNNING,
        attempts=Case(When(running, then=F("attempts") + 1), default=1),
        error="",
        finished_at=None,
    )
    if attempt is None:
        return None
    job.refresh_from_db()
    return job


def repository_job_alive(job: RepositoryJob):
    """Heart-beat from a background thread while the block runs."""
    return work.heartbeat(
        RepositoryJob.objects.filter(status=JobStatus.RUNNING), pk=job.pk, attempt=job.attempts
    )


@transaction.atomic
def repository_job_finish(*, job: RepositoryJob, error: str = "") -> None:
    """Close the job as done, or failed with `error`; only the claim that holds it may.

    A sync asked to start afresh while it ran (the repository's URL changed meanwhile) is
    queued again instead. A sync that succeeded says so (changes resolve revisions then).
    """
    held = RepositoryJob.objects.filter(pk=job.pk, status__in=JOB_ACTIVE, attempts=job.attempts)
    if not error and held.filter(fresh=True).exclude(fresh=job.fresh).exists():
        held.update(status=JobStatus.QUEUED, attempts=0, heartbeat_at=None)
        transaction.on_commit(lambda: repository_job_publish(job))
        return
    closed = held.update(
        status=JobStatus.FAILED if error else JobStatus.DONE,
        error=error[:2000],
        finished_at=timezone.now(),
    )
    if closed and job.kind == JobKind.SYNC:
        project_record_sync(project=job.project, error=error)
        if not error:
            events.publish(ProjectSynced(project_id=job.project_id))


def repository_jobs_reconcile() -> int:
    """Beat: publish again the jobs a dead worker held or whose message was lost; end those
    that used up their attempts. Returns how many were published."""
    return work.reconcile(
        work.due(RepositoryJob.objects.filter(status__in=JOB_ACTIVE)).order_by("pk"),
        spent=lambda job: job.status == JobStatus.RUNNING and job.attempts >= work.MAX_ATTEMPTS,
        give_up=lambda job: repository_job_finish(job=job, error=work.GAVE_UP),
        send=repository_job_publish,
    )


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
    """Ask a worker to fetch the project's repository now (engineers and above, audited): a
    commit pushed since the last sync is needed to file or measure a change."""
    require_role(actor, Role.ENGINEER, doing="sync repositories")
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


# config_files among them: which files fingerprint an environment decides what its measurements
# are compared against, so a change to them is audited like the rest.
ENVIRONMENT_FIELDS = ["name", "description", "base_url", "config_files"]


def environment_save(*, actor: User | None, environment: Environment) -> Environment:
    """Register or edit an environment. `actor=None` is the system (demo seeding)."""
    if actor is not None:
        require_role(actor, Role.ADMIN, doing="register environments")
    return record_save(actor=actor, obj=environment, fields=ENVIRONMENT_FIELDS)
