"""Before/after statistics: one verdict per metric, and the check of a change's expected result.

Pure functions over plain numbers (no Django), so workers, views and tests share one rule.

How a metric is judged (DESIGN.md, "Measuring", steps 4-7):

* ``change`` is the Hodges-Lehmann shift (median of all after-minus-before differences) and its
  95 % interval is the Moses interval read off the same sorted differences. Both belong to the
  Mann-Whitney test that gives ``p_value``, so estimate, interval and test agree with each other
  and make no normality assumption. A bootstrap was the alternative; at ten runs a side it
  resamples too few distinct values to give a trustworthy interval and needs a seed besides.
* ``noise`` is the robust run-to-run spread (pooled MAD, scaled to a standard deviation), so one
  slow outlier run neither hides nor fakes a change.
* ``floor`` is the smallest change that may be called real: ``k`` times the noise, a minimum
  relative effect, and an optional absolute minimum, whichever is largest. The noise term makes
  the floor follow the profile (tens of kB for the RSS of a small command, percents for wall
  time) instead of a fixed megabyte that would hide every small fix.
* improved/regressed only when p < alpha, the interval excludes zero and |change| >= floor.
  Otherwise "no detectable change", with the resolution: the smallest shift these runs would have
  caught 19 times out of 20. "inconclusive" when too many runs failed, too few succeeded, or the
  noise is so high that a "no change" would say nothing.

Defaults (alpha 0.01, k 1, 0.1 %) were chosen by simulation (tests/measurements/test_stats.py):
on same-distribution samples at 10 runs a side they give about 1 % false verdicts per metric
(the target is at most 1 in 20), and they catch a 256 KiB peak-RSS shift under 67 kB noise in
every simulated measurement (target 19 in 20).

Adaptive run counts look at the verdicts more than once; each look tests at its share of alpha
under a group-sequential design (Lan-DeMets alpha spending, Pocock-type function), see
`nominal_alphas`. Which metric is judged how (direction, role, smallest effect that matters)
is the profile's metric policy, `apps.measurements.metrics`.

Expected results use a deliberately small grammar, see `parse_expectation`.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from statistics import NormalDist
from typing import Any, Literal

from apps.core.lazy import LazyModule

from . import metrics as metric_vocabulary

# Web processes import this module for verdicts and expectations, and rarely compute: numpy and
# scipy load at the first computation, which is a worker's (tests/core/test_lean_web.py).
np = LazyModule("numpy")
integrate = LazyModule("scipy.integrate")
optimize = LazyModule("scipy.optimize")
sps = LazyModule("scipy.stats")

# Per metric, not per measurement: a measurement judges four or more metrics, so 5 % per metric
# would flag one in five A/A checks. 1 % keeps A/A noise well under one false verdict in twenty
# while a 10-run side can still reach p ~ 1e-5.
ALPHA = 0.01
# Level of the reported interval of the change, fixed so every change reads the same way.
CONFIDENCE = 0.95
# One run-to-run standard deviation: a shift smaller than the scatter of a single run is not
# called a fix even if many runs make it significant.
NOISE_FLOOR_K = 1.0
# In percent of the before median. Only binds when a metric has (almost) no noise, e.g. counts;
# kept small so the 0.1 % RSS resolution found in research is not thrown away.
MIN_EFFECT_PCT = 0.1
# The resolution is the shift detected with this probability: 19 in 20.
POWER = 0.95
# Fewer runs per side than this cannot reach p < ALPHA with an exact rank test at all (4 + 4
# gives p >= 0.029), so a verdict would be "no change" by construction.
MIN_RUNS = 5
# One failed run in twenty is tolerated as a flake; more means the revision or the host is
# broken, and the runs that survived are a biased sample of it.
MAX_FAILED_FRACTION = 0.05
# Above this spread (percent of the before median) the resolution at usual run counts is
# worse than ~50 %, so "no detectable change" would be meaningless.
MAX_NOISE_PCT = 25.0

# Normal quantiles come from the standard library: scipy's frozen-distribution machinery costs
# more than the whole rank test, and the A/A simulations call this thousands of times.
_NORMAL = NormalDist()
# Normal-consistent scale factors: MAD * 1.4826 and mean absolute deviation * 1.2533 both
# estimate the standard deviation of normal data.
_MAD_SCALE = 1.0 / _NORMAL.inv_cdf(0.75)
_MEAN_AD_SCALE = math.sqrt(math.pi / 2.0)
# The Hodges-Lehmann shift's variance is pi/3 times that of the difference of means (its
# efficiency under normal errors is 3/pi = 0.955).
_HL_VARIANCE_FACTOR = math.pi / 3.0
# Sorting n1*n2 differences is the costly step; above this a fixed-seed random subsample of each
# side keeps the interval valid (only wider) and the memory bounded. HTTP probes have >= 1000
# requests a side.
_MAX_PAIRS = 4_000_000
# Exact rank-test p-values: scipy's exact null distribution when there are no ties, a complete
# permutation enumeration (also exact, and correct for ties) when that is cheap.
_EXACT_MAX_PAIRS = 10_000
_PERMUTATION_MAX = 1_000


class Verdict(StrEnum):
    """The outcome for one metric of one before/after measurement."""

    IMPROVED = "improved"
    REGRESSED = "regressed"
    NO_CHANGE = "no detectable change"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Comparison:
    """Everything said about one metric: the numbers, the verdict, and one sentence of why.

    Absolute values are in ``unit``; ``*_pct`` values are percent of ``median_before`` and None
    when that median is zero. Statistics are None when a side has no runs at all.
    """

    metric: str
    unit: str
    lower_is_better: bool
    n_before: int
    n_after: int
    median_before: float | None
    median_after: float | None
    change: float | None
    change_pct: float | None
    ci_low: float | None
    ci_high: float | None
    ci_low_pct: float | None
    ci_high_pct: float | None
    p_value: float | None
    noise: float | None
    noise_pct: float | None
    floor: float | None
    resolution: float | None
    verdict: Verdict
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: plain floats, the verdict as its text, non-finite numbers as None."""
        data = asdict(self)
        data["verdict"] = self.verdict.value
        for key, value in data.items():
            if isinstance(value, float):
                data[key] = float(value) if math.isfinite(value) else None
        return data


