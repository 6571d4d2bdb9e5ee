from django.contrib import admin

from apps.core.admin import LinesFieldsAdmin, ReadOnlyAdmin
from apps.core.forms import BOUNDED_JSON_FORMFIELDS

from .models import Measurement, Profile, Run
from .profiles import profile_save


@admin.register(Profile)
class ProfileAdmin(LinesFieldsAdmin):
    """Profiles are the only commands workers run; saving goes through the audited service."""

    # A command as its arguments, one a line (no shell, no quoting); repeats are kept.
    lines_fields = {
        "argv": {
            "unique": False,
            "help_text": "One argument a line, run without a shell in the checked-out "
            "revision: python, then bench.py. An HTTP profile serving the revision takes its "
            "port as {port}.",
        },
        "setup_argv": {
            "unique": False,
            "help_text": "One argument a line; run once per revision before measuring, not "
            "measured (e.g. building).",
        },
    }

    list_display = [
        "name",
        "kind",
        "project",
        "environment",
        "runs_per_side",
        "max_runs_per_side",
        "calibrated_at",
    ]
    list_filter = ["kind", "project", "environment"]
    readonly_fields = ["resolution", "calibrated_at", "created", "updated"]
    formfield_overrides = BOUNDED_JSON_FORMFIELDS

    def save_model(self, request, obj, form, change):
        profile_save(actor=request.user, profile=obj)


class RunInline(admin.TabularInline):
    model = Run
    fields = ["sequence", "side", "warmup", "status", "peak_rss_bytes", "wall_seconds", "failure"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Measurement)
class MeasurementAdmin(ReadOnlyAdmin):
    """Read-only: measurements are written by workers."""

    list_display = ["pk", "change", "profile", "kind", "status", "runs_done", "runs_planned"]
    list_filter = ["status", "kind"]
    inlines = [RunInline]
