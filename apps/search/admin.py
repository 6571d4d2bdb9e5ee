from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from apps.changes.models import ChangeStatus
from apps.core.admin import ReadOnlyAdmin, person

from .models import SearchEntry


@admin.register(SearchEntry)
class SearchEntryAdmin(ReadOnlyAdmin):
    """The index is derived data: read-only here."""

    deletable = False
    list_display = ["change", "project", "owner_name", "status_label", "created", "best_gain"]
    list_select_related = ["change", "project", "owner"]

    @admin.display(description="owner", ordering="owner__username")
    def owner_name(self, obj):
        return person(obj.owner)

    @admin.display(description="status", ordering="status")
    def status_label(self, obj):
        return ChangeStatus(obj.status).label if obj.status in ChangeStatus else obj.status

    def get_urls(self):
        # Importing changes moved next to them; the old address still leads there.
        moved = RedirectView.as_view(pattern_name="admin:changes_import")
        return [path("import/", self.admin_site.admin_view(moved)), *super().get_urls()]
