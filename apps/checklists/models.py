from django.conf import settings
from django.db import models

from apps.changes.models import Change
from apps.core.models import ClaimedWork, TimeStampedModel
from apps.measurements.validators import validate_optional_argv
from apps.projects.models import Environment, Project


class ItemKind(models.TextChoices):
    MANUAL = "manual", "Ticked by a person"
    VERIFY = "verify", "Verified by a worker"
    STAGING_CONFIG = "staging_config", "Staging config comparison"
    TAG_RELEASE = "tag_release", "Tag the release"


class ItemState(models.TextChoices):
    OPEN = "open", "Open"
    DONE = "done", "Done"
    SKIPPED = "skipped", "Skipped"


class VerificationStatus(models.TextChoices):
    IDLE = "", "—"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    FAILED = "failed", "Failed"


class TemplateItem(TimeStampedModel):
    """One line of a project's release checklist, copied onto every change filed for it.

    `verify` items carry the admin-defined command a worker runs at the change's after
    revision; nobody else can supply a command.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="checklist")
    position = models.PositiveSmallIntegerField()
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=ItemKind.choices, default=ItemKind.MANUAL)
    required = models.BooleanField(default=True)
    argv = models.JSONField(
        "command", default=list, blank=True, validators=[validate_optional_argv]
    )
    timeout_seconds = models.PositiveIntegerField(default=600)
    environment = models.ForeignKey(
        Environment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["project", "position"]

    def __str__(self) -> str:
        return f"{self.project}: {self.title}"


class ChecklistItem(ClaimedWork, TimeStampedModel):
    """One item of one change's checklist: its state, who set it, and the evidence.

    `version` grows with every write, so a tick sent from a stale page is refused rather than
    silently overwriting what someone else did meanwhile. The claim fields (worker, heartbeat,
    attempts) are those of the item's verification, which workers claim like any other work.
    """

    change = models.ForeignKey(Change, on_delete=models.CASCADE, related_name="checklist")
    position = models.PositiveSmallIntegerField()
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=ItemKind.choices)
    required = models.BooleanField(default=True)
    argv = models.JSONField(default=list, blank=True)
    timeout_seconds = models.PositiveIntegerField(default=600)
    environment = models.ForeignKey(
        Environment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = models.CharField(max_length=10, choices=ItemState.choices, default=ItemState.OPEN)
    reason = models.CharField(max_length=500, blank=True, help_text="Why it was skipped.")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    ticked_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    verification = models.CharField(
        max_length=10,
        choices=VerificationStatus.choices,
        default=VerificationStatus.IDLE,
        blank=True,
    )
    # What a worker found: exit code, duration, output tail, or a warning.
    evidence = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["change", "position"]
        constraints = [
            models.UniqueConstraint(fields=["change", "position"], name="checklist_item_position"),
        ]
        indexes = [
            # Beat: verifications whose worker stopped heart-beating or that were never claimed.
            models.Index(fields=["verification", "heartbeat_at"], name="verification_stale_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.change.number}: {self.title}"

    @property
    def is_settled(self) -> bool:
        return self.state in (ItemState.DONE, ItemState.SKIPPED)
