from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.roles import Role
from apps.changes.models import Change
from apps.changes.selectors import change_or_404
from apps.changes.services import can_edit_change
from apps.core import work
from apps.core.exceptions import Conflict
from apps.core.forms import add_service_errors
from apps.core.htmx import CHANGE_CLOSED, trigger
from apps.projects.models import Project

from .forms import TemplateItemForm
from .models import ChecklistItem, TemplateItem
from .rollback import change_rollback
from .selectors import checklist_section
from .shipping import change_ship
from .templates import (
    template_for,
    template_item_add,
    template_item_move,
    template_item_remove,
    template_item_update,
)
from .ticks import checklist_item_tick
from .verification import checklist_item_verify_request


def _version(request) -> int | None:
    try:
        return int(request.POST["version"])
    except (KeyError, ValueError):
        return None


def _regions(request, change: Change, *, status: int = 200, **extra):
    """Every region of the change page a checklist action moves, as out-of-band swaps."""
    change = change_or_404(change.pk, Change.objects.select_related("project", "rollback_of"))
    context = {
        "change": change,
        "can_edit": can_edit_change(request.user, change),
        **checklist_section(request.user, change),
        **extra,
    }
    return render(request, "checklists/_regions.html", context, status=status)


@login_required
def section(request, pk: int):
    """The checklist's regions as they are now: asked for when something else on the change
    page moved (a measurement ended) and while a worker verifies an item."""
    change = change_or_404(pk)
    if request.headers.get("HX-Request") != "true":
        return redirect(f"{change.get_absolute_url()}#checklist")
    return _regions(request, change)


@login_required
@require_POST
def item_tick(request, pk: int):
    """Tick, untick or skip: the page's checklist regions answer, in place (htmx), or a
    redirect."""
    item = get_object_or_404(ChecklistItem.objects.select_related("change"), pk=pk)
    in_place = request.headers.get("HX-Request") == "true"
    sent = work.Publishing()
    try:
        if request.POST.get("action") == "verify":
            with work.publishing() as sent:
                checklist_item_verify_request(
                    actor=request.user, item=item, version=_version(request)
                )
        else:
            checklist_item_tick(
                actor=request.user,
                item=item,
                state=request.POST.get("state", ""),
                version=_version(request),
                reason=request.POST.get("reason", ""),
            )
    except (Conflict, ValidationError) as exc:
        status = 409 if isinstance(exc, Conflict) else 400
        error = str(exc) if isinstance(exc, Conflict) else " ".join(exc.messages)
        if in_place:
            return _regions(request, item.change, status=status, acted_on=item.pk, error=error)
        messages.error(request, f"{item.title}: {error}")
        return redirect(item.change)
    note = "" if sent.ok else work.BROKER_DOWN
    if in_place:
        return _regions(request, item.change, acted_on=item.pk, note=note)
    if note:
        messages.warning(request, f"{item.title}: {note}")
    return redirect(item.change)


@login_required
@require_POST
def ship(request, pk: int):
    change = change_or_404(pk)
    in_place = request.headers.get("HX-Request") == "true"
    try:
        change = change_ship(
            actor=request.user, change=change, override_reason=request.POST.get("override", "")
        )
    except ValidationError as exc:
        if in_place:
            return _regions(request, change, status=400, ship_errors=exc.messages)
        for message in exc.messages:
            messages.error(request, message)
    else:
        if in_place:
            return trigger(_regions(request, change), CHANGE_CLOSED)
        messages.success(request, f"{change.number} shipped as {change.tag_name}.")
    return redirect(change)


@login_required
@require_http_methods(["GET", "POST"])
def rollback(request, pk: int):
    """Roll back only once the person confirmed it: a page that says what will be filed, and a
    form whose box must be ticked (no script needed)."""
    change = change_or_404(pk)
    if not can_edit_change(request.user, change):
        raise PermissionDenied("Only the change's owner, a reviewer or an admin may roll it back.")
    error = ""
    if request.method == "POST":
        if request.POST.get("confirm") != "yes":
            error = "Tick the box to confirm the rollback."
        else:
            try:
                reverse = change_rollback(actor=request.user, change=change)
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
                return redirect(change)
            messages.success(request, f"{reverse.number} filed to roll back {change.number}.")
            return redirect(reverse)
    return render(
        request,
        "checklists/rollback_confirm.html",
        {"change": change, "error": error},
        status=400 if error else 200,
    )


@login_required
def notes(request, pk: int):
    change = change_or_404(pk)
    if not change.final_notes:
        raise PermissionDenied("Final notes are written when the change ships.")
    response = HttpResponse(change.final_notes, content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{change.number}.md"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def template_edit(request, slug: str):
    project = get_object_or_404(Project, slug=slug)
    if not request.user.has_role(Role.ADMIN):
        raise PermissionDenied("Only admins edit checklist templates.")
    form = TemplateItemForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            template_item_add(actor=request.user, project=project, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Item added.")
            return redirect("checklists:template", slug=slug)
    items = sorted(template_for(project), key=lambda i: i.position)
    return render(
        request, "checklists/template.html", {"project": project, "items": items, "form": form}
    )


@login_required
@require_POST
def template_item_action(request, pk: int):
    item = get_object_or_404(TemplateItem.objects.select_related("project"), pk=pk)
    action = request.POST.get("action")
    try:
        if action in ("up", "down"):
            template_item_move(actor=request.user, item=item, offset=-1 if action == "up" else 1)
        elif action == "remove":
            template_item_remove(actor=request.user, item=item)
        elif action == "required":
            template_item_update(actor=request.user, item=item, required=not item.required)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("checklists:template", slug=item.project.slug)
