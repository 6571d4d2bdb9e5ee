import re

from django.conf import settings
from django.core.validators import MaxLengthValidator
from django.db import models
from django.urls import reverse

from apps.core.models import TimeStampedModel
from apps.core.units import signed_pct
from apps.projects.models import Project
from apps.projects.revisions import MAX_REVISION_LENGTH, validate_revision

from .validators import MAX_TEXT_LENGTH, validate_files_touched, validate_tags

NUMBER_PREFIX = "FIX-"
_NUMBER = re.compile(rf"^(?:{NUMBER_PREFIX})?([1-9][0-9]{{0,17}})$", re.IGNORECASE)


# Filled by the change's lifecycle and from its repository: shown, never typed in.
DERIVED_FIELDS = (
    "status",
    "base_sha",
    "head_sha",
    "diffstat",
    "commits",
    "revision_error",
    "tag_name",
    "shipped_at",
    "final_notes",
    "rollback_of",
    "latest_verdict",
    "created",
    "updated",
)


def parse_change_number(value: str) -> int | None:
    """The primary key behind `FIX-12` (or plain `12`); None for anything else."""
    match = _NUMBER.match(value.strip())
    return int(match.group(1)) if match else None


class ChangeStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    MEASURING = "measuring", "Measuring"
    READY = "ready", "Ready"
    SHIPPED = "shipped", "Shipped"
    ROLLED_BACK = "rolled_back", "Rolled back"


def _text(verbose_name: str, *, blank: bool = False, help_text: str = "") -> models.TextField:
    return models.TextField(
        verbose_name,
        blank=blank,
        help_text=help_text,
        validators=[MaxLengthValidator(MAX_TEXT_LENGTH)],
    )


class Change(TimeStampedModel):
    """One fix to a project: why it is made, what it should achieve and how to undo it.

    Its human id (`FIX-12`) is derived from the primary key, so it is unique without a counter.
    """

    title = models.CharField(max_length=200)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="changes")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_changes"
    )
    status = models.CharField(
        max_length=20, choices=ChangeStatus.choices, default=ChangeStatus.DRAFT
    )
    reason = _text("reason", help_text="Why the change is made: the problem it fixes.")
    expected_result = _text(
        "expected result", help_text='What should improve, e.g. "peak RSS -20 %".'
    )
    command = _text(
        "command",
        blank=True,
        help_text="The command that shows the problem, for the record. fixledger never runs it.",
    )
    rollback_note = _text("rollback note", blank=True, help_text="How to undo the change.")
    files_touched = models.JSONField(default=list, blank=True, validators=[validate_files_touched])
    base_revision = models.CharField(
        "before revision",
        max_length=MAX_REVISION_LENGTH,
        blank=True,
        validators=[validate_revision],
    )
    head_revision = models.CharField(
        "after revision",
        max_length=MAX_REVISION_LENGTH,
        blank=True,
        validators=[validate_revision],
    )
    tags = models.JSONField(default=list, blank=True, validators=[validate_tags])
    # Filled from the project's repository when the revisions resolve (in the request when this
    # host has a clone, otherwise by a worker after it syncs).
    base_sha = models.CharField("before commit", max_length=64, blank=True)
    head_sha = models.CharField("after commit", max_length=64, blank=True)
    diffstat = models.JSONField(
        default=list, blank=True, help_text="Per file: path, old_path, status, added, removed."
    )
    commits = models.JSONField(default=list, blank=True, help_text="Commits between the two.")
    revision_error = models.TextField(
        blank=True, help_text="Why the revisions could not be resolved, if they could not."
    )
    # Shipping: the release tag, when, and the notes written from the record at that moment.
    tag_name = models.CharField(max_length=255, blank=True)
    shipped_at = models.DateTimeField(null=True, blank=True)
    final_notes = models.TextField(blank=True)
    rollback_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="rollbacks"
    )
    # What the change list shows of the latest finished measurement, kept here so a page of
    # changes needs no look at measurements: {"verdict", "metric", "label", "change_pct",
    # "measurement"}; empty while nothing was measured. Written by the measurements side when
    # a measurement finishes (this app knows nothing of measurements).
    latest_verdict = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]
        # The change list (selectors.change_page) walks one of these newest first for every
        # combination of its filters: equality on the filtered columns, then the id, so a deep
        # page is an index-only walk and never a sort.
        indexes = [
            # Without a filter: PostgreSQL walks its primary key, but SQLite's primary key is
            # the table itself, whose wide rows made page 2,000 read 100,000 of them.
            models.Index(fields=["-id"], name="change_newest_idx"),
            models.Index(fields=["project", "-id"], name="change_project_idx"),
            models.Index(fields=["owner", "-id"], name="change_owner_idx"),
            models.Index(fields=["status", "-id"], name="change_status_idx"),
            models.Index(fields=["project", "owner", "-id"], name="change_project_owner_idx"),
            models.Index(fields=["project", "status", "-id"], name="change_project_status_idx"),
            models.Index(fields=["owner", "status", "-id"], name="change_owner_status_idx"),
            models.Index(
                fields=["project", "owner", "status", "-id"], name="change_proj_owner_status_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"

    @property
    def number(self) -> str:
        return f"{NUMBER_PREFIX}{self.pk}" if self.pk else f"{NUMBER_PREFIX}?"

    def get_absolute_url(self) -> str:
        return reverse("changes:detail", kwargs={"pk": self.pk})

    @property
    def verdict_line(self) -> dict[str, str] | None:
        """The latest verdict as a list shows it, or None while nothing was measured:
        `verdict` ("improved"), `css` ("improved", "no-detectable-change") and `gain`
        ("peak RSS \u221282.0 %", or just the label when there is no relative change)."""
        return verdict_line_of(self.latest_verdict)


def verdict_line_of(summary: dict | None) -> dict[str, str] | None:
    """A measurement's headline (`metrics.headline`) in words, as `Change.verdict_line`."""
    summary = summary or {}
    verdict = summary.get("verdict")
    if not verdict:
        return None
    gain = summary.get("label") or ""
    if gain and summary.get("change_pct") is not None:
        gain = f"{gain} {signed_pct(summary['change_pct'])}"
    return {"verdict": verdict, "css": verdict.replace(" ", "-"), "gain": gain}
