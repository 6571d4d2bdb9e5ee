from django.contrib import admin

from .models import ChecklistItem, TemplateItem


@admin.register(TemplateItem)
class TemplateItemAdmin(admin.ModelAdmin):
    """Read-only here: templates are edited on the project's checklist page, through services."""

    list_display = ["project", "position", "title", "kind", "required"]
    list_filter = ["project", "kind"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ChecklistItem)
class ChecklistItemAdmin(admin.ModelAdmin):
    """Read-only: items are ticked on the change page, where each tick is checked and audited."""

    list_display = ["change", "position", "title", "state", "actor_name", "ticked_at"]
    list_filter = ["state", "kind"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
