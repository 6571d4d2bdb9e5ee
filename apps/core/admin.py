from django.contrib import admin

from .models import AuditEntry


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
