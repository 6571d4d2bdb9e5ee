"""Metric computation and judging: each run's values, the comparison of the two sides, the
verdicts under the profile's metric policy, and a change's expected result read as a metric."""

from . import metrics, stats
from .models import (
    Measurement,
    MeasurementKind,
    MeasurementStatus,
    Profile,
    ProfileKind,
    Run,
    RunStatus,
    Side,
)


def expectation_of(text: str, policy: metrics.Policy | None = None) -> stats.Expectation | None:
    """A change's expected result read with the metric names a profile knows (labels too)."""
    found = stats.parse_expectation(text)
    if found is None or policy is None:
        return found
    return stats.Expectation(metric=policy.resolve(found.metric), change_pct=found.change_pct)


def headline_of(measurement) -> dict:
    """A finished measurement in one line (`metrics.headline`): the metric its change's
    expected result names speaks first, unless something blocks."""
    policy = metrics.policy_of(measurement.profile)
    change = measurement.change
    expected = expectation_of(change.expected_result, policy) if change else None
    return metrics.headline(
        measurement.results or [], policy, expected_metric=expected.metric if expected else None
    )


def known_metric_keys(project_id: int | None) -> set[str]:
    """Every metric key a change of this project may name: built-ins of every profile kind,
    what the project's profiles' policies name, and what its recent measurements measured."""
    keys = set(metrics.all_builtin())
    if project_id is None:
        return keys
    for policy in Profile.objects.filter(project_id=project_id).values_list(
        "metric_policy", flat=True
    ):
        keys |= set(policy or {})
        # A label the policy gives a metric is a name people may write for it too.
        keys |= {
            metrics.canonical_key(entry["label"])
            for entry in (policy or {}).values()
            if isinstance(entry, dict) and entry.get("label")
        }
    recent = Measurement.objects.filter(
        profile__project_id=project_id, status=MeasurementStatus.DONE
    ).order_by("-id")[:50]
    for results in recent.values_list("results", flat=True):
        keys |= {r.get("metric", "") for r in results or []}
    return keys


def expectation_error(project_id: int | None, text: str) -> str:
    """Why an expected result names no metric fixledger can check, or "" when it is fine.

    Text outside the expectation grammar is a free description and passes; a change in the
    grammar must name a metric this project measures or may measure.
    """
    found = stats.parse_expectation(text or "")
    if found is None:
        return ""
    if found.metric in metrics.all_builtin() or found.metric in known_metric_keys(project_id):
        return ""
    labels = sorted({metrics.label_of(k) for k in metrics.all_builtin()})
    return (
        f"No metric named “{found.metric.replace('_', ' ')}” is measured here; "
        f"name one of {', '.join(labels)} or a metric the project's commands print."
    )


# Where each built-in metric of a command profile comes from in a run row.
_RUN_FIELDS: dict[str, tuple[str, ...]] = {
    "peak_rss": ("peak_rss_bytes",),
    "wall": ("wall_seconds",),
    "cpu": ("user_seconds", "system_seconds"),
    "user_cpu": ("user_seconds",),
    "system_cpu": ("system_seconds",),
}


def run_value(run: Run, metric: str) -> float | None:
    """One metric of one run: a built-in from its columns, else what the command printed."""
    fields = _RUN_FIELDS.get(metric)
    if fields:
        values = [getattr(run, f) for f in fields]
        return None if any(v is None for v in values) else float(sum(values))
    value = run.metrics.get(metric, [None])[0]
    return None if value is None else float(value)


def run_values(runs, metric: str, side: str) -> list[float]:
    """One metric's values over the measured (not warm-up), finished runs of one side."""
    values = []
    for run in runs:
        if run.side != side or run.warmup or run.status != RunStatus.DONE:
            continue
        value = run_value(run, metric)
        if value is not None:
            values.append(value)
    return values


def measured_metrics(runs: list[Run], policy: metrics.Policy) -> list[metrics.Metric]:
    """The metrics these runs measured, as the policy judges them: built-ins first."""
    found = list(policy.builtin())
    custom: dict[str, tuple[str, metrics.Direction | None]] = {}
    for run in runs:
        if run.status == RunStatus.DONE and not run.warmup:
            for name, stored in run.metrics.items():
                if name not in custom:
                    custom[name] = metrics.split_declared_unit(stored[1] if len(stored) > 1 else "")
    builtin_keys = {m.key for m in found}
    for name in sorted(set(custom) - builtin_keys):
        unit, declared = custom[name]
        found.append(policy.metric(name, unit=unit, declared=declared))
    return found