def canonical_metric(name: str) -> str:
    """A metric's storage key: aliases and labels mapped, else lowercase_with_underscores."""
    return metric_vocabulary.canonical_key(name)


def noise_floor(
    noise: float,
    reference: float,
    *,
    k: float = NOISE_FLOOR_K,
    min_effect_pct: float = MIN_EFFECT_PCT,
    min_effect: float = 0.0,
) -> float:
    """The smallest absolute change that may be called real around ``reference`` (a median)."""
    return float(max(k * noise, min_effect_pct / 100.0 * abs(reference), min_effect))


def smallest_detectable(
    noise: float,
    n: int,
    *,
    n_after: int | None = None,
    reference: float = 0.0,
    alpha: float = ALPHA,
    k: float = NOISE_FLOOR_K,
    min_effect_pct: float = MIN_EFFECT_PCT,
    min_effect: float = 0.0,
) -> float:
    """The resolution: the smallest true shift caught in 19 of 20 measurements of ``n`` runs a side.

    Two things must happen for a shift to be called: the rank test must reject, which takes
    about (t_alpha/2 + t_power) standard errors of the shift, and the estimate must clear the
    floor, which takes the floor plus t_power standard errors. The larger of the two is the
    resolution. ``noise`` is the run-to-run standard deviation (as `compare` measures it, or from
    an A/A calibration); ``reference`` is the before median the relative floor applies to.
    Returns infinity below two runs a side.
    """
    n_before = n
    n_after = n if n_after is None else n_after
    if n_before < 2 or n_after < 2:
        return math.inf
    se = noise * math.sqrt(_HL_VARIANCE_FACTOR * (1.0 / n_before + 1.0 / n_after))
    # Student quantiles rather than normal ones: the noise is itself estimated from these few
    # runs. With them the formula lands within a few percent of the simulated 19-in-20 shift.
    df = n_before + n_after - 2
    t_alpha = _t_quantile(1.0 - alpha / 2.0, df)
    t_power = _t_quantile(POWER, df)
    floor = noise_floor(noise, reference, k=k, min_effect_pct=min_effect_pct, min_effect=min_effect)
    return float(max((t_alpha + t_power) * se, floor + t_power * se))


@functools.lru_cache(maxsize=256)
def _t_quantile(q: float, df: int) -> float:
    return float(sps.t.ppf(q, df))


