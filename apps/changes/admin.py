from django.contrib import admin

from apps.core.admin import LinesFieldsAdmin, person

from .forms import ChangeForm
from .models import DERIVED_FIELDS, Change
from .services import EDITABLE_FIELDS, change_create, change_update


@admin.register(Change)
class ChangeAdmin(LinesFieldsAdmin):
    """Edits go through the same services as the web pages, so they are checked and audited."""

    # Files touched and tags as the change page edits them: a path a line, tags by commas.
    lines_fields = {name: ChangeForm.base_fields[name] for name in ("files_touched", "tags")}
    list_display = ["number", "title", "project", "owner_name", "status", "updated"]
    list_filter = ["status", "project"]
    search_fields = ["title", "reason", "owner__username", "owner__first_name", "owner__last_name"]
    list_select_related = ["project", "owner"]
    readonly_fields = DERIVED_FIELDS

    @admin.display(description="owner", ordering="owner__username")
    def owner_name(self, obj):
        return person(obj.owner)

    def save_model(self, request, obj, form, change):
        values = {
            name: form.cleaned_data[name] for name in EDITABLE_FIELDS if name in form.cleaned_data
        }
        if "owner" in form.cleaned_data:
            values["owner"] = form.cleaned_data["owner"]
        if change:
            saved = change_update(
                actor=request.user, change=Change.objects.get(pk=obj.pk), **values
            )
        else:
            saved = change_create(actor=request.user, **values)
        obj.pk = saved.pk

    def has_delete_permission(self, request, obj=None):
        # A change is history: it is rolled back, never deleted.
        return False
