"""Reads for measurement pages: results with formatted numbers and their charts."""

from statistics import median

from .charts import format_value, strip_chart, timeline_chart
from .models import Measurement, RunStatus, Side
from .services import BUILTIN_METRICS, run_values

_LABELS = {key: label for key, label, _unit, _field in BUILTIN_METRICS}


def _typical(runs, side: str):
    """The run whose peak RSS is the median of its side: the one worth drawing."""
    done = [r for r in runs if r.side == side and not r.warmup and r.status == RunStatus.DONE]
    if not done:
        return None
    middle = median(r.peak_rss_bytes for r in done)
    return min(done, key=lambda r: abs(r.peak_rss_bytes - middle))


def measurement_display(measurement: Measurement) -> dict:
    """Everything the measurement partial shows, computed once per request."""
    runs = list(measurement.runs.all()) if not measurement.is_active else []
    calibrated = measurement.profile.resolution
    rows = []
    for result in measurement.results:
        unit = result["unit"]
        metric = result["metric"]
        profile_resolution = calibrated.get(metric, {}).get("resolution")
        rows.append(
            {
                **result,
                "label": _LABELS.get(metric, metric),
                "before": format_value(result["median_before"], unit),
                "after": format_value(result["median_after"], unit),
                "noise_text": format_value(result["noise"], unit),
                "resolution_text": format_value(result["resolution"], unit),
                "calibrated_text": format_value(profile_resolution, unit)
                if profile_resolution is not None
                else "",
                "chart": strip_chart(
                    run_values(runs, metric, Side.BEFORE),
                    run_values(runs, metric, Side.AFTER),
                    unit,
                ),
            }
        )
    before, after = _typical(runs, Side.BEFORE), _typical(runs, Side.AFTER)
    timeline = timeline_chart(before.rss_timeline, after.rss_timeline) if before and after else ""
    failures = [r for r in runs if r.status == RunStatus.FAILED]
    flagged = sum(1 for r in runs if r.rss_at_floor)
    finished = (RunStatus.DONE, RunStatus.FAILED)
    unsandboxed = sum(1 for r in runs if r.status in finished and not r.sandboxed)
    return {
        "rows": rows,
        "timeline": timeline,
        "failures": failures,
        "flagged": flagged,
        "unsandboxed": unsandboxed,
    }


def measurement_section(change) -> dict:
    """The change page's measurements: the profiles to pick from, and the latest in full."""
    from .models import Profile

    measurements = list(
        change.measurements.select_related("profile", "requested_by", "change")[:10]
    )
    return {
        "profiles": Profile.objects.filter(project_id=change.project_id).select_related(
            "environment"
        ),
        "measurements": measurements,
        "latest": measurement_display(measurements[0]) if measurements else {},
    }
