"""Before/after judgement of HTTP probes: latency tails, error and cache rates, queries, leaks.

Input: the generator's JSON documents (one per block) of each side. Output: an `HttpReport`
with a summary per side and per endpoint, one `HttpComparison` per metric (and endpoint), and
warnings. `HttpComparison` carries the same fields as `stats.Comparison` (``median_before`` and
``median_after`` hold each side's value of the metric, a p99 for ``latency_p99``), plus
``label`` and ``endpoint``, so the verdict engine reads both kinds alike.

How each metric is judged (scipy for every test; nothing hand-rolled):

* ``latency_p50/p95/p99`` — the after-minus-before difference of the percentile, with a 95 %
  bootstrap interval (`scipy.stats.bootstrap`, both sides resampled independently from their
  HDR histograms) and a two-sided bootstrap p-value (how often the resampled difference
  crosses zero). A p99 is only judged with at least 1,000 requests a side; a side whose
  generator fell behind its schedule makes every latency verdict inconclusive.
* ``error_rate`` and ``cache_hit_ratio`` — Fisher's exact test on the 2 x 2 table, with the
  difference's interval combined from scipy's Wilson intervals of each side (Newcombe's method).
* ``db_queries`` — per endpoint: the change of the mean count per request, a Mann-Whitney test
  and a bootstrap interval; one extra query per request is far above the half-query floor.
* ``rss_slope`` — bytes per 1,000 requests from Theil-Sen (`scipy.stats.theilslopes`) over the
  later half of each block's memory samples, after the warm-up: a cache that fills early and
  then stays flat has no slope there. A side leaks when the interval's lower bound clears the
  floor; the sides differ when their intervals do not overlap.
* ``server_peak_rss`` — the kernel's peak of each block, judged by `stats.compare` as command
  runs are (it needs five blocks a side).

Verdicts follow the house rule: improved/regressed only when the test is significant at
``alpha``, the 95 % interval excludes zero and the change clears the floor.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats as sps

from apps.measurements.stats import ALPHA, Comparison, Verdict, compare

from .generator import decode_histogram, new_histogram
from .plan import MIN_REQUESTS_FOR_P99

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2_000
PERCENTILES = {"latency_p50": 50.0, "latency_p95": 95.0, "latency_p99": 99.0}
# The smallest change called real, by metric: a relative floor (percent of the before value)
# and an absolute one, whichever is larger. Latency: 2 % or 0.1 ms (HDR resolution and timer
# jitter); rates: half a percentage point; queries: half a query per request; leak: 64 KiB per
# 1,000 requests. A healthy Python service's RSS still creeps by pages as handler threads, pools
# and interned objects settle (the sample service: 10-60 kB per 1,000 requests, with tight
# Theil-Sen intervals because most steps are zero), so the floor sits above that. Measured by
# tests/benchmarks/http_probe.py (20 probes of 5,000 requests each): the base and the
# bounded-cache revisions were called leaking 0 times each, a leak of 8 bytes of payload per
# request (about 55 B kept, with CPython's object header) 20 times.
DEFAULT_FLOORS: dict[str, tuple[float, float]] = {
    "latency_p50": (2.0, 0.1),
    "latency_p95": (2.0, 0.1),
    "latency_p99": (2.0, 0.1),
    "error_rate": (0.0, 0.5),
    "cache_hit_ratio": (0.0, 0.5),
    "db_queries": (0.0, 0.5),
    "rss_slope": (0.0, 64 * 1024),
    "server_peak_rss": (0.1, 0.0),
}
LEAK_FLOOR = DEFAULT_FLOORS["rss_slope"][1]
# A leak needs a trend: fewer samples in the fitted half and Theil-Sen's interval is too wide.
MIN_MEMORY_SAMPLES = 8
# Cache states this far apart (percentage points) make a latency change suspect.
CACHE_WARNING_POINTS = 10.0

METRICS: dict[str, tuple[str, str, bool]] = {
    # key: (label, unit, lower_is_better)
    "latency_p50": ("latency p50", "ms", True),
    "latency_p95": ("latency p95", "ms", True),
    "latency_p99": ("latency p99", "ms", True),
    "error_rate": ("error rate", "%", True),
    "cache_hit_ratio": ("cache hit ratio", "%", False),
    "db_queries": ("DB queries per request", "queries", True),
    "rss_slope": ("RSS growth per 1,000 requests", "B", True),
    "server_peak_rss": ("server peak RSS", "B", True),
}
ERROR_KINDS = ("5xx", "connection", "timeout", "wrong_status")


@dataclasses.dataclass(frozen=True)
class HttpComparison(Comparison):
    """One metric of one endpoint (``endpoint`` None: all requests), before vs after: a
    `stats.Comparison` that also names its label and endpoint."""

    label: str = ""
    endpoint: str | None = None

    @property
    def direction(self) -> str:
        return "lower" if self.lower_is_better else "higher"

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "direction": self.direction}


@dataclasses.dataclass
class EndpointSummary:
    """What one side's requests to one endpoint did. Latencies in milliseconds."""

    count: int
    p50: float | None
    p95: float | None
    p99: float | None
    errors: dict[str, int]
    error_rate: float | None
    cache: dict[str, int]
    cache_hit_ratio: float | None
    db_mean: float | None
    db_max: int | None
    db_unknown: int
    histogram: str


