from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.changes.selectors import change_or_404
from apps.changes.services import can_edit_change
from apps.core import work
from apps.core.htmx import htmx_target

from .lifecycle import (
    measurement_calibrate,
    measurement_cancel,
    measurement_request,
    measurement_snapshot_after,
)
from .models import Measurement, MeasurementStatus, Profile
from .selectors import measurement_display, run_records, runs_csv


def _context(request, measurement: Measurement) -> dict:
    change = measurement.change
    can_cancel = can_edit_change(request.user, change) if change else True
    return {
        "m": measurement,
        "can_cancel": can_cancel
        and (measurement.is_active or measurement.status == MeasurementStatus.WAITING),
        **measurement_display(measurement),
    }


@login_required
def measurement_detail(request, pk: int):
    measurement = get_object_or_404(
        Measurement.objects.select_related("profile__project", "change", "requested_by"), pk=pk
    )
    context = _context(request, measurement)
    if htmx_target(request):
        return render(request, "measurements/_measurement.html", context)
    return render(request, "measurements/detail.html", context)


@login_required
@require_POST
def measurement_start(request, pk: int):
    change = change_or_404(pk)
    profile = Profile.objects.filter(pk=request.POST.get("profile") or 0).first()
    if profile is None:
        messages.error(request, "Pick a measurement profile.")
        return redirect(change)
    try:
        with work.publishing() as sent:
            measurement_request(actor=request.user, change=change, profile=profile)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        if sent.ok:
            messages.success(request, f"Measuring {change.number} with {profile.name}.")
        else:
            messages.warning(request, f"{change.number} with {profile.name}: {work.BROKER_DOWN}")
    return redirect(change)


@login_required
@require_POST
def measurement_after(request, pk: int):
    """Live staging: the fix is deployed, probe the environment again and compare."""
    measurement = get_object_or_404(Measurement.objects.select_related("change"), pk=pk)
    try:
        with work.publishing() as sent:
            measurement_snapshot_after(actor=request.user, measurement=measurement)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        if not sent.ok:
            messages.warning(request, work.BROKER_DOWN)
    return redirect(measurement.change)


@login_required
@require_POST
def measurement_cancel_view(request, pk: int):
    measurement = get_object_or_404(Measurement, pk=pk)
    measurement_cancel(actor=request.user, measurement=measurement)
    return redirect(measurement.change or measurement.profile.project)


@login_required
@require_POST
def profile_calibrate(request, pk: int):
    profile = get_object_or_404(Profile.objects.select_related("project"), pk=pk)
    try:
        measurement = measurement_calibrate(
            actor=request.user, profile=profile, revision=request.POST.get("revision", "").strip()
        )
    except ValidationError as exc:
        messages.error(request, f"Cannot calibrate: {' '.join(exc.messages)}")
        return redirect("projects:detail", slug=profile.project.slug)
    return redirect("measurements:detail", pk=measurement.pk)


@login_required
def measurement_runs_csv(request, pk: int):
    measurement = get_object_or_404(Measurement.objects.select_related("profile"), pk=pk)
    response = HttpResponse(
        runs_csv(run_records(measurement)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="measurement-{pk}-runs.csv"'
    return response