def design_of(measurement: Measurement) -> dict:
    """planned/block/maximum runs per side; measurements from before adaptive runs had none."""
    planned = sum(1 for r in measurement.runs.all() if not r.warmup) // 2
    return {"planned": planned, "block": 0, "maximum": planned} | (measurement.design or {})


def compare_runs(
    runs: list[Run],
    *,
    policy: metrics.Policy | None = None,
    calibrated: dict | None = None,
    alpha: float = stats.ALPHA,
) -> list[stats.Comparison]:
    """One comparison per metric, in the policy's direction, at the look's level `alpha`."""
    policy = policy or metrics.Policy(kind=metrics.DEFAULT_KIND, overrides={})
    measured = [r for r in runs if not r.warmup]
    failed = sum(r.status != RunStatus.DONE for r in measured)
    return [
        stats.compare(
            run_values(runs, metric.key, Side.BEFORE),
            run_values(runs, metric.key, Side.AFTER),
            metric=metric.key,
            unit=metric.unit,
            label=metric.label,
            lower_is_better=metric.lower_is_better,
            alpha=alpha,
            failed_runs=failed,
            calibrated_noise=(calibrated or {}).get(metric.key, {}).get("noise"),
        )
        for metric in measured_metrics(runs, policy)
    ]


def judge(
    measurement: Measurement, runs: list[Run]
) -> tuple[list[stats.Comparison], list[dict], dict]:
    """The comparisons of a measurement's runs so far, as stored results, and the look."""
    profile = measurement.profile
    policy = metrics.policy_of(profile)
    if profile.kind == ProfileKind.HTTP:
        return _judge_http(runs, policy)
    design = design_of(measurement)
    n = min(
        sum(1 for r in runs if not r.warmup and r.side == side)
        for side in (Side.BEFORE, Side.AFTER)
    )
    alpha = stats.look_alpha(n, **design)
    comparisons = compare_runs(
        runs,
        policy=policy,
        calibrated=None if measurement.kind == MeasurementKind.CALIBRATE else profile.resolution,
        alpha=alpha,
    )
    by_key = {m.key: m for m in measured_metrics(runs, policy)}
    results = []
    for c in comparisons:
        metric = by_key[c.metric]
        result = c.as_dict() | {
            "label": metric.label,
            "role": metric.role.value,
            "smallest_effect_pct": metric.smallest_effect_pct,
            "alpha": alpha,
            "max_noise_pct": stats.MAX_NOISE_PCT,
        }
        result["undecided"] = metrics.undecided(result, metric)
        results.append(result)
    return comparisons, results, {"runs_per_side": n, "alpha": alpha, **design}


def _judge_http(runs: list[Run], policy: metrics.Policy):
    """HTTP blocks judged by the probe's analysis; each comparison with its policy role, in the
    shape command comparisons have (the page, the gate and search read both alike)."""
    from .http.analysis import compare_sides

    sides = {
        side: [
            r.probe["result"]
            for r in runs
            if r.side == side and not r.warmup and r.status == RunStatus.DONE
            if (r.probe or {}).get("result")
        ]
        for side in (Side.BEFORE, Side.AFTER)
    }
    report = compare_sides(sides[Side.BEFORE], sides[Side.AFTER], alpha=stats.ALPHA)
    results = []
    for c in report.comparisons:
        metric = policy.metric(c.metric)
        results.append(
            c.as_dict()
            | {
                "role": metric.role.value,
                "smallest_effect_pct": metric.smallest_effect_pct,
                "alpha": stats.ALPHA,
                "max_noise_pct": stats.MAX_NOISE_PCT,
                "undecided": "",
            }
        )
    n = min(len(blocks) for blocks in sides.values())
    look = {"runs_per_side": n, "alpha": stats.ALPHA, "http_report": report.as_dict()}
    # The report's lines come after the comparisons, which are already in `results`.
    look["http_report"].pop("comparisons")
    return report.comparisons, results, look
