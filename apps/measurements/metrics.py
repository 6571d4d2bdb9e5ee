"""What each metric means to a release: its label, unit, direction, role and smallest effect.

A profile's *metric policy* decides, per metric key, how a before/after comparison is judged
and what the release gate makes of it (DESIGN.md, "Measuring", point 8):

* ``direction``: ``lower`` (times, memory) or ``higher`` (throughput) is better;
* ``role``: ``critical`` blocks the release on any significant regression, ``gating`` blocks
  only when the regression is at least the smallest effect that matters, ``informational`` is
  shown and never blocks;
* ``smallest_effect_pct``: that smallest effect, in percent of the before median.

Every profile kind has built-in metrics with defaults (`BUILTIN`); the profile's stored policy
overrides them key by key, and a metric the command prints (``METRIC name=value unit
[lower|higher]``) that the policy does not name is informational, in the direction it
declared. Pure Python: workers, pages, the gate and the expected-result check share it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from apps.core.units import signed_pct


class Role(StrEnum):
    CRITICAL = "critical"
    GATING = "gating"
    INFORMATIONAL = "informational"


class Direction(StrEnum):
    LOWER = "lower"
    HIGHER = "higher"


@dataclass(frozen=True)
class Metric:
    """One metric as a profile judges it."""

    key: str
    label: str
    unit: str = ""
    direction: Direction = Direction.LOWER
    role: Role = Role.INFORMATIONAL
    smallest_effect_pct: float = 0.0

    @property
    def lower_is_better(self) -> bool:
        return self.direction is Direction.LOWER

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "unit": self.unit,
            "direction": self.direction.value,
            "role": self.role.value,
            "smallest_effect_pct": self.smallest_effect_pct,
        }


# Kernel CPU accounting moves time between user and system by whole ticks: either half alone
# "regresses" when a change only shifts work across the boundary, so only their sum gates.
BUILTIN: dict[str, tuple[Metric, ...]] = {
    "command": (
        Metric("peak_rss", "peak RSS", "bytes", role=Role.GATING, smallest_effect_pct=1.0),
        Metric("wall", "wall time", "s", role=Role.GATING, smallest_effect_pct=5.0),
        Metric("cpu", "CPU time", "s", role=Role.GATING, smallest_effect_pct=5.0),
        Metric("user_cpu", "user CPU time", "s"),
        Metric("system_cpu", "system CPU time", "s"),
    ),
    # HTTP probes (http/analysis.py computes them). What a user feels and what a leak or an
    # extra query costs in production gate: the tail (p99, 5 %), errors, queries per request and
    # the RSS slope (their floors live in analysis.DEFAULT_FLOORS, so any significant rise
    # blocks). The median and p95 move with the p99 and only inform; the hit ratio explains a
    # latency change rather than being one, and a peak is not a leak.
    "http": (
        Metric("latency_p99", "latency p99", "ms", role=Role.GATING, smallest_effect_pct=5.0),
        Metric("error_rate", "error rate", "%", role=Role.GATING),
        Metric("db_queries", "DB queries per request", "queries", role=Role.GATING),
        Metric("rss_slope", "RSS growth per 1,000 requests", "B", role=Role.GATING),
        Metric("latency_p50", "latency p50", "ms"),
        Metric("latency_p95", "latency p95", "ms"),
        Metric("cache_hit_ratio", "cache hit ratio", "%", direction=Direction.HIGHER),
        Metric("server_peak_rss", "server peak RSS", "B"),
    ),
}
DEFAULT_KIND = "command"

# Other spellings people type for the built-in metrics (after `_slug`), in search filters and
# expected results alike.
ALIASES: dict[str, str] = {
    **dict.fromkeys(
        ["rss", "peak_memory", "memory", "max_rss", "maxrss", "peak_resident_set_size"],
        "peak_rss",
    ),
    **dict.fromkeys(
        [
            "wall_time",
            "wall_clock",
            "wall_clock_time",
            "elapsed",
            "elapsed_time",
            "duration",
            "runtime",
            "run_time",
        ],
        "wall",
    ),
    **dict.fromkeys(["cpu_time", "total_cpu", "total_cpu_time", "cpu_total", "cpu_seconds"], "cpu"),
    **dict.fromkeys(["user_cpu_time", "user_time", "cpu_user"], "user_cpu"),
    **dict.fromkeys(
        ["system_cpu_time", "system_time", "sys_cpu", "sys_time", "cpu_system"], "system_cpu"
    ),
}


def _slug(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", unicodedata.normalize("NFKC", name).casefold()).strip("_")


def builtin_metrics(kind: str = DEFAULT_KIND) -> tuple[Metric, ...]:
    return BUILTIN.get(kind, ())


def all_builtin() -> dict[str, Metric]:
    """Every built-in metric of every profile kind, by key."""
    return {m.key: m for kind in BUILTIN.values() for m in kind}


def canonical_key(name: str) -> str:
    """A metric's storage key from a key, alias or label: "peak RSS" and "rss" are `peak_rss`."""
    slug = _slug(name)
    if slug in ALIASES:
        return ALIASES[slug]
    for metric in all_builtin().values():
        if slug == _slug(metric.label):
            return metric.key
    return slug


