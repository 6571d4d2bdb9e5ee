from django.db import models
from django.urls import reverse

from apps.core.models import ClaimedWork, TimeStampedModel

from .git import validate_repository_url


class SyncStatus(models.TextChoices):
    NEVER = "never", "Never synced"
    SYNCING = "syncing", "Syncing"
    OK = "ok", "In sync"
    FAILED = "failed", "Sync failed"


class Project(TimeStampedModel):
    """A Python service whose fixes are tracked, and the git repository it lives in.

    Workers keep a bare clone of the repository in their data folder; the sync fields say how
    the last fetch went, so the project page can tell people why revisions cannot be resolved.
    """

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=50, unique=True)
    repository_url = models.CharField(
        "repository",
        max_length=2048,
        blank=True,
        help_text="https:// or ssh:// URL, user@host:path, or an absolute local path.",
        validators=[validate_repository_url],
    )
    tag_pattern = models.CharField(
        max_length=100,
        default="fixledger/{number}",
        help_text="Name of the release tag; {number} is the change's number, e.g. FIX-12.",
    )
    sync_status = models.CharField(
        max_length=10, choices=SyncStatus.choices, default=SyncStatus.NEVER
    )
    sync_error = models.TextField(blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("projects:detail", kwargs={"slug": self.slug})


class Environment(TimeStampedModel):
    """A place where measurements run, e.g. `staging`: served by its own worker queue.

    Only workers started on that environment's hosts consume `measure.<name>`, so a
    measurement always runs where the service runs.
    """

    name = models.SlugField(max_length=50, unique=True)
    description = models.CharField(max_length=200, blank=True)
    base_url = models.URLField(
        "base URL",
        blank=True,
        help_text="The running staging service, if HTTP probes may target it.",
    )
    config_files = models.JSONField(
        default=list,
        blank=True,
        help_text="Absolute paths on this environment's hosts whose contents make up its "
        "configuration fingerprint, recorded with every measurement.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def queue(self) -> str:
        return f"measure.{self.name}"


class JobKind(models.TextChoices):
    SYNC = "sync", "Sync the repository"
    PUSH_TAG = "push_tag", "Push a release tag"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


JOB_ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


class RepositoryJob(ClaimedWork, TimeStampedModel):
    """Work on a project's repository that a worker does: a sync, or pushing a release tag.

    One row per project, kind and ref (the tag; empty for a sync), requested again in place:
    a request while one is queued or running joins it. Like every kind of work it is claimed,
    heart-beats while it runs, and is published again by beat when its worker dies.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=10, choices=JobKind.choices)
    ref = models.CharField(max_length=255, blank=True)
    # A sync that drops the clone first: the repository's URL changed.
    fresh = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "kind", "ref"], name="job_unique_ref"),
        ]
        indexes = [
            # Beat: active jobs whose worker stopped heart-beating or that were never claimed.
            models.Index(fields=["status", "heartbeat_at"], name="job_stale_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display().lower()} {self.ref} of {self.project}".replace("  ", " ")
