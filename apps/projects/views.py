from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.roles import Role
from apps.core import work
from apps.core.forms import add_service_errors
from apps.core.htmx import htmx_target

from .forms import ProjectForm
from .models import Project
from .selectors import sync_waiting
from .services import project_create, project_sync_request, project_update

RECENT_CHANGES = 10


@login_required
def project_list(request):
    projects = Project.objects.annotate(change_count=Count("changes"))
    return render(request, "projects/list.html", {"projects": projects})


def _sync_context(project: Project, notes: list[str] | None = None) -> dict:
    """The sync region: its state, and whether a worker has taken a queued sync."""
    return {"project": project, "waiting": sync_waiting(project), "sync_notes": notes or []}


@login_required
def project_detail(request, slug: str):
    project = get_object_or_404(Project, slug=slug)
    if htmx_target(request) == "project-sync":
        return render(request, "projects/_sync_state.html", _sync_context(project))
    recent = project.changes.select_related("owner")[:RECENT_CHANGES]
    profiles = project.profiles.select_related("environment")
    return render(
        request,
        "projects/detail.html",
        {"recent": recent, "profiles": profiles, **_sync_context(project)},
    )


def _require_admin(request) -> None:
    if not request.user.has_role(Role.ADMIN):
        raise PermissionDenied("Only admins register and edit projects.")


@login_required
@require_http_methods(["GET", "POST"])
def project_form(request, slug: str | None = None):
    _require_admin(request)
    project = get_object_or_404(Project, slug=slug) if slug else None
    form = ProjectForm(request.POST or None, instance=project)
    if request.method == "POST" and form.is_valid():
        try:
            if project is None:
                project = project_create(actor=request.user, **form.cleaned_data)
            else:
                project = project_update(
                    actor=request.user,
                    project=Project.objects.get(pk=project.pk),
                    **form.cleaned_data,
                )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"{project} saved.")
            return redirect("projects:detail", slug=project.slug)
    return render(request, "projects/form.html", {"form": form, "project": project})


@login_required
@require_POST
def project_sync(request, slug: str):
    project = get_object_or_404(Project, slug=slug)
    level = messages.ERROR
    try:
        with work.publishing() as sent:
            project_sync_request(actor=request.user, project=project)
    except ValidationError as exc:
        text = " ".join(exc.messages)
    else:
        level = messages.SUCCESS if sent.ok else messages.WARNING
        text = (
            "Sync requested; a worker fetches the repository now."
            if sent.ok
            else f"Sync requested. {work.BROKER_DOWN}"
        )
    if request.headers.get("HX-Request") == "true":
        project.refresh_from_db()
        notes = [] if level == messages.SUCCESS else [text]
        return render(request, "projects/_sync_state.html", _sync_context(project, notes))
    messages.add_message(request, level, text)
    return redirect("projects:detail", slug=project.slug)
