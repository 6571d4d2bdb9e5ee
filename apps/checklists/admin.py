from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin, command_line

from .models import ChecklistItem, TemplateItem


@admin.register(TemplateItem)
class TemplateItemAdmin(ReadOnlyAdmin):
    """Read-only here: templates are edited on the project's checklist page, through services."""

    list_display = ["project", "position", "title", "kind", "required"]
    list_filter = ["project", "kind"]
    readonly_fields = ["command"]
    exclude = ["argv"]

    @admin.display(description="command")
    def command(self, obj):
        return command_line(obj.argv)


@admin.register(ChecklistItem)
class ChecklistItemAdmin(ReadOnlyAdmin):
    """Read-only: items are ticked on the change page, where each tick is checked and audited.

    Never deleted here either: a required item that vanished would let its change ship.
    """

    deletable = False

    list_display = ["change", "position", "title", "state", "actor_name", "ticked_at"]
    list_filter = ["state", "kind"]
    readonly_fields = ["command"]
    exclude = ["argv"]

    @admin.display(description="command")
    def command(self, obj):
        return command_line(obj.argv)
