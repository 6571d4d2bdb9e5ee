"""Reads for measurement pages: results with formatted numbers and their charts."""

import re
from statistics import median

from apps.changes.models import Change
from apps.core.queues import waiting_notice

from . import metrics, stats
from .charts import change_text, format_value, percentile_chart, strip_chart, timeline_chart
from .judging import measured_metrics, run_value, run_values
from .models import COMPARED_KINDS, Measurement, MeasurementStatus, RunStatus, Side


def _typical(runs, side: str):
    """The run whose peak RSS is the median of its side: the one worth drawing."""
    done = [r for r in runs if r.side == side and not r.warmup and r.status == RunStatus.DONE]
    done = [r for r in done if r.peak_rss_bytes is not None]  # a live staging probe has none
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
                "label": result.get("label") or metrics.label_of(metric),
                "change_text": change_text(result),
                "role": result.get("role", ""),
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
                    result.get("label") or metrics.label_of(metric),
                ),
            }
        )
    before, after = _typical(runs, Side.BEFORE), _typical(runs, Side.AFTER)
    timeline = timeline_chart(before.rss_timeline, after.rss_timeline) if before and after else ""
    failures = [r for r in runs if r.status == RunStatus.FAILED]
    flagged = sum(1 for r in runs if r.rss_at_floor)
    finished = (RunStatus.DONE, RunStatus.FAILED)
    unsandboxed = sum(1 for r in runs if r.status in finished and not r.sandboxed)
    table = run_table(measurement, runs) if runs else {"columns": [], "runs": []}
    http = http_display(measurement, runs)
    for row in rows:
        if row["metric"].startswith("latency_") and row.get("endpoint") is None:
            row["warnings"] = http.get("cache_warnings", [])
    return {
        # Queued: whether a worker is taking it (core/_queue_warning.html).
        "waiting": waiting_notice(
            since=measurement.created, queue=measurement.profile.environment.queue
        )
        if measurement.status == MeasurementStatus.QUEUED
        else None,
        "http": http,
        "rows": rows,
        "timeline": timeline,
        "failures": failures,
        "flagged": flagged,
        "unsandboxed": unsandboxed,
        "run_table": table,
    }


def http_display(measurement: Measurement, runs) -> dict:
    """An HTTP measurement per side and endpoint, its blocks (reset, hit ratio) and charts."""
    report = measurement.http_report or {}
    if not report.get("sides"):
        return {}
    sides = []
    for name in (Side.BEFORE, Side.AFTER):
        side = report["sides"][name]
        endpoints = [("all requests", side["total"]), *sorted(side["endpoints"].items())]
        slope = side.get("rss_slope")
        sides.append(
            {
                "side": name,
                "requests": side["requests"],
                "throughput": f"{side['throughput']:,.1f} req/s",
                "lag": format_value(side["lag_p99_ms"], "ms"),
                "late": f"{side['late_fraction'] * 100:.2f} %",
                "peak_rss": format_value(side["peak_rss"], "B"),
                "rss_slope": (
                    f"{format_value(slope[0], 'B')} (95 % CI {format_value(slope[1], 'B')} … "
                    f"{format_value(slope[2], 'B')})"
                    if slope
                    else "—"
                ),
                "leak": side["leak"],
                "endpoints": [
                    {
                        "name": endpoint,
                        "count": data["count"],
                        "p50": format_value(data["p50"], "ms"),
                        "p95": format_value(data["p95"], "ms"),
                        "p99": format_value(data["p99"], "ms"),
                        "error_rate": format_value(data["error_rate"], "%"),
                        "cache_hit_ratio": format_value(data["cache_hit_ratio"], "%"),
                        "db_mean": format_value(data["db_mean"], ""),
                        "db_max": "—" if data["db_max"] is None else data["db_max"],
                    }
                    for endpoint, data in endpoints
                ],
            }
        )
    blocks = [
        {
            "sequence": r.sequence + 1,
            "side": r.side,
            "reset": (r.probe or {}).get("reset", ""),
            "cache_hit_ratio": format_value(r.metrics.get("cache_hit_ratio", [None])[0], "%"),
        }
        for r in runs
        if r.probe
    ]
    totals = {name: report["sides"][name]["total"] for name in (Side.BEFORE, Side.AFTER)}
    percentiles = {name: {q: totals[name][q] for q in ("p50", "p95", "p99")} for name in totals}
    memory = {
        name: _memory_samples([r for r in runs if r.side == name and not r.warmup])
        for name in (Side.BEFORE, Side.AFTER)
    }
    return {
        "sides": sides,
        "blocks": blocks,
        "reset": any(b["reset"] for b in blocks),
        "warnings": report.get("warnings", []),
        "cache_warnings": [w for w in report.get("warnings", []) if "from cache" in w],
        "latency_chart": percentile_chart(percentiles[Side.BEFORE], percentiles[Side.AFTER]),
        "memory_chart": timeline_chart(
            memory[Side.BEFORE], memory[Side.AFTER], x_unit="requests", label="RSS over requests"
        )
        if memory[Side.BEFORE] and memory[Side.AFTER]
        else "",
    }