@dataclasses.dataclass
class SideSummary:
    blocks: int
    requests: int
    duration_s: float
    throughput: float
    lag_p50_ms: float | None
    lag_p99_ms: float | None
    late_fraction: float
    inconclusive: list[str]
    failures: list[str]
    endpoints: dict[str, EndpointSummary]
    total: EndpointSummary
    peak_rss: float | None
    rss_slope: tuple[float, float, float] | None  # bytes per 1,000 requests: slope, low, high
    leak: bool
    memory_samples: int


@dataclasses.dataclass
class HttpReport:
    before: SideSummary
    after: SideSummary
    comparisons: list[HttpComparison]
    warnings: list[str]

    def comparison(self, metric: str, endpoint: str | None = None) -> HttpComparison | None:
        for item in self.comparisons:
            if item.metric == metric and item.endpoint == endpoint:
                return item
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "sides": {
                "before": dataclasses.asdict(self.before),
                "after": dataclasses.asdict(self.after),
            },
            "comparisons": [c.as_dict() for c in self.comparisons],
            "warnings": list(self.warnings),
        }


# --------------------------------------------------------------------------------------------
# Sides


class _Pooled:
    """One endpoint's (or all requests') counts and histogram over a side's blocks."""

    def __init__(self) -> None:
        self.histogram = new_histogram()
        self.count = 0
        self.errors: Counter[str] = Counter()
        self.cache: Counter[str] = Counter()
        self.db: Counter[str] = Counter()

    def add(self, data: Mapping[str, Any]) -> None:
        self.histogram.add(decode_histogram(data["histogram"]))
        self.count += int(data["count"])
        self.errors.update(data.get("errors", {}))
        self.cache.update(data.get("cache", {}))
        self.db.update(data.get("db_queries", {}))

    def latencies_ms(self) -> np.ndarray:
        """The recorded latencies, each at its HDR bucket's value, in milliseconds."""
        values, counts = [], []
        for item in self.histogram.get_recorded_iterator():
            values.append(self.histogram.get_highest_equivalent_value(item.value_iterated_to))
            counts.append(item.count_at_value_iterated_to)
        return np.repeat(np.asarray(values, dtype=float) / 1000.0, counts)

    def query_counts(self) -> np.ndarray:
        known = {int(k): v for k, v in self.db.items() if k != "unknown"}
        return np.repeat(np.asarray(list(known), dtype=float), list(known.values()))

    def summary(self) -> EndpointSummary:
        total = self.histogram.get_total_count()
        errors = sum(self.errors.values())
        hits, misses = self.cache.get("hit", 0), self.cache.get("miss", 0)
        queries = self.query_counts()

        def pct(q: float) -> float | None:
            return self.histogram.get_value_at_percentile(q) / 1000.0 if total else None

        return EndpointSummary(
            count=self.count,
            p50=pct(50),
            p95=pct(95),
            p99=pct(99) if total >= MIN_REQUESTS_FOR_P99 else None,
            errors=dict(self.errors),
            error_rate=errors / self.count * 100.0 if self.count else None,
            cache=dict(self.cache),
            cache_hit_ratio=hits / (hits + misses) * 100.0 if hits + misses else None,
            db_mean=float(queries.mean()) if queries.size else None,
            db_max=int(queries.max()) if queries.size else None,
            db_unknown=int(self.db.get("unknown", 0)),
            histogram=self.histogram.encode().decode("ascii"),
        )


