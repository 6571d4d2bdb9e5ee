from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path

from apps.core.admin import LinesFieldsAdmin, person
from apps.core.limits import body_limit_text

from .forms import ChangeForm
from .import_formats import ImportFileError, parse_file
from .imports import ImportRefused, changes_import
from .models import DERIVED_FIELDS, Change
from .services import EDITABLE_FIELDS, change_create, change_update


class ImportForm(forms.Form):
    file = forms.FileField(help_text="A .json file (one change or a list) or a Markdown note.")
    owner = forms.CharField(required=False, help_text="Owner for records that name none.")
    project = forms.CharField(required=False, help_text="Project slug for records without.")


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
    change_list_template = "changes/admin_changelist.html"

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

    def get_urls(self):
        view = self.admin_site.admin_view(self.import_view)
        return [path("import/", view, name="changes_import"), *super().get_urls()]

    def import_view(self, request):
        from apps.accounts.roles import Role

        if not request.user.has_role(Role.ADMIN):
            raise PermissionDenied("Only admins import changes.")
        form = ImportForm(request.POST or None, request.FILES or None)
        errors, status = [], 200
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                # The body limit already bounds it; this says so when the length was unknown.
                if upload.size > settings.MAX_REQUEST_BYTES:
                    raise ImportFileError(f"The file is larger than {body_limit_text()}.")
                records = parse_file(upload.name, upload.read().decode("utf-8"))
                created = changes_import(
                    actor=request.user,
                    records=records,
                    default_owner=form.cleaned_data["owner"],
                    default_project=form.cleaned_data["project"],
                )
            except (ImportFileError, UnicodeDecodeError) as exc:
                errors, status = [f"{upload.name}: {exc}"], 400
            except ImportRefused as exc:
                errors, status = [str(e) for e in exc.errors], 400
            else:
                messages.success(request, f"Imported {len(created)} change(s).")
                return redirect("admin:changes_change_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": "Import changes",
            "form": form,
            "errors": errors,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "changes/admin_import.html", context, status=status)
