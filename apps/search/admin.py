from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path

from apps.changes.models import ChangeStatus
from apps.core.admin import ReadOnlyAdmin, person
from apps.core.limits import body_limit_text

from .imports import ImportFileError, parse_file
from .models import SearchEntry
from .services import ImportRefused, changes_import


class ImportForm(forms.Form):
    file = forms.FileField(help_text="A .json file (one change or a list) or a Markdown note.")
    owner = forms.CharField(required=False, help_text="Owner for records that name none.")
    project = forms.CharField(required=False, help_text="Project slug for records without.")


@admin.register(SearchEntry)
class SearchEntryAdmin(ReadOnlyAdmin):
    """The index is derived data: read-only here; the page's purpose is the import view."""

    deletable = False
    list_display = ["change", "project", "owner_name", "status_label", "created", "best_gain"]
    list_select_related = ["change", "project", "owner"]

    @admin.display(description="owner", ordering="owner__username")
    def owner_name(self, obj):
        return person(obj.owner)

    @admin.display(description="status", ordering="status")
    def status_label(self, obj):
        return ChangeStatus(obj.status).label if obj.status in ChangeStatus else obj.status

    change_list_template = "search/admin_changelist.html"

    def get_urls(self):
        view = self.admin_site.admin_view(self.import_view)
        return [path("import/", view, name="search_import"), *super().get_urls()]

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
        return TemplateResponse(request, "search/admin_import.html", context, status=status)