class _Side:
    def __init__(self, results: Sequence[Mapping[str, Any]]) -> None:
        self.results = [r for r in results if r]
        self.endpoints: dict[str, _Pooled] = {}
        self.total = _Pooled()
        self.lag = new_histogram()
        for result in self.results:
            for name, data in result.get("endpoints", {}).items():
                self.endpoints.setdefault(name, _Pooled()).add(data)
            self.total.add(result["total"])
            self.lag.add(decode_histogram(result["lag"]["histogram"]))
        self.inconclusive = [r["inconclusive"] for r in self.results if r.get("inconclusive")]
        self.failures = [r["failure"] for r in self.results if r.get("failure")]
        self.peaks = [
            float(r["memory"]["peak_rss"])
            for r in self.results
            if r.get("memory", {}).get("peak_rss")
        ]
        self.slope = _rss_slope([r.get("memory", {}).get("samples", []) for r in self.results])

    def summary(self, leak_floor: float) -> SideSummary:
        duration = sum(float(r.get("duration_s", 0.0)) for r in self.results)
        done = sum(int(r.get("requests_done", 0)) for r in self.results)
        sends = self.lag.get_total_count()
        late = sum(int(r["lag"].get("late", 0)) for r in self.results)
        slope = self.slope[:3] if self.slope else None
        return SideSummary(
            blocks=len(self.results),
            requests=done,
            duration_s=duration,
            throughput=done / duration if duration > 0 else 0.0,
            lag_p50_ms=self.lag.get_value_at_percentile(50) / 1000.0 if sends else None,
            lag_p99_ms=self.lag.get_value_at_percentile(99) / 1000.0 if sends else None,
            late_fraction=late / sends if sends else 0.0,
            inconclusive=self.inconclusive,
            failures=self.failures,
            endpoints={name: pooled.summary() for name, pooled in self.endpoints.items()},
            total=self.total.summary(),
            peak_rss=max(self.peaks) if self.peaks else None,
            rss_slope=slope,
            leak=bool(slope and slope[1] > leak_floor),
            memory_samples=self.slope[3] if self.slope else 0,
        )


def summarize(results: Sequence[Mapping[str, Any]], leak_floor: float = LEAK_FLOOR) -> SideSummary:
    """One side's summary from its blocks' results (one block: that block's own figures)."""
    return _Side(results).summary(leak_floor)


def _rss_slope(blocks: Sequence[Sequence[Sequence[float]]]) -> tuple[float, ...] | None:
    """Theil-Sen slope of RSS over requests, in bytes per 1,000 requests, with its 95 % interval,
    and the number of samples fitted.

    Each block is fitted on its later half only, so memory that grows while caches and pools fill
    at the start and then stays flat is not a trend. Blocks are centred on their own medians
    before pooling: every block starts a fresh process at its own RSS, and only the slope is
    shared.
    """
    xs, ys = [], []
    for samples in blocks:
        points = np.asarray(samples, dtype=float).reshape(-1, 2)
        if len(points) < 2:
            continue
        later = points[points[:, 0] >= np.median(points[:, 0])]
        xs.append(later[:, 0] - np.median(later[:, 0]))
        ys.append(later[:, 1] - np.median(later[:, 1]))
    if not xs:
        return None
    x, y = np.concatenate(xs), np.concatenate(ys)
    if len(x) < MIN_MEMORY_SAMPLES or np.ptp(x) == 0:
        return None
    slope, _intercept, low, high = sps.theilslopes(y, x, alpha=CONFIDENCE)
    return (slope * 1000.0, low * 1000.0, high * 1000.0, len(x))