def builtin_label(key: str) -> str | None:
    """The label of a built-in metric, or None for any other key."""
    metric = all_builtin().get(key)
    return metric.label if metric else None


def label_of(key: str) -> str:
    return builtin_label(key) or key.replace("_", " ")


def split_declared_unit(text: str) -> tuple[str, Direction | None]:
    """The unit a command printed, and the direction it declared after it, if any.

    ``METRIC hits=93 % higher`` reaches here as ``"% higher"``; a unit alone, a direction
    alone and nothing at all are all accepted.
    """
    parts = (text or "").split()
    direction = None
    if parts and parts[-1].casefold() in (Direction.LOWER, Direction.HIGHER):
        direction = Direction(parts.pop().casefold())
    return " ".join(parts), direction


# --- a profile's stored policy -------------------------------------------------------------


class PolicyError(ValueError):
    """A stored policy that is not what `validate_policy` accepts."""


def validate_policy(value: Any) -> dict[str, dict[str, Any]]:
    """The policy an admin wrote, checked and normalised; raises PolicyError saying why.

    Shape: ``{"<metric key or label>": {"direction": "lower"|"higher", "role":
    "critical"|"gating"|"informational", "smallest_effect_pct": 0..1000, "label": "..."}}``,
    every inner field optional (the built-in default, or for a custom metric: its declared
    direction, informational, 0 %).
    """
    if not isinstance(value, dict):
        raise PolicyError(
            'Write the policy as a JSON object, e.g. {"wall": {"role": "informational"}}.'
        )
    if len(value) > 200:
        raise PolicyError("At most 200 metrics.")
    clean: dict[str, dict[str, Any]] = {}
    for name, entry in value.items():
        key = canonical_key(str(name))
        if not key or len(key) > 64:
            raise PolicyError(f"{name!r}: a metric key is 1 to 64 letters, digits or _.")
        if not isinstance(entry, dict):
            raise PolicyError(f"{name}: give an object of direction, role, smallest_effect_pct.")
        unknown = set(entry) - {"direction", "role", "smallest_effect_pct", "label"}
        if unknown:
            raise PolicyError(f"{name}: unknown field(s) {', '.join(sorted(unknown))}.")
        out: dict[str, Any] = {}
        if "direction" in entry:
            if entry["direction"] not in Direction.__members__.values():
                raise PolicyError(f"{name}: direction is “lower” or “higher”.")
            out["direction"] = entry["direction"]
        if "role" in entry:
            if entry["role"] not in Role.__members__.values():
                raise PolicyError(f"{name}: role is critical, gating or informational.")
            out["role"] = entry["role"]
        if "smallest_effect_pct" in entry:
            effect = entry["smallest_effect_pct"]
            if isinstance(effect, bool) or not isinstance(effect, int | float):
                raise PolicyError(f"{name}: smallest_effect_pct is a number of percent.")
            if not 0 <= effect <= 1000:
                raise PolicyError(f"{name}: smallest_effect_pct is between 0 and 1000.")
            out["smallest_effect_pct"] = float(effect)
        if "label" in entry:
            label = entry["label"]
            if not isinstance(label, str) or not 0 < len(label.strip()) <= 60:
                raise PolicyError(f"{name}: a label is 1 to 60 characters.")
            out["label"] = label.strip()
        clean[key] = out
    return clean


