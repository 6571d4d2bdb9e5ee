from django.contrib import admin

from .models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: the audit trail is written by services and never edited."""

    list_display = ["time", "actor_name", "action", "content_type", "object_label", "request_id"]
    list_filter = ["action", "content_type"]
    search_fields = ["object_label", "actor_name", "request_id"]
    date_hierarchy = "time"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