# --------------------------------------------------------------------------------------------
# Comparisons


def compare_sides(
    before: Sequence[Mapping[str, Any]],
    after: Sequence[Mapping[str, Any]],
    *,
    floors: Mapping[str, tuple[float, float]] | None = None,
    alpha: float = ALPHA,
) -> HttpReport:
    """Judge the after side against the before side from the generator's results.

    ``floors`` overrides `DEFAULT_FLOORS` per metric: (percent of the before value, absolute
    minimum in the metric's unit).
    """
    floors = {**DEFAULT_FLOORS, **(floors or {})}
    b, a = _Side(before), _Side(after)
    leak_floor = floors["rss_slope"][1]
    sb, sa = b.summary(leak_floor), a.summary(leak_floor)
    judge = _Judge(floors, alpha)
    comparisons: list[HttpComparison] = []

    lag_reasons = [*sb.inconclusive, *sa.inconclusive]
    names = [None, *sorted(set(b.endpoints) & set(a.endpoints))]
    for name in names:
        pb = b.total if name is None else b.endpoints[name]
        pa = a.total if name is None else a.endpoints[name]
        comparisons += judge.latency(pb, pa, name, lag_reasons)
        comparisons.append(judge.rate("error_rate", pb, pa, name))
        cache = judge.rate("cache_hit_ratio", pb, pa, name)
        if cache is not None:
            comparisons.append(cache)
        if name is not None:
            queries = judge.queries(pb, pa, name)
            if queries is not None:
                comparisons.append(queries)
    comparisons = [c for c in comparisons if c is not None]
    if b.slope and a.slope:
        comparisons.append(judge.slope(b.slope, a.slope))
    if b.peaks and a.peaks:
        comparisons.append(judge.peak(b.peaks, a.peaks))

    report = HttpReport(before=sb, after=sa, comparisons=comparisons, warnings=[])
    report.warnings = _warnings(report)
    return report


def cache_warning(before_ratio: float, after_ratio: float, latency_change: float | None) -> str:
    """The sentence shown beside the latency verdict when the two sides' cache states differ."""
    if latency_change is None or latency_change == 0:
        what = "the latency comparison may be the cache's doing"
    else:
        what = f"the latency {'gain' if latency_change < 0 else 'loss'} may be the cache"
    return f"after served {after_ratio:.0f} % from cache, before {before_ratio:.0f} %: {what}"


def _warnings(report: HttpReport) -> list[str]:
    found = []
    hb, ha = report.before.total.cache_hit_ratio, report.after.total.cache_hit_ratio
    if hb is not None and ha is not None and abs(ha - hb) >= CACHE_WARNING_POINTS:
        latency = report.comparison("latency_p50")
        found.append(cache_warning(hb, ha, latency.change if latency else None))
    for side, summary in (("before", report.before), ("after", report.after)):
        found += [f"{side}: {reason}" for reason in summary.inconclusive]
        found += [f"{side}: {reason}" for reason in summary.failures]
    return found