@dataclass(frozen=True)
class Policy:
    """The metrics of one profile: built-in defaults of its kind, overridden by its policy."""

    kind: str
    overrides: dict[str, dict[str, Any]]

    def builtin(self) -> tuple[Metric, ...]:
        return tuple(self.metric(m.key) for m in builtin_metrics(self.kind))

    def metric(
        self, key: str, *, unit: str | None = None, declared: Direction | None = None
    ) -> Metric:
        """How `key` is judged; `unit` and `declared` are what a command printed for it."""
        base = {m.key: m for m in builtin_metrics(self.kind)}.get(key)
        if base is None:
            guessed = Direction.HIGHER if (unit or "").endswith("/s") else Direction.LOWER
            base = Metric(key, label_of(key), unit or "", direction=declared or guessed)
        elif unit is not None and not base.unit:
            base = replace(base, unit=unit)
        entry = self.overrides.get(key, {})
        return replace(
            base,
            label=entry.get("label", base.label),
            direction=Direction(entry.get("direction", base.direction)),
            role=Role(entry.get("role", base.role)),
            smallest_effect_pct=float(entry.get("smallest_effect_pct", base.smallest_effect_pct)),
        )

    def known_keys(self) -> set[str]:
        return {m.key for m in builtin_metrics(self.kind)} | set(self.overrides)

    def resolve(self, name: str) -> str:
        """A key from what a person typed: a key, an alias, a built-in label or a policy label."""
        key = canonical_key(name)
        if key in self.known_keys():
            return key
        slug = _slug(name)
        for other, entry in self.overrides.items():
            if "label" in entry and _slug(entry["label"]) == slug:
                return other
        return key


def policy_of(profile) -> Policy:
    """The policy of a profile (or anything with `metric_policy` and an optional `kind`)."""
    try:
        # Keys as stored by the profile service already; labels are mapped for rows written
        # around it.
        overrides = validate_policy(getattr(profile, "metric_policy", None) or {})
    except PolicyError:
        overrides = {}  # a policy that no longer validates falls back to the defaults
    return Policy(kind=getattr(profile, "kind", DEFAULT_KIND) or DEFAULT_KIND, overrides=overrides)


# --- what the gate makes of a verdict ------------------------------------------------------


def harm_pct(result: dict[str, Any]) -> tuple[float | None, float | None, float | None]:
    """(change, CI low, CI high) in percent, positive when the metric got worse."""
    values = (result.get("change_pct"), result.get("ci_low_pct"), result.get("ci_high_pct"))
    if any(v is None for v in values):
        return None, None, None
    change, low, high = values
    if result.get("lower_is_better", True):
        return change, low, high
    return -change, -high, -low


def blocks(result: dict[str, Any], metric: Metric) -> bool:
    """Whether this verdict, under this metric's role, stands between a change and its release.

    Critical: any significant regression (the verdict says "regressed"). Gating: a regression
    whose estimate reaches the smallest effect that matters, and any verdict without evidence
    (inconclusive). Informational: never.
    """
    if metric.role is Role.INFORMATIONAL:
        return False
    verdict = result.get("verdict")
    if verdict == "inconclusive":
        return True
    if verdict != "regressed":
        return False
    if metric.role is Role.CRITICAL:
        return True
    change, _low, _high = harm_pct(result)
    return change is None or change >= metric.smallest_effect_pct


def result_metric(policy: Policy, result: dict[str, Any]) -> Metric:
    """How `policy` judges one stored result: with the unit and direction it was measured in,
    and for an HTTP endpoint's metric the result's own label ("latency p99 of GET /items")."""
    metric = policy.metric(
        result["metric"],
        unit=result.get("unit"),
        declared=Direction.LOWER if result.get("lower_is_better", True) else Direction.HIGHER,
    )
    if result.get("endpoint"):
        metric = replace(metric, label=result.get("label") or metric.label)
    return metric