def compare(
    before: Sequence[float],
    after: Sequence[float],
    *,
    metric: str,
    unit: str,
    lower_is_better: bool = True,
    alpha: float = ALPHA,
    min_effect_pct: float = MIN_EFFECT_PCT,
    min_effect: float = 0.0,
    k: float = NOISE_FLOOR_K,
    failed_runs: int = 0,
    calibrated_noise: float | None = None,
    max_noise_pct: float | None = MAX_NOISE_PCT,
    label: str | None = None,
) -> Comparison:
    """Judge one metric from the successful runs of each side.

    ``failed_runs`` counts runs of either side that produced no value. ``calibrated_noise`` is
    the profile's noise from an A/A check: the floor and resolution use the larger of it and
    this measurement's own noise, so a quiet pair of samples cannot shrink the floor below what
    the profile is known to scatter. ``max_noise_pct=None`` disables the "noise too high" rule
    for metrics whose median sits near zero (slopes), where a relative spread means nothing.
    Raises ValueError for non-finite values.
    """
    x = np.asarray(before, dtype=float)
    y = np.asarray(after, dtype=float)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError(f"{metric}: samples must be finite numbers")
    label = label or metric_vocabulary.label_of(metric)
    n_x, n_y = len(x), len(y)
    fields: dict[str, Any] = {
        "metric": metric,
        "unit": unit,
        "lower_is_better": lower_is_better,
        "n_before": n_x,
        "n_after": n_y,
    }

    if n_x == 0 or n_y == 0:
        return Comparison(
            **fields,
            **dict.fromkeys(_STAT_FIELDS),
            verdict=Verdict.INCONCLUSIVE,
            reason=f"inconclusive: no successful runs {'before' if n_x == 0 else 'after'}",
        )

    median_x = float(np.median(x))
    median_y = float(np.median(y))
    change, ci = _hodges_lehmann(x, y)
    if ci is not None and x.min() >= 0 and y.min() >= 0:
        # A quantity that cannot be negative (a time, a size) cannot fall by more than all of
        # it: the interval's far end is clamped to what is possible.
        change = max(change, -median_x)
        ci = (max(ci[0], -median_x), max(ci[1], -median_x))
    p_value = _rank_test(x, y)
    noise = _pooled_noise(x, y)
    effective_noise = max(noise, calibrated_noise or 0.0)
    floor = noise_floor(
        effective_noise, median_x, k=k, min_effect_pct=min_effect_pct, min_effect=min_effect
    )
    resolution = smallest_detectable(
        effective_noise,
        n_x,
        n_after=n_y,
        reference=median_x,
        alpha=alpha,
        k=k,
        min_effect_pct=min_effect_pct,
        min_effect=min_effect,
    )

    def pct(value: float | None) -> float | None:
        if value is None or median_x == 0:
            return None
        return value / abs(median_x) * 100.0

    ci_low, ci_high = ci if ci is not None else (None, None)
    fields |= {
        "median_before": median_x,
        "median_after": median_y,
        "change": change,
        "change_pct": pct(change),
        "ci_low": ci_low,
        "ci_high": ci_high,
        "ci_low_pct": pct(ci_low),
        "ci_high_pct": pct(ci_high),
        "p_value": p_value,
        "noise": noise,
        "noise_pct": pct(noise),
        "floor": floor,
        "resolution": resolution if math.isfinite(resolution) else None,
    }
    text = _Text(label, unit, median_x)

    attempted = n_x + n_y + failed_runs
    if failed_runs > MAX_FAILED_FRACTION * attempted:
        return Comparison(
            **fields,
            verdict=Verdict.INCONCLUSIVE,
            reason=(
                f"inconclusive: {failed_runs} of {attempted} runs failed "
                f"(at most {MAX_FAILED_FRACTION * 100:.0f} % may fail)"
            ),
        )
    if min(n_x, n_y) < MIN_RUNS:
        return Comparison(
            **fields,
            verdict=Verdict.INCONCLUSIVE,
            reason=(
                f"inconclusive: {n_x} runs before and {n_y} after; "
                f"at least {MIN_RUNS} a side are needed"
            ),
        )

    significant = p_value < alpha and ci is not None and (ci[0] > 0 or ci[1] < 0)
    evidence = f"({text.interval(ci)}), p = {_format_p(p_value)}"
    if significant and abs(change) >= floor:
        improved = (change < 0) == lower_is_better
        return Comparison(
            **fields,
            verdict=Verdict.IMPROVED if improved else Verdict.REGRESSED,
            reason=f"{label} {'fell' if change < 0 else 'rose'} {text.signed(change)} {evidence}",
        )

    noise_pct = fields["noise_pct"]
    if max_noise_pct is not None and noise_pct is not None and noise_pct > max_noise_pct:
        return Comparison(
            **fields,
            verdict=Verdict.INCONCLUSIVE,
            reason=(
                f"inconclusive: {label} scatters {noise_pct:.0f} % from run to run "
                f"(more than {max_noise_pct:.0f} %), too much to rule a change in or out"
            ),
        )
    runs = f"{n_x} runs" if n_x == n_y else f"{n_x}/{n_y} runs"
    reason = (
        f"no detectable change in {label} (resolution {text.magnitude(resolution)} at {runs}); "
        f"shift {text.signed(change)} {evidence}"
    )
    if significant:
        reason += f"; significant, but below the floor of {text.magnitude(floor)}"
    return Comparison(**fields, verdict=Verdict.NO_CHANGE, reason=reason)


