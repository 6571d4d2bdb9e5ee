from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST

from apps.changes.selectors import change_or_404
from apps.changes.services import can_edit_change
from apps.core import work
from apps.core.htmx import CHANGE_UPDATED, htmx_target, trigger

from .lifecycle import (
    measurement_calibrate,
    measurement_cancel,
    measurement_request,
    measurement_snapshot_after,
)
from .models import Measurement, MeasurementStatus, Profile
from .selectors import (
    announcement,
    measurement_display,
    measurement_section,
    run_records,
    runs_csv,
)


def _context(request, measurement: Measurement) -> dict:
    change = measurement.change
    can_cancel = can_edit_change(request.user, change) if change else True
    return {
        "m": measurement,
        "announcement": announcement(measurement),
        "can_cancel": can_cancel
        and (measurement.is_active or measurement.status == MeasurementStatus.WAITING),
        **measurement_display(measurement),
    }


def _announce(request, response: HttpResponse, measurement: Measurement | None) -> HttpResponse:
    """Add the page's status sentence out of band when it differs from the one the page last
    said (sent as `said` by the measurements section): said again, it would be read out again."""
    said = request.POST.get("said", request.GET.get("said"))
    text = announcement(measurement)
    if said is not None and said != text:
        response.write(
            render_to_string(
                "measurements/_announce.html", {"announcement": text, "oob": True}, request
            )
        )
    return response


@login_required
def measurement_detail(request, pk: int):
    measurement = get_object_or_404(
        Measurement.objects.select_related("profile__project", "change", "requested_by"), pk=pk
    )
    context = _context(request, measurement)
    if htmx_target(request):
        response = _announce(
            request, render(request, "measurements/_measurement.html", context), measurement
        )
        # A poll that finds the measurement over: the rest of the page follows.
        return response if measurement.is_active else trigger(response, CHANGE_UPDATED)
    return render(request, "measurements/detail.html", context)


def _card(request, measurement: Measurement):
    """The measurement's card in place, and the change page told its state moved."""
    measurement.refresh_from_db()
    response = render(request, "measurements/_measurement.html", _context(request, measurement))
    return trigger(_announce(request, response, measurement), CHANGE_UPDATED)


def _in_place(request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _section(request, change, notes: list[str] = ()) -> HttpResponse:
    """The change page's measurements section as it is now, with what it says aloud."""
    context = {
        "change": change,
        "can_edit": can_edit_change(request.user, change),
        "notes": list(notes),
        **measurement_section(request.user, change),
    }
    response = render(request, "measurements/_section.html", context)
    return _announce(
        request, response, context["measurements"][0] if context["measurements"] else None
    )


@login_required
def section(request, pk: int):
    """The measurements section, asked for again when the change closed in place."""
    change = change_or_404(pk)
    if not _in_place(request):
        return redirect(f"{change.get_absolute_url()}#measurements")
    return _section(request, change)


@login_required
@require_POST
def measurement_start(request, pk: int):
    change = change_or_404(pk)
    profile = Profile.objects.filter(pk=request.POST.get("profile") or 0).first()
    notes, level = [], messages.ERROR
    if profile is None:
        notes = ["Pick a measurement profile."]
    else:
        try:
            with work.publishing() as sent:
                measurement_request(actor=request.user, change=change, profile=profile)
        except ValidationError as exc:
            notes = [" ".join(exc.messages)]
        else:
            level = messages.SUCCESS if sent.ok else messages.WARNING
            notes = [
                f"Measuring {change.number} with {profile.name}."
                if sent.ok
                else f"{change.number} with {profile.name}: {work.BROKER_DOWN}"
            ]
    if not _in_place(request):
        for text in notes:
            messages.add_message(request, level, text)
        return redirect(change)
    # In place the new card is the news; only a problem is said in words.
    response = _section(request, change, [] if level == messages.SUCCESS else notes)
    return trigger(response, CHANGE_UPDATED)


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
        elif _in_place(request):
            return _card(request, measurement)
    if _in_place(request):
        # The flash message says what went wrong: htmx loads the whole page to show it.
        response = HttpResponse(status=204)
        response["HX-Redirect"] = measurement.change.get_absolute_url()
        return response
    return redirect(measurement.change)


@login_required
@require_POST
def measurement_cancel_view(request, pk: int):
    measurement = get_object_or_404(Measurement, pk=pk)
    measurement_cancel(actor=request.user, measurement=measurement)
    if _in_place(request):
        return _card(request, measurement)
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
