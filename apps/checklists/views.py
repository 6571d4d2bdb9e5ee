from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.roles import Role
from apps.changes.selectors import change_or_404
from apps.core import work
from apps.core.exceptions import Conflict
from apps.core.forms import add_service_errors
from apps.projects.models import Project

from .forms import TemplateItemForm
from .items import can_tick
from .models import ChecklistItem, TemplateItem
from .rollback import change_rollback
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


def _render_item(
    request, item: ChecklistItem, *, error: str = "", note: str = "", status: int = 200
):
    item.refresh_from_db()
    context = {
        "note": note,
        "item": item,
        "change": item.change,
        "error": error,
        "can_tick_item": can_tick(request.user, item.change, item),
    }
    return render(request, "checklists/_item.html", context, status=status)


@login_required
@require_POST
def item_tick(request, pk: int):
    """Tick, untick or skip: the item's own box answers, in place (htmx) or by redirect."""
    item = get_object_or_404(ChecklistItem.objects.select_related("change"), pk=pk)
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
    except Conflict as exc:
        return _render_item(request, item, error=str(exc), status=409)
    except ValidationError as exc:
        return _render_item(request, item, error=" ".join(exc.messages), status=400)
    note = "" if sent.ok else work.BROKER_DOWN
    if request.headers.get("HX-Request"):
        return _render_item(request, item, note=note)
    if note:
        messages.warning(request, f"{item.title}: {note}")
    return redirect(item.change)


@login_required
@require_POST
def ship(request, pk: int):
    change = change_or_404(pk)
    try:
        change = change_ship(
            actor=request.user, change=change, override_reason=request.POST.get("override", "")
        )
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    else:
        messages.success(request, f"{change.number} shipped as {change.tag_name}.")
    return redirect(change)


@login_required
@require_POST
def rollback(request, pk: int):
    change = change_or_404(pk)
    try:
        reverse = change_rollback(actor=request.user, change=change)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(change)
    messages.success(request, f"{reverse.number} filed to roll back {change.number}.")
    return redirect(reverse)


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