def headline(
    results: list[dict[str, Any]], policy: Policy, *, expected_metric: str | None = None
) -> dict[str, Any]:
    """A measurement in one line, for lists: a verdict and the metric behind it.

    What stands between the change and its release comes first, as the gate reads it
    (`blocks`): a blocking regression makes it "regressed", else a blocking inconclusive result
    "inconclusive". Otherwise it is the verdict of the metric the change's expected result
    names, else of the first gating or critical metric, else of the first metric. An HTTP
    profile's per-endpoint results only speak when they block.
    """
    judged = [(r, result_metric(policy, r)) for r in results if r.get("metric")]
    blocking = [(r, m) for r, m in judged if blocks(r, m)]
    chosen = next(((r, m) for r, m in blocking if r.get("verdict") == "regressed"), None)
    chosen = chosen or (blocking[0] if blocking else None)
    if chosen is None:
        overall = [(r, m) for r, m in judged if not r.get("endpoint")]
        preferred = [
            *((r, m) for r, m in overall if expected_metric and m.key == expected_metric),
            *((r, m) for r, m in overall if m.role is not Role.INFORMATIONAL),
            *overall,
        ]
        chosen = preferred[0] if preferred else None
    if chosen is None:
        return {"verdict": "inconclusive", "metric": "", "label": "", "change_pct": None}
    result, metric = chosen
    return {
        "verdict": result.get("verdict") or "inconclusive",
        "metric": metric.key,
        "label": metric.label,
        "change_pct": result.get("change_pct"),
    }


def undecided(result: dict[str, Any], metric: Metric) -> str:
    """Why more runs could still settle this gating metric, or "" when it is decided.

    Decided means the 95 % interval of the change lies wholly on one side of the smallest
    effect that matters (wholly better than it, or wholly worse). The noise-too-high case of
    "inconclusive" is undecided too; failed runs are not (more runs would not mend them).
    Critical and informational metrics never ask for more runs: a critical one blocks on a
    significant regression at whatever count was run, and an A/A measurement would otherwise
    always run to the maximum, its interval straddling zero by design.
    """
    if metric.role is not Role.GATING:
        return ""
    if result.get("verdict") == "inconclusive":
        noise, limit = result.get("noise_pct"), result.get("max_noise_pct")
        if noise is not None and limit is not None and noise > limit:
            return f"noise {noise:.0f} % is too high"
        return ""
    _change, low, high = harm_pct(result)
    if low is None or high is None:
        return ""
    p_value, alpha = result.get("p_value"), result.get("alpha")
    if (
        result.get("verdict") == "no detectable change"
        and (low > 0 or high < 0)
        and p_value is not None
        and alpha is not None
        and p_value >= alpha
    ):
        # The 95 % interval sees a change that this look's share of alpha cannot confirm yet.
        return f"p = {p_value:.2g} has not reached this look's level {alpha:.2g}"
    threshold = metric.smallest_effect_pct
    if low <= threshold <= high:
        return (
            f"95 % CI {signed_pct(low, unit=False)}…{signed_pct(high)} straddles the "
            f"smallest effect {signed_pct(threshold)}"
        )
    return ""


def blocker_text(result: dict[str, Any], metric: Metric, *, measurement: str) -> str:
    """The refusal for one blocking verdict, in words: the label, never the key."""
    if result.get("verdict") == "inconclusive":
        why = result.get("reason", "").removeprefix("inconclusive: ")
        return f"{metric.label} is inconclusive in {measurement} ({why}); measure again."
    change, _low, _high = harm_pct(result)
    if change is None:
        return f"{metric.label} regressed in {measurement}."
    # Shown as the metric moved (a fall of throughput reads as a negative change).
    shown = (result["change_pct"], result["ci_low_pct"], result["ci_high_pct"])
    text = (
        f"{metric.label} regressed {signed_pct(shown[0])} "
        f"(95 % CI {signed_pct(shown[1], unit=False)}…{signed_pct(shown[2])}) in {measurement}"
    )
    if metric.role is Role.GATING:
        text += f"; the smallest effect that matters is {metric.smallest_effect_pct:g} %"
    else:
        text += "; it is critical: any regression blocks"
    return text + "."


def blocking_results(measurement) -> list[tuple[str, str]]:
    """(metric key, why in words) of each result that stands between the change and its
    release, judged with the profile's current metric policy (`blocks`)."""
    policy = policy_of(measurement.profile)
    where = f"measurement {measurement.pk} ({measurement.profile.name})"
    found = []
    for result in measurement.results or []:
        metric = result_metric(policy, result)
        if blocks(result, metric):
            text = blocker_text(result, metric, measurement=where)
            found.append((result["metric"], text))
    return found
