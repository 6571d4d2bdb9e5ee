from django.contrib import admin

from .models import DERIVED_FIELDS, Change
from .services import EDITABLE_FIELDS, change_create, change_update


@admin.register(Change)
class ChangeAdmin(admin.ModelAdmin):
    """Edits go through the same services as the web pages, so they are checked and audited."""

    list_display = ["number", "title", "project", "owner", "status", "updated"]
    list_filter = ["status", "project"]
    search_fields = ["title", "reason", "owner__username"]
    list_select_related = ["project", "owner"]
    raw_id_fields = ["owner"]
    readonly_fields = DERIVED_FIELDS

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