_STAT_FIELDS = (
    "median_before",
    "median_after",
    "change",
    "change_pct",
    "ci_low",
    "ci_high",
    "ci_low_pct",
    "ci_high_pct",
    "p_value",
    "noise",
    "noise_pct",
    "floor",
    "resolution",
)


def _hodges_lehmann(x: np.ndarray, y: np.ndarray) -> tuple[float, tuple[float, float] | None]:
    """The shift after - before and its Moses interval at `CONFIDENCE`.

    The interval's ends are order statistics of the pairwise differences whose rank comes from
    the Mann-Whitney null distribution; scipy has the test but not this inversion. The normal
    approximation of the critical rank matches the exact tables from five runs a side (e.g. 3rd
    and 23rd of 25 at 5 + 5, 24th and 77th of 100 at 10 + 10). None when the runs are too few
    for any finite interval.
    """
    if len(x) * len(y) > _MAX_PAIRS:
        rng = np.random.default_rng(0)
        side = math.isqrt(_MAX_PAIRS)
        x = rng.choice(x, size=min(len(x), side), replace=False)
        y = rng.choice(y, size=min(len(y), side), replace=False)
    diffs = np.sort(np.subtract.outer(y, x), axis=None)
    m = diffs.size
    shift = float(np.median(diffs))
    n_x, n_y = len(x), len(y)
    z = _NORMAL.inv_cdf(0.5 + CONFIDENCE / 2.0)
    rank = math.floor(m / 2.0 - z * math.sqrt(n_x * n_y * (n_x + n_y + 1) / 12.0))
    if rank < 1:
        return shift, None
    return shift, (float(diffs[rank - 1]), float(diffs[m - rank]))


