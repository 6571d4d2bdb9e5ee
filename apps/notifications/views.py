from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from .selectors import preference_rows
from .services import preferences_set


@login_required
@require_http_methods(["GET", "POST"])
def preferences(request):
    """A grid: each kind of event against email and every endpoint admins registered."""
    rows = preference_rows(request.user)
    if request.method == "POST":
        choices = [
            (row.kind.value, d, f"{row.kind.value}:{d.key}" in request.POST)
            for row in rows
            for d, _on in row.cells
        ]
        preferences_set(actor=request.user, user=request.user, choices=choices)
        messages.success(request, "Notification choices saved.")
        return redirect("notifications:preferences")
    destinations = [d for d, _on in rows[0].cells] if rows else []
    return render(
        request,
        "notifications/preferences.html",
        {"rows": rows, "destinations": destinations},
    )