def _memory_samples(runs) -> list[list[float]]:
    """The server's RSS over requests in the last finished block of a side."""
    for run in sorted(runs, key=lambda r: -r.sequence):
        samples = ((run.probe or {}).get("result") or {}).get("memory", {}).get("samples")
        if run.status == RunStatus.DONE and samples:
            return samples
    return []


def run_table(measurement: Measurement, runs=None) -> dict:
    """Every run of a measurement with its metrics, and which runs are outliers of their side.

    A run is an outlier when one of its metrics lies more than 3.5 robust standard deviations
    (and 2 %) from the median of its side (`stats.outliers`); warm-ups and failed runs are
    never judged.
    """
    runs = list(measurement.runs.all()) if runs is None else runs
    known = measured_metrics(runs, metrics.policy_of(measurement.profile))
    flagged: dict[int, list[str]] = {}
    for metric in known:
        for side in (Side.BEFORE, Side.AFTER):
            judged = [
                (r, run_value(r, metric.key))
                for r in runs
                if r.side == side and not r.warmup and r.status == RunStatus.DONE
            ]
            judged = [(r, v) for r, v in judged if v is not None]
            marks = stats.outliers([v for _r, v in judged])
            for (run, _value), outlier in zip(judged, marks, strict=True):
                if outlier:
                    flagged.setdefault(run.pk, []).append(metric.label)
    rows = []
    for run in runs:
        values = {m.key: run_value(run, m.key) for m in known}
        rows.append(
            {
                "run": run,
                "sequence": run.sequence + 1,
                "side": run.side,
                "warmup": run.warmup,
                "status": run.status,
                "exit_code": run.exit_code,
                "worker": run.worker,
                "duration": run.wall_seconds,
                "failure": run.failure,
                "output_tail": run.output_tail,
                "values": values,
                "cells": [format_value(values[m.key], m.unit) for m in known],
                "outlier": run.pk in flagged,
                "outlier_metrics": flagged.get(run.pk, []),
            }
        )
    return {"columns": known, "runs": rows, "outliers": len(flagged)}


def run_records(measurement: Measurement) -> list[dict]:
    """Every run as plain data, for the API and the CSV download alike."""
    table = run_table(measurement)
    return [
        {
            "sequence": r["sequence"],
            "side": r["side"],
            "warmup": r["warmup"],
            "status": r["status"],
            "exit_code": r["exit_code"],
            "worker": r["worker"],
            "duration_seconds": r["duration"],
            "metrics": {
                m.key: {"label": m.label, "value": r["values"][m.key], "unit": m.unit}
                for m in table["columns"]
            },
            "outlier": r["outlier"],
            "outlier_metrics": r["outlier_metrics"],
            "failure": r["failure"],
            "output_tail": r["output_tail"],
        }
        for r in table["runs"]
    ]


def runs_csv(records: list[dict]) -> str:
    """One line per run, one column per metric (its key and unit in the header)."""
    import csv
    import io

    keys: dict[str, str] = {}
    for record in records:
        for key, metric in record["metrics"].items():
            keys.setdefault(key, f"{key} ({metric['unit']})" if metric["unit"] else key)
    out = io.StringIO()
    writer = csv.writer(out)
    fixed = ["sequence", "side", "warmup", "status", "exit_code", "worker", "duration_seconds"]
    writer.writerow(
        [*fixed, *keys.values(), "outlier", "outlier_metrics", "failure", "output_tail"]
    )
    for r in records:
        writer.writerow(
            [
                *(r[name] for name in fixed),
                *(r["metrics"].get(key, {}).get("value") for key in keys),
                r["outlier"],
                "; ".join(r["outlier_metrics"]),
                r["failure"],
                r["output_tail"],
            ]
        )
    return out.getvalue()