def _rank_test(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided Mann-Whitney p-value, exact where that is affordable."""
    if np.ptp(np.concatenate([x, y])) == 0:
        # All values equal: nothing to rank, and the asymptotic formula divides by zero.
        return 1.0
    ties = len(np.unique(np.concatenate([x, y]))) < len(x) + len(y)
    if not ties and len(x) * len(y) <= _EXACT_MAX_PAIRS:
        method: Any = "exact"
    elif ties and math.comb(len(x) + len(y), len(x)) <= _PERMUTATION_MAX:
        # Page-sized RSS values tie often; at five or six runs a side the tie-corrected normal
        # approximation cannot reach p < 0.01 even for complete separation, the enumeration can.
        method = sps.PermutationMethod(n_resamples=math.inf)
    else:
        method = "asymptotic"
    result = sps.mannwhitneyu(y, x, alternative="two-sided", method=method)
    return float(min(1.0, result.pvalue))


def _pooled_noise(x: np.ndarray, y: np.ndarray) -> float:
    """Run-to-run standard deviation, robustly: MAD of both sides about their own medians.

    Centring each side on its own median keeps a real shift out of the noise estimate. When more
    than half the runs tie (a count, or RSS that rarely moves a page) the MAD is zero although
    the runs do scatter; the mean absolute deviation still sees that.
    """
    residuals = np.abs(np.concatenate([x - np.median(x), y - np.median(y)]))
    mad = float(np.median(residuals)) * _MAD_SCALE
    if mad > 0:
        return mad
    return float(np.mean(residuals)) * _MEAN_AD_SCALE


def _format_p(p: float) -> str:
    if p < 0.0001:
        return f"{p:.1e}"
    return f"{p:.2g}" if p < 0.01 else f"{p:.2f}"


# Binary prefixes, as everywhere in the product: a page is 4 KiB, and RSS moves in pages.
_SCALES: dict[str, tuple[tuple[float, str], ...]] = {
    "B": ((2.0**30, "GiB"), (2.0**20, "MiB"), (2.0**10, "KiB"), (1.0, "B")),
    "s": ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")),
}
_SCALES["bytes"] = _SCALES["B"]


class _Text:
    """Formats the numbers of one metric for the reason sentence."""

    def __init__(self, label: str, unit: str, reference: float) -> None:
        self.label = label
        self.unit = unit
        self.reference = reference

    def absolute(self, value: float) -> str:
        for factor, name in _SCALES.get(self.unit, ()):
            if abs(value) >= factor or factor == _SCALES[self.unit][-1][0]:
                return f"{abs(value) / factor:.3g} {name}"
        return f"{abs(value):.4g} {self.unit}".rstrip()

    def _pct(self, value: float) -> float | None:
        return None if self.reference == 0 else value / abs(self.reference) * 100.0

    def size(self, value: float) -> str:
        """Unsigned, relative when possible: "12.3 %" or "by 3 queries"."""
        pct = self._pct(value)
        return f"{_number(abs(pct))} %" if pct is not None else f"by {self.absolute(value)}"

    def signed(self, value: float) -> str:
        pct = self._pct(value)
        if pct is not None:
            return f"{_sign(value)}{_number(abs(pct))} % ({_sign(value)}{self.absolute(value)})"
        return f"{_sign(value)}{self.absolute(value)}"

    def magnitude(self, value: float) -> str:
        pct = self._pct(value)
        absolute = self.absolute(value)
        return f"{_number(abs(pct))} % / {absolute}" if pct is not None else absolute

    def interval(self, ci: tuple[float, float] | None) -> str:
        if ci is None:
            return "no finite 95 % CI"
        low, high = (self._pct(v) for v in ci)
        if low is not None and high is not None:
            return f"95 % CI {_sign(low)}{_number(abs(low))} … {_sign(high)}{_number(abs(high))} %"
        return (
            f"95 % CI {_sign(ci[0])}{self.absolute(ci[0])} … {_sign(ci[1])}{self.absolute(ci[1])}"
        )


def _sign(value: float) -> str:
    # U+2212, the typographic minus: the reason is read by people, not parsed.
    return "\u2212" if value < 0 else "+" if value > 0 else ""


def _number(value: float) -> str:
    # Sub-percent RSS changes are the interesting ones; one decimal would print them as 0.1.
    return f"{value:.2f}" if value < 1 else f"{value:.1f}"


# ---------------------------------------------------------------------------------------------
# Adaptive run counts: a group-sequential design with alpha spending

# Runs per side at which a measurement looks at its verdicts: the planned runs, then one more
# block at a time up to the profile's maximum. More looks than this spend too little alpha each.
MAX_LOOKS = 8
# Grid points per look of the recursive integration: the nominal levels come out right to
# about six digits (checked against scipy's multivariate normal CDF in the tests), in
# milliseconds even at MAX_LOOKS.
_GRID_POINTS = 801


def look_sizes(*, planned: int, block: int, maximum: int) -> tuple[int, ...]:
    """Runs per side at each look: ``planned``, ``planned + block``, ... capped at ``maximum``."""
    sizes = [planned]
    while sizes[-1] < maximum and block > 0 and len(sizes) < MAX_LOOKS:
        sizes.append(min(sizes[-1] + block, maximum))
    return tuple(sizes)


def pocock_spending(t: float, alpha: float = ALPHA) -> float:
    """Lan-DeMets Pocock-type alpha spending: the error allowed by information fraction ``t``."""
    return alpha * math.log(1.0 + (math.e - 1.0) * min(max(t, 0.0), 1.0))


@functools.lru_cache(maxsize=64)
def nominal_alphas(sizes: tuple[int, ...], alpha: float = ALPHA) -> tuple[float, ...]:
    """The two-sided level each look's test must reach so that all looks together err <= alpha.

    Group-sequential design with **Lan-DeMets alpha spending, Pocock-type spending function**
    ``alpha(t) = alpha * ln(1 + (e - 1) t)``, where ``t`` is the information fraction (runs
    per side so far over the maximum). The boundary ``c_k`` of look k solves

        P(|Z_1| < c_1, ..., |Z_{k-1}| < c_{k-1}, |Z_k| >= c_k) = alpha(t_k) - alpha(t_{k-1})

    with the test statistics jointly normal, corr(Z_i, Z_j) = sqrt(t_i / t_j) (the canonical
    joint distribution of a statistic computed on growing samples, which the rank test follows
    asymptotically). The probabilities come from the recursive numerical integration of
    Armitage, McPherson and Rowe (1969), as in gsDesign: the density of the score
    ``S_k = Z_k sqrt(t_k)`` over the paths that never crossed is carried from look to look on
    a grid (its increments are independent normals), and Brent's method finds each ``c_k``.
    The nominal level is 2 (1 - Phi(c_k)).

    Pocock-type rather than O'Brien-Fleming-type: O'Brien-Fleming spends almost nothing early
    (about 3e-7 at a first look of 10 of 40 runs for alpha 0.01), below the smallest p-value an
    exact rank test of 10 + 10 runs can reach (1.1e-5), so no planned-size measurement could
    ever give a verdict. Pocock-type spends evenly: at 10/20/30/40 runs the levels are about
    0.0036, 0.0033, 0.0032, 0.0031 for alpha 0.01. One look (no adaptive runs) gets alpha.
    """
    if not sizes:
        return ()
    fractions = np.asarray(sizes, dtype=float) / sizes[-1]
    spent = [pocock_spending(t, alpha) for t in fractions]
    norm = sps.norm
    first = spent[0]
    bound = float(norm.isf(first / 2.0))
    levels = [first]
    half = bound * math.sqrt(fractions[0])
    grid = np.linspace(-half, half, _GRID_POINTS)
    density = norm.pdf(grid, scale=math.sqrt(fractions[0]))
    survive = 1.0 - first
    for k in range(1, len(fractions)):
        increment = spent[k] - spent[k - 1]
        step = math.sqrt(fractions[k] - fractions[k - 1])
        root = math.sqrt(fractions[k])

        def stay(c: float, grid=grid, density=density, step=step, root=root) -> float:
            # Paths inside so far that stay inside at this look: the normal increment keeps
            # S_k within +-c sqrt(t_k), integrated over the surviving density.
            inside = norm.cdf((c * root - grid) / step) - norm.cdf((-c * root - grid) / step)
            return float(integrate.trapezoid(density * inside, grid))

        bound = float(
            optimize.brentq(
                lambda c, before=survive, increment=increment, stay=stay: (
                    before - stay(c) - increment
                ),
                0.5,
                12.0,
                xtol=1e-9,
            )
        )
        survive = stay(bound)
        half = bound * root
        new_grid = np.linspace(-half, half, _GRID_POINTS)
        kernel = norm.pdf((new_grid[:, None] - grid[None, :]) / step) / step
        density = integrate.trapezoid(kernel * density[None, :], grid, axis=1)
        grid = new_grid
        levels.append(2.0 * float(norm.sf(bound)))
    return tuple(levels)


def look_alpha(n: int, *, planned: int, block: int, maximum: int, alpha: float = ALPHA) -> float:
    """The nominal level of the look at ``n`` runs per side, under the profile's design."""
    sizes = look_sizes(planned=planned, block=block, maximum=maximum)
    if len(sizes) == 1:
        return alpha
    # The look just past the last one planned (a measurement that lost runs) uses the last level.
    index = sum(1 for s in sizes if s <= n) - 1
    return nominal_alphas(sizes, alpha)[max(index, 0)]


def outliers(values: Sequence[float], *, k: float = 3.5, min_relative: float = 0.02) -> list[bool]:
    """Which values lie more than ``k`` robust standard deviations (MAD) from their median, and
    more than ``min_relative`` of it: peak RSS moves by whole pages, so its MAD can be a few
    KiB and a run one arena larger is not an outlier worth a reviewer's look."""
    v = np.asarray(values, dtype=float)
    if len(v) < 3:
        return [False] * len(v)
    centre = float(np.median(v))
    spread = float(np.median(np.abs(v - centre))) * _MAD_SCALE
    if spread == 0:
        return [False] * len(v)
    limit = max(k * spread, min_relative * abs(centre))
    return [bool(abs(x - centre) > limit) for x in v]


# ---------------------------------------------------------------------------------------------
# Expected results


@dataclass(frozen=True)
class Expectation:
    """A change's expected result: ``metric`` should move by ``change_pct`` percent or more.

    The sign says which way is the improvement: -20 means "at least 20 % lower", +5 "at least
    5 % higher".
    """

    metric: str
    change_pct: float


_DASHES = "-\u2212\u2010\u2011\u2012\u2013\u2014\ufe63\uff0d"
_CHANGE = (
    rf"(?P<sign>[+{re.escape(_DASHES)}]|(?:up|down)(?:\s+by)?)\s*"
    r"(?P<number>\d+(?:[.,]\d+)?)\s*(?:%|percent\b|pct\b)"
)
_METRIC = r"(?P<metric>[^\W\d_][\w .\-/]*?)"
_EXPECTATION_PATTERNS = (
    re.compile(rf"{_METRIC}\s*:?\s*{_CHANGE}", re.IGNORECASE),
    re.compile(rf"{_CHANGE}\s*(?:in\s+|of\s+)?{_METRIC}", re.IGNORECASE),
)


def parse_expectation(text: str) -> Expectation | None:
    """Read an expected result such as "peak RSS -20 %"; None when it is not in the grammar.

    Grammar (case-insensitive, whitespace optional, an optional final "."):

        metric [":"] change        e.g. "peak RSS -20 %", "wall time: -10%", "p95 latency down 15 %"
        change ["in" | "of"] metric   e.g. "-20 % peak RSS", "down 15% in p95 latency"
        change = sign number ("%" | "percent" | "pct")
        sign   = "+" | "-" | unicode minus or dash | "up" ["by"] | "down" ["by"]

    The metric starts with a letter and is mapped by `canonical_metric`. The number may use a
    decimal comma; a zero change has no direction and is refused. Absolute targets ("at most
    200 MB") are not supported: the check reads the interval of a relative change, and a level
    would need the after runs' own distribution.
    """
    cleaned = unicodedata.normalize("NFKC", text).strip().rstrip(".").strip()
    # NFKC folds the fullwidth forms but leaves the minus sign and dashes as they are.
    for pattern in _EXPECTATION_PATTERNS:
        match = pattern.fullmatch(cleaned)
        if match:
            break
    else:
        return None
    metric = canonical_metric(match["metric"])
    value = float(match["number"].replace(",", "."))
    if not metric or value == 0:
        return None
    sign = match["sign"].lower()
    negative = sign.startswith("down") or sign in _DASHES
    return Expectation(metric=metric, change_pct=-value if negative else value)


def check_expectation(
    exp: Expectation, comparison: Comparison | None
) -> Literal["met", "not met", "unclear"]:
    """Whether a measurement shows the expected result.

    "met" when the change was detected in the expected direction and the whole 95 % interval is
    at least as good as the target; "not met" when the whole interval falls short of it (even a
    "no detectable change" can prove that); "unclear" when the interval straddles the target,
    the metric was not measured, the verdict is inconclusive, or there is no relative change.
    """
    if comparison is None or canonical_metric(comparison.metric) != exp.metric:
        return "unclear"
    low, high = comparison.ci_low_pct, comparison.ci_high_pct
    if comparison.verdict is Verdict.INCONCLUSIVE or low is None or high is None:
        return "unclear"
    target = exp.change_pct
    detected = comparison.verdict in (Verdict.IMPROVED, Verdict.REGRESSED)
    # Mirror an increase target onto the decrease case so one comparison covers both.
    if target > 0:
        low, high, target = -high, -low, -target
        moved_the_right_way = detected and (comparison.change or 0.0) > 0
    else:
        moved_the_right_way = detected and (comparison.change or 0.0) < 0
    if moved_the_right_way and high <= target:
        return "met"
    if low > target:
        return "not met"
    return "unclear"
