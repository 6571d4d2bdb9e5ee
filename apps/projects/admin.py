from django.contrib import admin
from django.db import models

from apps.core.admin import LinesFieldsAdmin, ReadOnlyAdmin
from apps.core.forms import BOUNDED_JSON_FORMFIELDS

from .models import Environment, Project, RepositoryJob
from .services import AUDITED_FIELDS, environment_save, project_create, project_update


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


@admin.register(Environment)
class EnvironmentAdmin(LinesFieldsAdmin):
    lines_fields = {
        "config_files": {
            "help_text": "One absolute path a line, on this environment's hosts: their contents "
            "make up its configuration fingerprint, recorded with every measurement."
        }
    }
    list_display = ["name", "description", "base_url"]
    formfield_overrides = BOUNDED_JSON_FORMFIELDS

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, models.URLField):
            # Django 6's default already; saying so keeps Django 5 from warning on every form.
            kwargs.setdefault("assume_scheme", "https")
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        environment_save(actor=request.user, environment=obj)


@admin.register(RepositoryJob)
class RepositoryJobAdmin(ReadOnlyAdmin):
    """Syncs and tag pushes as workers left them: who holds one, its last sign of life."""

    deletable = False

    list_display = ["project", "kind", "ref", "status", "worker", "heartbeat_at", "attempts"]
    list_filter = ["kind", "status"]
    search_fields = ["project__name", "ref"]