class _Judge:
    def __init__(self, floors: Mapping[str, tuple[float, float]], alpha: float) -> None:
        self.floors = floors
        self.alpha = alpha

    def floor(self, metric: str, reference: float | None) -> float:
        pct, absolute = self.floors[metric]
        return max(pct / 100.0 * abs(reference or 0.0), absolute)

    def make(self, metric: str, endpoint: str | None, **fields: Any) -> HttpComparison:
        label, unit, lower = METRICS[metric]
        before = fields.get("median_before")

        def pct(value: float | None) -> float | None:
            if value is None or not before:
                return None
            return value / abs(before) * 100.0

        values: dict[str, Any] = dict.fromkeys(
            ("median_before", "median_after", "change", "ci_low", "ci_high", "p_value"),
        )
        values |= {"noise": None, "floor": None, "resolution": None, **fields}
        return HttpComparison(
            metric=metric,
            label=label if endpoint is None else f"{label} of {endpoint}",
            endpoint=endpoint,
            unit=unit,
            lower_is_better=lower,
            change_pct=pct(values["change"]),
            ci_low_pct=pct(values["ci_low"]),
            ci_high_pct=pct(values["ci_high"]),
            noise_pct=pct(values["noise"]),
            **values,
        )

    def decide(
        self,
        metric: str,
        endpoint: str | None,
        *,
        change: float,
        ci: tuple[float, float],
        p_value: float | None,
        floor: float,
        **fields: Any,
    ) -> HttpComparison:
        label, unit, lower = METRICS[metric]
        name = label if endpoint is None else f"{label} of {endpoint}"
        significant = (p_value is None or p_value < self.alpha) and (ci[0] > 0 or ci[1] < 0)
        evidence = f"(95 % CI {_fmt(ci[0], unit)} … {_fmt(ci[1], unit)}"
        evidence += f", p = {p_value:.2g})" if p_value is not None else ")"
        if significant and abs(change) >= floor:
            improved = (change < 0) == lower
            verdict = Verdict.IMPROVED if improved else Verdict.REGRESSED
            reason = f"{name} {'fell' if change < 0 else 'rose'} by {_fmt(abs(change), unit)} "
        else:
            verdict = Verdict.NO_CHANGE
            reason = f"no detectable change in {name}: {_fmt(change, unit, signed=True)} "
            if significant:
                reason += f"(below the floor of {_fmt(floor, unit)}) "
        return self.make(
            metric,
            endpoint,
            change=change,
            ci_low=ci[0],
            ci_high=ci[1],
            p_value=p_value,
            floor=floor,
            verdict=verdict,
            reason=reason + evidence,
            **fields,
        )

    def inconclusive(
        self, metric: str, endpoint: str | None, reason: str, **fields: Any
    ) -> HttpComparison:
        return self.make(
            metric,
            endpoint,
            verdict=Verdict.INCONCLUSIVE,
            reason=f"inconclusive: {reason}",
            **fields,
        )

    def latency(
        self, pb: _Pooled, pa: _Pooled, endpoint: str | None, lag_reasons: list[str]
    ) -> list[HttpComparison]:
        x, y = pb.latencies_ms(), pa.latencies_ms()
        counts = {"n_before": int(x.size), "n_after": int(y.size)}
        if x.size < 2 or y.size < 2:
            return [
                self.inconclusive(metric, endpoint, "no latencies on one side", **counts)
                for metric in PERCENTILES
            ]
        qs = list(PERCENTILES.values())
        values = {
            "before": np.percentile(x, qs),
            "after": np.percentile(y, qs),
        }
        result = _bootstrap_percentiles(x, y, qs)
        judged = []
        for i, metric in enumerate(PERCENTILES):
            fields = {
                **counts,
                "median_before": float(values["before"][i]),
                "median_after": float(values["after"][i]),
            }
            if lag_reasons:
                judged.append(self.inconclusive(metric, endpoint, lag_reasons[0], **fields))
                continue
            if metric == "latency_p99" and min(x.size, y.size) < MIN_REQUESTS_FOR_P99:
                judged.append(
                    self.inconclusive(
                        metric,
                        endpoint,
                        f"{min(x.size, y.size):,} requests on one side; a p99 needs at least "
                        f"{MIN_REQUESTS_FOR_P99:,}",
                        **fields,
                    )
                )
                continue
            change = fields["median_after"] - fields["median_before"]
            judged.append(
                self.decide(
                    metric,
                    endpoint,
                    change=change,
                    ci=(float(result["low"][i]), float(result["high"][i])),
                    p_value=float(result["p"][i]),
                    floor=self.floor(metric, fields["median_before"]),
                    **fields,
                )
            )
        return judged

    def rate(
        self, metric: str, pb: _Pooled, pa: _Pooled, endpoint: str | None
    ) -> HttpComparison | None:
        if metric == "error_rate":
            kb, nb = sum(pb.errors.values()), pb.count
            ka, na = sum(pa.errors.values()), pa.count
        else:
            kb, ka = pb.cache.get("hit", 0), pa.cache.get("hit", 0)
            nb, na = kb + pb.cache.get("miss", 0), ka + pa.cache.get("miss", 0)
            if nb == 0 or na == 0:
                return None
        fields = {"n_before": nb, "n_after": na}
        if nb == 0 or na == 0:
            return self.inconclusive(metric, endpoint, "no requests on one side", **fields)
        rb, ra = kb / nb * 100.0, ka / na * 100.0
        fields |= {"median_before": rb, "median_after": ra}
        p_value = float(sps.fisher_exact([[kb, nb - kb], [ka, na - ka]]).pvalue)
        low_b, high_b = _wilson(kb, nb)
        low_a, high_a = _wilson(ka, na)
        change = ra - rb
        # Newcombe's hybrid score interval for a difference of two proportions.
        ci = (
            change - math.hypot(ra - low_a, high_b - rb),
            change + math.hypot(high_a - ra, rb - low_b),
        )
        return self.decide(
            metric,
            endpoint,
            change=change,
            ci=ci,
            p_value=p_value,
            floor=self.floor(metric, rb),
            **fields,
        )

    def queries(self, pb: _Pooled, pa: _Pooled, endpoint: str) -> HttpComparison | None:
        x, y = pb.query_counts(), pa.query_counts()
        if x.size == 0 and y.size == 0:
            return None
        fields = {"n_before": int(x.size), "n_after": int(y.size)}
        if x.size < 2 or y.size < 2:
            return self.inconclusive(
                "db_queries", endpoint, "the service did not report queries on one side", **fields
            )
        fields |= {"median_before": float(x.mean()), "median_after": float(y.mean())}
        change = fields["median_after"] - fields["median_before"]
        if np.ptp(np.concatenate([x, y])) == 0:
            p_value, ci = 1.0, (0.0, 0.0)
        else:
            p_value = float(sps.mannwhitneyu(y, x, alternative="two-sided").pvalue)
            with warnings.catch_warnings():
                # Identical counts within a side make a degenerate but correct interval.
                warnings.simplefilter("ignore")
                boot = sps.bootstrap(
                    (x, y),
                    lambda a, b, axis=-1: np.mean(b, axis=axis) - np.mean(a, axis=axis),
                    n_resamples=BOOTSTRAP_RESAMPLES,
                    confidence_level=CONFIDENCE,
                    method="percentile",
                    vectorized=True,
                    rng=np.random.default_rng(0),
                )
            ci = (float(boot.confidence_interval.low), float(boot.confidence_interval.high))
        return self.decide(
            "db_queries",
            endpoint,
            change=change,
            ci=ci,
            p_value=p_value,
            floor=self.floor("db_queries", fields["median_before"]),
            **fields,
        )

    def slope(self, before: tuple[float, ...], after: tuple[float, ...]) -> HttpComparison:
        slope_b, low_b, high_b, n_b = before
        slope_a, low_a, high_a, n_a = after
        floor = self.floor("rss_slope", None)
        fields = {
            "n_before": int(n_b),
            "n_after": int(n_a),
            "median_before": slope_b,
            "median_after": slope_a,
            "change": slope_a - slope_b,
            # The widest difference the two intervals allow: conservative, never too narrow.
            "ci_low": low_a - high_b,
            "ci_high": high_a - low_b,
            "floor": floor,
        }
        leak_b, leak_a = low_b > floor, low_a > floor
        unit = "B"
        if leak_a and low_a > high_b:
            verdict = Verdict.REGRESSED
            reason = (
                f"after leaks {_fmt(slope_a, unit)} per 1,000 requests (95 % CI "
                f"{_fmt(low_a, unit)} … {_fmt(high_a, unit)}), before {_fmt(slope_b, unit)}"
            )
        elif leak_b and high_a < low_b:
            verdict = Verdict.IMPROVED
            reason = (
                f"before leaked {_fmt(slope_b, unit)} per 1,000 requests (95 % CI "
                f"{_fmt(low_b, unit)} … {_fmt(high_b, unit)}), after {_fmt(slope_a, unit)}"
                + ("" if leak_a else ", no leak")
            )
        else:
            verdict = Verdict.NO_CHANGE
            state = (
                "both leak"
                if leak_a and leak_b
                else "neither side leaks"
                if not (leak_a or leak_b)
                else "the intervals overlap"
            )
            reason = (
                f"no detectable change in RSS growth ({state}; floor {_fmt(floor, unit)} per "
                f"1,000 requests): before {_fmt(slope_b, unit)}, after {_fmt(slope_a, unit)}"
            )
        return self.make("rss_slope", None, verdict=verdict, reason=reason, **fields)

    def peak(self, before: list[float], after: list[float]) -> HttpComparison:
        pct, absolute = self.floors["server_peak_rss"]
        judged = compare(
            before,
            after,
            metric="server_peak_rss",
            unit="B",
            min_effect_pct=pct,
            min_effect=absolute,
        )
        fields = {
            name: getattr(judged, name)
            for name in (
                "n_before",
                "n_after",
                "median_before",
                "median_after",
                "change",
                "ci_low",
                "ci_high",
                "p_value",
                "noise",
                "floor",
                "resolution",
            )
        }
        return self.make(
            "server_peak_rss", None, verdict=judged.verdict, reason=judged.reason, **fields
        )


