from django import forms
from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin
from apps.core.forms import BOUNDED_JSON_FORMFIELDS, LinesField

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


class EnvironmentAdminForm(forms.ModelForm):
    config_files = LinesField(
        label="Configuration files",
        help_text="One absolute path a line, on this environment's hosts: their contents make "
        "up its configuration fingerprint, recorded with every measurement.",
    )

    class Meta:
        model = Environment
        fields = ["config_files"]  # the admin adds the rest


@admin.register(Environment)
class EnvironmentAdmin(admin.ModelAdmin):
    form = EnvironmentAdminForm
    list_display = ["name", "description", "base_url"]
    formfield_overrides = BOUNDED_JSON_FORMFIELDS

    def save_model(self, request, obj, form, change):
        environment_save(actor=request.user, environment=obj)


@admin.register(RepositoryJob)
class RepositoryJobAdmin(ReadOnlyAdmin):
    """Syncs and tag pushes as workers left them: who holds one, its last sign of life."""

    deletable = False

    list_display = ["project", "kind", "ref", "status", "worker", "heartbeat_at", "attempts"]
    list_filter = ["kind", "status"]
    search_fields = ["project__name", "ref"]
