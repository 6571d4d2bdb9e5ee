from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from apps.core.admin import ReadOnlyAdmin

from .models import SearchEntry


@admin.register(SearchEntry)
class SearchEntryAdmin(ReadOnlyAdmin):
    """The index is derived data: read-only here."""

    deletable = False
    list_display = ["change", "project", "owner", "status", "created", "best_gain"]

    def get_urls(self):
        # Importing changes moved next to them; the old address still leads there.
        moved = RedirectView.as_view(pattern_name="admin:changes_import")
        return [path("import/", self.admin_site.admin_view(moved)), *super().get_urls()]
