import math

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.changes.models import Change
from apps.core.models import ClaimedWork, TimeStampedModel
from apps.projects.models import Environment, Project

from .validators import (
    validate_env,
    validate_http_plan,
    validate_metric_policy,
    validate_optional_argv,
    validate_reset,
)


class ProfileKind(models.TextChoices):
    COMMAND = "command", "Command in the revision"
    HTTP = "http", "HTTP service"


class HttpTarget(models.TextChoices):
    SERVE = "serve", "Serve the revision from its worktree"
    STAGING = "staging", "Probe the environment's base URL (live staging)"


class Profile(TimeStampedModel):
    """An admin-defined measurement recipe: the only commands a worker will ever run."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="profiles")
    name = models.CharField(max_length=100)
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="profiles")
    kind = models.CharField(max_length=10, choices=ProfileKind.choices, default=ProfileKind.COMMAND)
    argv = models.JSONField(
        "command",
        default=list,
        blank=True,
        validators=[validate_optional_argv],
        help_text='Run in the checked-out revision, without a shell: ["python", "bench.py"]. '
        'An HTTP profile serving the revision takes its port: ["python", "app.py", "{port}"].',
    )
    setup_argv = models.JSONField(
        "setup command",
        default=list,
        blank=True,
        validators=[validate_optional_argv],
        help_text="Run once per revision before measuring, not measured (e.g. building).",
    )
    env = models.JSONField(
        "environment variables", default=dict, blank=True, validators=[validate_env]
    )
    runs_per_side = models.PositiveSmallIntegerField(
        default=10, validators=[MinValueValidator(5), MaxValueValidator(100)]
    )
    warmups = models.PositiveSmallIntegerField(
        default=1, validators=[MaxValueValidator(10)], help_text="Runs per side, discarded."
    )
    timeout_seconds = models.PositiveIntegerField(
        default=300, validators=[MinValueValidator(1), MaxValueValidator(6 * 3600)]
    )
    memory_limit_mb = models.PositiveIntegerField(
        null=True, blank=True, help_text="Kill a run whose process tree grows past this."
    )
    stop_on_failure = models.BooleanField(
        default=False,
        help_text="End the measurement at the first failed run instead of going on.",
    )
    attribution = models.BooleanField(
        "allocation attribution",
        default=False,
        help_text="Python commands: a separate tracemalloc pass shows which lines changed.",
    )
    metric_policy = models.JSONField(
        "metric policy",
        default=dict,
        blank=True,
        validators=[validate_metric_policy],
        help_text='Per metric key or label: {"direction": "lower"|"higher", "role": '
        '"critical"|"gating"|"informational", "smallest_effect_pct": 2}. Unnamed metrics keep '
        "their defaults: peak RSS, wall time and CPU time gate; the rest inform.",
    )
    max_runs_per_side = models.PositiveSmallIntegerField(
        "maximum runs per side",
        default=40,
        validators=[MinValueValidator(5), MaxValueValidator(200)],
        help_text="Adaptive runs: while a gating metric is undecided, blocks of runs are added "
        "up to this many a side. Equal to the runs per side turns them off.",
    )
    extension_runs = models.PositiveSmallIntegerField(
        "runs per side added at a time",
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
    )
    http_target = models.CharField(
        "HTTP target",
        max_length=10,
        choices=HttpTarget.choices,
        default=HttpTarget.SERVE,
        help_text="HTTP profiles: serve each revision on a loopback port, or probe the "
        "environment's registered base URL.",
    )
    ready_path = models.CharField(
        "readiness path",
        max_length=200,
        default="/",
        help_text="HTTP profiles serving the revision: answered below 500 once it is ready.",
    )
    startup_timeout_seconds = models.PositiveIntegerField(
        "start-up timeout",
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(600)],
    )
    http_plan = models.JSONField(
        "request plan",
        default=dict,
        blank=True,
        validators=[validate_http_plan],
        help_text='HTTP profiles: {"entries": [{"method": "GET", "path": "/", "weight": 1}], '
        '"requests": 2000, "warmup": 200, "rate": 100} (requests per block) plus where the '
        'service reports itself: "cache_headers", "db_header" or "server_timing_db", "memory" '
        '({"source": "process"} or {"source": "endpoint", "path": ..., "field": ...}).',
    )
    reset = models.JSONField(
        "reset step",
        default=dict,
        blank=True,
        validators=[validate_reset],
        help_text='HTTP profiles: run before every block on both sides, e.g. {"method": "POST", '
        '"path": "/cache/clear"} or, serving the revision, {"argv": ["python", "clear.py"]}.',
    )
    # Filled by calibration (an A/A measurement): the smallest change per metric it detects.
    resolution = models.JSONField(default=dict, blank=True)
    calibrated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="profile_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.project} · {self.name}"

    def clean(self) -> None:
        from . import stats

        super().clean()
        self._clean_kind()
        if self.max_runs_per_side is not None and self.runs_per_side is not None:
            if self.max_runs_per_side < self.runs_per_side:
                raise ValidationError(
                    {"max_runs_per_side": "At least the runs per side (equal: no adaptive runs)."}
                )
            looks = stats.look_sizes(
                planned=self.runs_per_side,
                block=self.extension_runs or 1,
                maximum=self.max_runs_per_side,
            )
            if looks[-1] < self.max_runs_per_side:
                raise ValidationError(
                    {
                        "extension_runs": f"At most {stats.MAX_LOOKS - 1} extensions: add more "
                        "runs at a time or lower the maximum."
                    }
                )

    def _clean_kind(self) -> None:
        from .http.plan import PlanError, parse_plan, validate_path
        from .http.serve import PORT_PLACEHOLDER, expected_seconds

        if self.kind != ProfileKind.HTTP:
            if not self.argv:
                raise ValidationError({"argv": "The command needs at least the program to run."})
            return
        if not self.http_plan:
            raise ValidationError({"http_plan": "An HTTP profile needs its request plan."})
        try:
            validate_path(self.ready_path)
        except PlanError as exc:
            raise ValidationError({"ready_path": str(exc)}) from None
        if self.http_target == HttpTarget.SERVE:
            if not any(PORT_PLACEHOLDER in arg for arg in self.argv or []):
                raise ValidationError(
                    {"argv": "The serve command must take its port: write {port} in its argv."}
                )
            # The timeout bounds the served process: it must outlast start-up and the plan.
            try:
                plan = parse_plan(self.http_plan)
            except PlanError:
                return  # the plan's own validator says what is wrong with it
            needed = math.ceil(expected_seconds(plan) + (self.startup_timeout_seconds or 0))
            if self.timeout_seconds is not None and self.timeout_seconds < needed:
                raise ValidationError(
                    {
                        "timeout_seconds": f"A served block may take {needed} s (start-up and "
                        f"the plan): allow at least that."
                    }
                )
        else:
            if self.environment_id and not self.environment.base_url:
                raise ValidationError(
                    {
                        "http_target": "The environment has no base URL to probe: an admin "
                        "registers it on the environment first."
                    }
                )
            if "argv" in (self.reset or {}):
                raise ValidationError(
                    {"reset": "A live staging service has no worktree: reset with a request."}
                )


class MeasurementKind(models.TextChoices):
    COMPARE = "compare", "Before/after"
    CALIBRATE = "calibrate", "Calibration (A/A)"
    STAGING = "staging", "Live staging (before/after snapshots)"


class MeasurementStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    # Live staging: the before snapshot is taken; the after one waits for the fix's deploy.
    WAITING = "waiting", "Waiting for the after snapshot"


ACTIVE_STATUSES = (MeasurementStatus.QUEUED, MeasurementStatus.RUNNING)
# What judges a change: its before/after measurements (a calibration measures no change).
COMPARED_KINDS = (MeasurementKind.COMPARE, MeasurementKind.STAGING)


class Measurement(ClaimedWork, TimeStampedModel):
    """One before/after comparison under one profile, made of interleaved runs.

    The row is the source of truth for the work: a worker claims it with a conditional update
    and keeps `heartbeat_at` fresh; beat hands it to another worker when the heartbeat stops.
    """

    change = models.ForeignKey(
        Change, null=True, blank=True, on_delete=models.CASCADE, related_name="measurements"
    )
    profile = models.ForeignKey(Profile, on_delete=models.PROTECT, related_name="measurements")
    kind = models.CharField(
        max_length=10, choices=MeasurementKind.choices, default=MeasurementKind.COMPARE
    )
    status = models.CharField(
        max_length=10, choices=MeasurementStatus.choices, default=MeasurementStatus.QUEUED
    )
    phase = models.CharField(max_length=100, default="waiting for a worker")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    base_sha = models.CharField(max_length=64)
    head_sha = models.CharField(max_length=64)
    runs_planned = models.PositiveIntegerField(default=0)
    runs_done = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    # One stats.Comparison.as_dict() per metric, in display order.
    results = models.JSONField(default=list, blank=True)
    expectation = models.CharField(max_length=20, blank=True)
    # The adaptive design this measurement follows, fixed when it is requested so that editing
    # the profile cannot change the alpha spent at looks already taken: planned, block, maximum
    # runs per side.
    design = models.JSONField(default=dict, blank=True)
    # Why runs were added, one sentence per extension ("wall time undecided at 10 runs: ...").
    extensions = models.JSONField(default=list, blank=True)
    attribution = models.JSONField(default=list, blank=True)
    # HTTP profiles: analysis.HttpReport's per-side summaries and warnings (the comparisons are
    # in `results`, in the shape command comparisons have).
    http_report = models.JSONField(default=dict, blank=True)
    # The environment's configuration fingerprint when the runs began and when they ended.
    config_at_start = models.CharField(max_length=64, blank=True)
    config_at_end = models.CharField(max_length=64, blank=True)
    # When the raw samples of its runs (RSS timelines, output tails) were deleted for age; the
    # results, verdicts and each run's figures stay.
    pruned_at = models.DateTimeField(null=True, blank=True)
    # The last lines its workers logged while running it (apps.measurements.logs), oldest first.
    log_lines = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # Beat: active measurements whose worker stopped heart-beating.
            models.Index(fields=["status", "heartbeat_at"], name="measurement_stale_idx"),
            # The change page: its measurements, newest first.
            models.Index(fields=["change", "-id"], name="measurement_change_idx"),
        ]

    def __str__(self) -> str:
        return f"measurement {self.pk} of {self.change or self.profile}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def percent_done(self) -> int:
        return round(100 * self.runs_done / self.runs_planned) if self.runs_planned else 0


class Side(models.TextChoices):
    BEFORE = "before", "Before"
    AFTER = "after", "After"


class RunStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class Run(models.Model):
    """One execution of the profile's command on one revision, with what it measured."""

    measurement = models.ForeignKey(Measurement, on_delete=models.CASCADE, related_name="runs")
    sequence = models.PositiveIntegerField(help_text="Position in the interleaved plan.")
    side = models.CharField(max_length=6, choices=Side.choices)
    warmup = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.PENDING)
    attempt = models.PositiveSmallIntegerField(default=0)
    # The worker (Celery's node name, `queue@host`) that ran it: a measurement resumed after its
    # worker died has runs from each worker that held it.
    worker = models.CharField(max_length=200, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    failure = models.CharField(max_length=300, blank=True)
    wall_seconds = models.FloatField(null=True, blank=True)
    user_seconds = models.FloatField(null=True, blank=True)
    system_seconds = models.FloatField(null=True, blank=True)
    peak_rss_bytes = models.BigIntegerField(null=True, blank=True)
    rss_at_floor = models.BooleanField(default=False)
    # False until a sandboxed result is stored: runs recorded before the sandbox, or on a worker
    # whose admin allowed unsandboxed runs, ran with the worker's own rights.
    sandboxed = models.BooleanField(default=False)
    rss_timeline = models.JSONField(default=list, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    # HTTP profiles: the generator's JSON for this block (HDR histograms, memory samples), so
    # blocks can be merged and judged again; and what the reset step before it did.
    probe = models.JSONField(default=dict, blank=True)
    output_tail = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["measurement", "sequence"]
        constraints = [
            # A redelivered task finds the run already there: results are never duplicated.
            models.UniqueConstraint(fields=["measurement", "sequence"], name="run_unique_seq"),
        ]
        indexes = [
            # The executor: the next pending run of a measurement.
            models.Index(fields=["measurement", "status", "sequence"], name="run_next_idx"),
        ]

    def __str__(self) -> str:
        return f"run {self.sequence} ({self.side}) of measurement {self.measurement_id}"
