import copy
import shlex

from django import forms
from django.contrib import admin
from django.utils.text import capfirst

from .forms import LinesField
from .models import AuditEntry

# The admin is part of the product: its name, not Django's (templates/admin/base_site.html adds
# the favicon, the stylesheet and the way back to the app).
admin.site.site_header = "fixledger administration"
admin.site.site_title = "fixledger admin"
admin.site.index_title = "Projects, profiles, people and records"
admin.site.site_url = "/changes/"


def person(user) -> str:
    """A user as people know them: "Ada Lovelace (ada)", or the username alone."""
    if user is None:
        return "—"
    name = user.get_full_name().strip()
    return f"{name} ({user.get_username()})" if name else user.get_username()


def command_line(argv) -> str:
    """An argv as one would type it (quoted where needed), or "—" without one."""
    return shlex.join(map(str, argv)) if argv else "—"


class LinesFieldsAdmin(admin.ModelAdmin):
    """An admin whose list fields named in `lines_fields` are edited one item a line (or as the
    field given says), never as JSON. Each maps to LinesField options, or to a form field to
    copy (the web form's own, so both edit the list alike). Model validators still run."""

    lines_fields: dict[str, dict | forms.Field] = {}

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        spec = self.lines_fields.get(db_field.name)
        if spec is None:
            return super().formfield_for_dbfield(db_field, request, **kwargs)
        if isinstance(spec, forms.Field):
            return copy.deepcopy(spec)
        options = {"label": capfirst(db_field.verbose_name), "help_text": db_field.help_text}
        return LinesField(**{**options, **spec})


class ReadOnlyAdmin(admin.ModelAdmin):
    """Shown in the admin, written only by services (which check roles and audit): no adding
    or editing here, and no deleting unless `deletable`."""

    deletable = True

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return self.deletable and super().has_delete_permission(request, obj)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """The audit trail is written by services and never edited."""

    deletable = False

    list_display = ["time", "actor_name", "action", "content_type", "object_label", "request_id"]
    list_filter = ["action", "content_type"]
    search_fields = ["object_label", "actor_name", "request_id"]
    date_hierarchy = "time"