def _bootstrap_percentiles(x: np.ndarray, y: np.ndarray, qs: list[float]) -> dict[str, Any]:
    """95 % intervals and two-sided p-values of after-minus-before percentiles."""

    def statistic(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.percentile(b, qs, axis=axis) - np.percentile(a, qs, axis=axis)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant side is a degenerate, not a wrong, sample
        boot = sps.bootstrap(
            (x, y),
            statistic,
            n_resamples=BOOTSTRAP_RESAMPLES,
            confidence_level=CONFIDENCE,
            method="percentile",
            vectorized=True,
            batch=200,
            rng=np.random.default_rng(0),
        )
    distribution = np.asarray(boot.bootstrap_distribution).reshape(len(qs), -1)
    below = (distribution <= 0).mean(axis=1)
    above = (distribution >= 0).mean(axis=1)
    # The resampling p-value cannot go below one resample in BOOTSTRAP_RESAMPLES.
    p = np.clip(2 * np.minimum(below, above), 1.0 / BOOTSTRAP_RESAMPLES, 1.0)
    return {
        "low": np.atleast_1d(boot.confidence_interval.low),
        "high": np.atleast_1d(boot.confidence_interval.high),
        "p": p,
    }


def _wilson(k: int, n: int) -> tuple[float, float]:
    ci = sps.binomtest(k, n).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    return ci.low * 100.0, ci.high * 100.0


def _fmt(value: float, unit: str, *, signed: bool = False) -> str:
    sign = ("\u2212" if value < 0 else "+") if signed else ("\u2212" if value < 0 else "")
    magnitude = abs(value)
    if unit == "B":
        for factor, name in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB"), (1.0, "B")):
            if magnitude >= factor or factor == 1.0:
                return f"{sign}{magnitude / factor:.3g} {name}"
    if unit == "%":
        return f"{sign}{magnitude:.2g} points" if signed else f"{sign}{magnitude:.2f} %"
    return f"{sign}{magnitude:.3g} {unit}"
