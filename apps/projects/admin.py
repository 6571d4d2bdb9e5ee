from django.contrib import admin

from .models import Project
from .services import AUDITED_FIELDS, project_create, project_update


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "repository_url", "sync_status", "synced_at"]
    search_fields = ["name", "slug", "repository_url"]
    prepopulated_fields = {"slug": ["name"]}
    fields = [*AUDITED_FIELDS, "sync_status", "synced_at", "sync_error"]
    readonly_fields = ["sync_status", "synced_at", "sync_error"]

    def save_model(self, request, obj, form, change):
        values = {name: form.cleaned_data[name] for name in AUDITED_FIELDS}
        if change:
            saved = project_update(
                actor=request.user, project=Project.objects.get(pk=obj.pk), **values
            )
        else:
            saved = project_create(actor=request.user, **values)
        obj.pk = saved.pk
