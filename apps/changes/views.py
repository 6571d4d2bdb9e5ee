from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from apps.accounts.roles import Role
from apps.core.forms import add_service_errors
from apps.core.htmx import htmx_target
from apps.projects.selectors import sync_waiting

from . import sections, selectors
from .forms import ChangeForm
from .models import Change
from .revisions import files_against_diff, waits_for_sync
from .services import can_edit_change, change_create, change_update


@login_required
def change_list(request):
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("before", None)
    if query.get("q", "").strip():
        # Words are searched in the search index, which takes the same filters: an address
        # with words (typed, or kept from before the list stopped matching words) goes there.
        return redirect(f"{reverse('search:page')}?{query.urlencode()}")
    changes = selectors.ChangeFilter(request.GET or None, queryset=Change.objects.all())
    number = selectors.page_number(request.GET.get("page"))
    before = selectors.page_boundary(request.GET.get("before"))
    page = selectors.change_page(changes.qs, number, before=before)
    context = {"filter": changes, "page": page, "query": query.urlencode()}
    if htmx_target(request) == "change-results":
        return render(request, "changes/_results.html", context)
    # Read here in one query each: a loop over a model field's choices would count them first.
    context["choices"] = {
        name: [choice for choice in changes.form[name].field.choices] for name in changes.filters
    }
    return render(request, "changes/list.html", context)


@login_required
def change_detail(request, pk: int):
    change = selectors.change_or_404(pk)
    tab = "history" if request.GET.get("tab") == "history" else "overview"
    context = {
        "change": change,
        "tab": tab,
        "can_edit": can_edit_change(request.user, change),
        "history": selectors.change_history(change) if tab == "history" else None,
        "files_check": files_against_diff(change),
        "waits_for_sync": waits_for_sync(change),
    }
    # Whether a worker has taken the sync the change waits for (the project page says it too).
    context["sync_waiting"] = sync_waiting(change.project) if context["waits_for_sync"] else None
    if tab == "overview":
        context.update(sections.overview_context(request.user, change))
    return render(request, "changes/detail.html", context)


def _save_form(request, form: ChangeForm, change: Change | None):
    """Call the service with the form's values; service errors land on the form."""
    data = dict(form.cleaned_data)
    if not data.get("owner"):
        data.pop("owner", None)
    try:
        if change is None:
            return change_create(actor=request.user, **data)
        return change_update(actor=request.user, change=change, **data)
    except ValidationError as exc:
        add_service_errors(form, exc)
    return None


@login_required
@require_http_methods(["GET", "POST"])
def change_create_view(request):
    if not request.user.has_role(Role.ENGINEER):
        raise PermissionDenied("Only engineers, reviewers and admins file changes.")
    form = ChangeForm(request.POST or None, actor=request.user)
    if request.method == "POST" and form.is_valid():
        change = _save_form(request, form, None)
        if change is not None:
            messages.success(request, f"{change.number} filed.")
            return redirect(change)
    return render(request, "changes/form.html", {"form": form, "change": None})


@login_required
@require_http_methods(["GET", "POST"])
def change_edit_view(request, pk: int):
    change = selectors.change_or_404(pk)
    if not can_edit_change(request.user, change):
        raise PermissionDenied("Only the change's owner, a reviewer or an admin may edit it.")
    form = ChangeForm(request.POST or None, instance=change, actor=request.user)
    if request.method == "POST" and form.is_valid():
        # The form validated against the instance; the service re-reads and locks the row.
        change = _save_form(request, form, Change.objects.get(pk=change.pk))
        if change is not None:
            messages.success(request, f"{change.number} saved.")
            return redirect(change)
    return render(request, "changes/form.html", {"form": form, "change": change})