def finished_comparisons(*, kinds=COMPARED_KINDS, **filters):
    """Finished before/after measurements (of `kinds`) matching `filters`, the latest first."""
    return Measurement.objects.filter(
        status=MeasurementStatus.DONE, kind__in=kinds, **filters
    ).order_by("-finished_at", "-id")


def latest_finished(change, *, current_only: bool = False, kinds=COMPARED_KINDS):
    """The change's latest finished before/after measurement (of `kinds`): one of its current
    revisions if there is one, else, unless `current_only`, one of older revisions; or None."""
    done = finished_comparisons(kinds=kinds, change=change)
    current = done.filter(base_sha=change.base_sha, head_sha=change.head_sha).first()
    if current is not None or current_only:
        return current
    return done.first()


# "run 3 (before)" and "warm-up 2 (after)": the count moves every run, the side seldom.
_RUN_PHASE = re.compile(r"^(?:warm-up|run|block) \d+ \((\w+)\)$")


def announcement(measurement: Measurement | None) -> str:
    """The measurement's progress in a sentence that changes only when its status or stage
    does (not with every run), for the change page's polite status region."""
    if measurement is None:
        return ""
    status = measurement.status
    if status == MeasurementStatus.QUEUED:
        return "Measurement queued: waiting for a worker."
    if status == MeasurementStatus.RUNNING:
        run = _RUN_PHASE.match(measurement.phase)
        stage = f"measuring the {run.group(1)} side" if run else measurement.phase
        return f"Measurement running: {stage}."
    if status == MeasurementStatus.DONE:
        verdicts = [r for r in measurement.results if r.get("role") == "gating"]
        said = "; ".join(
            f"{r.get('label') or metrics.label_of(r['metric'])} {r['verdict']}" for r in verdicts
        )
        return f"Measurement done: {said}." if said else "Measurement done."
    if status == MeasurementStatus.WAITING:
        return f"Measurement waiting: {measurement.phase}."
    return f"Measurement {measurement.get_status_display().lower()}."


def measurement_section(user, change) -> dict:
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
        "announcement": announcement(measurements[0] if measurements else None),
    }


def release_evidence(change) -> list[str]:
    """What the change's measurements still owe its release, in words; empty when nothing.

    Only finished before/after measurements of the change's *current* revisions count: after
    the revisions change, older ones are history. Of those, the latest per profile is judged
    with the profile's current metric policy (`metrics.blocks`).
    """
    from .models import ACTIVE_STATUSES

    revisions = f"{change.base_sha[:10]} → {change.head_sha[:10]}"
    current = {"change": change, "base_sha": change.base_sha, "head_sha": change.head_sha}
    latest: dict[int, Measurement] = {}
    for m in finished_comparisons(**current).select_related("profile"):
        latest.setdefault(m.profile_id, m)
    if not latest:
        running = (
            Measurement.objects.filter(
                kind__in=COMPARED_KINDS, status__in=ACTIVE_STATUSES, **current
            )
            .order_by("-id")
            .first()
        )
        if running is not None:
            return [f"Measurement {running.pk} of the current revisions is still running."]
        older = latest_finished(change)
        if older is not None:
            return [
                f"Measurement {older.pk} measured older revisions "
                f"({older.base_sha[:10]} → {older.head_sha[:10]}); "
                f"measure the current ones ({revisions}) again."
            ]
        return [f"Not measured: measure the change at its current revisions ({revisions})."]
    return [text for m in latest.values() for _key, text in metrics.blocking_results(m)]


def change_number_of(measurement_id: int) -> str | None:
    """The number of the change a measurement measures (None for a calibration)."""
    change = Measurement.objects.filter(pk=measurement_id).values_list("change", flat=True).first()
    return Change(pk=change).number if change else None
