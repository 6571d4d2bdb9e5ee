"""Known answers for the verdict statistics, and the simulations that chose their defaults.

Run with ``-s`` to see the simulated A/A false-verdict rates, the sensitivity and the
smallest peak-RSS shift detected at 10 runs a side.
"""

import json
import math

import numpy as np
import pytest

from apps.measurements import stats
from apps.measurements.stats import (
    Comparison,
    Expectation,
    Verdict,
    canonical_metric,
    check_expectation,
    compare,
    parse_expectation,
    smallest_detectable,
)

pytestmark = pytest.mark.config_independent

PAGE = 4096
RSS_BASE = 15e6
RSS_SD = 67e3
RUNS = 10
# Written as escapes so the source shows which look-alike each case feeds the parser.
MINUS = "\u2212"
EN_DASH = "\u2013"
SIMULATIONS = 400


def rss_runs(rng: np.random.Generator, n: int = RUNS, shift: float = 0.0) -> np.ndarray:
    """Peak RSS of a small CPython command: ~15 MB, sd ~67 kB, in whole pages.

    Address-space randomisation is not Gaussian: most runs scatter around one value and a
    minority land an alignment step higher, so the noise is right-skewed; the kernel counts pages.
    """
    spread = rng.normal(0.0, 61e3, n) + np.where(rng.random(n) < 0.2, 70e3, 0.0)
    return PAGE * np.round((RSS_BASE + shift + spread) / PAGE)


def wall_runs(rng: np.random.Generator, sigma: float, n: int = RUNS, factor: float = 1.0):
    """Wall time of a ~0.2 s command: lognormal jitter plus occasional slow outliers."""
    runs = 0.2 * factor * rng.lognormal(0.0, sigma, n)
    slow = rng.random(n) < 0.08
    return np.where(slow, runs * (1.0 + rng.uniform(0.1, 0.6, n)), runs)


def rss(before, after, **kwargs) -> Comparison:
    return compare(before, after, metric="peak_rss", unit="bytes", **kwargs)


# --- known answers ---------------------------------------------------------------------------


def test_clear_improvement():
    rng = np.random.default_rng(1)
    result = rss(rss_runs(rng), rss_runs(rng, shift=-0.12 * RSS_BASE))

    assert result.verdict is Verdict.IMPROVED
    assert result.change_pct == pytest.approx(-12.0, abs=0.5)
    assert result.ci_low_pct < result.change_pct < result.ci_high_pct < 0
    assert result.p_value < stats.ALPHA
    assert abs(result.change) >= result.floor
    assert result.reason.startswith("peak RSS fell \u221212.")
    assert f"(95 % CI {MINUS}12." in result.reason
    assert "%), p = " in result.reason


def test_clear_regression_in_wall_time():
    rng = np.random.default_rng(2)
    result = compare(
        wall_runs(rng, 0.02), wall_runs(rng, 0.02, factor=1.2), metric="wall", unit="s"
    )

    assert result.verdict is Verdict.REGRESSED
    assert result.change_pct == pytest.approx(20.0, abs=3.0)
    assert result.ci_low > 0
    assert result.reason.startswith("wall time rose ")


def test_identical_samples_show_no_change():
    runs = rss_runs(np.random.default_rng(3))
    result = rss(runs, runs.copy())

    assert result.verdict is Verdict.NO_CHANGE
    assert result.change == 0
    assert result.p_value == 1.0
    assert result.ci_low < 0 < result.ci_high
    assert result.reason.startswith("no detectable change in peak RSS (resolution ")


def test_tiny_shift_reports_resolution():
    rng = np.random.default_rng(4)
    result = rss(rss_runs(rng), rss_runs(rng, shift=-8192))

    assert result.verdict is Verdict.NO_CHANGE
    assert result.resolution == pytest.approx(
        smallest_detectable(result.noise, RUNS, reference=result.median_before)
    )
    assert 60e3 < result.resolution < 250e3
    assert f"KiB at {RUNS} runs)" in result.reason


def test_significant_shift_below_the_floor_is_no_change():
    # Very quiet runs make a 20 kB shift significant, but the profile's A/A check found 100 kB
    # of noise: this pair was lucky, and the floor keeps that from becoming a verdict.
    before = np.full(RUNS, RSS_BASE) + np.tile([0.0, PAGE], RUNS // 2)
    after = before - 20_000

    assert rss(before, after).verdict is Verdict.IMPROVED
    guarded = rss(before, after, calibrated_noise=100e3)
    assert guarded.verdict is Verdict.NO_CHANGE
    assert guarded.floor == pytest.approx(100e3)
    assert guarded.noise < 10e3
    assert "significant, but below the floor of" in guarded.reason


def test_minimum_effect_binds_when_there_is_no_noise():
    # Query counts do not scatter; one query less out of 1000 is below the 0.1 % minimum effect
    # only when the minimum is raised.
    before, after = [1000.0] * RUNS, [999.0] * RUNS
    counted = compare(before, after, metric="db_queries", unit="queries")
    assert counted.verdict is Verdict.IMPROVED
    assert counted.noise == 0
    assert counted.reason.startswith("DB queries per request fell \u22120.10 %")

    strict = compare(before, after, metric="db_queries", unit="queries", min_effect_pct=1.0)
    assert strict.verdict is Verdict.NO_CHANGE
    assert strict.floor == pytest.approx(10.0)

    absolute = compare(before, after, metric="db_queries", unit="queries", min_effect=2.0)
    assert absolute.verdict is Verdict.NO_CHANGE


def test_failed_runs_make_it_inconclusive():
    rng = np.random.default_rng(5)
    before, after = rss_runs(rng), rss_runs(rng, shift=-1e6)

    assert rss(before, after, failed_runs=1).verdict is Verdict.IMPROVED  # 1 of 21: a flake
    result = rss(before, after, failed_runs=2)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.reason == "inconclusive: 2 of 22 runs failed (at most 5 % may fail)"
    assert result.change_pct == pytest.approx(-6.7, abs=0.5)  # the numbers are still kept


def test_too_few_runs_make_it_inconclusive():
    rng = np.random.default_rng(6)
    result = rss(rss_runs(rng, n=4), rss_runs(rng, shift=-1e6))

    assert result.verdict is Verdict.INCONCLUSIVE
    assert "4 runs before and 10 after" in result.reason
    assert result.n_before == 4


def test_empty_side_is_inconclusive_without_numbers():
    result = rss([], [1.0, 2.0])

    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.reason == "inconclusive: no successful runs before"
    assert result.median_before is None and result.resolution is None


def test_five_runs_a_side_can_decide_despite_ties():
    # Page-sized values tie; the exact permutation p-value (2/252) still clears alpha.
    before = [10.0, 10.0, 11.0, 11.0, 12.0]
    after = [5.0, 5.0, 6.0, 6.0, 7.0]
    result = compare(before, after, metric="peak_rss", unit="bytes")

    assert result.p_value == pytest.approx(2 / 252)
    assert result.verdict is Verdict.IMPROVED


def test_huge_noise_is_inconclusive_unless_a_change_shows_anyway():
    rng = np.random.default_rng(7)
    noisy = compare(wall_runs(rng, 0.6), wall_runs(rng, 0.6), metric="wall", unit="s")
    assert noisy.verdict is Verdict.INCONCLUSIVE
    assert noisy.noise_pct > stats.MAX_NOISE_PCT
    assert "from run to run" in noisy.reason

    unchecked = compare(
        wall_runs(rng, 0.6), wall_runs(rng, 0.6), metric="wall", unit="s", max_noise_pct=None
    )
    assert unchecked.verdict is Verdict.NO_CHANGE

    # A tenfold slowdown is beyond doubt however noisy the runs are.
    slower = compare(wall_runs(rng, 0.6), wall_runs(rng, 0.6, factor=10), metric="wall", unit="s")
    assert slower.verdict is Verdict.REGRESSED


@pytest.mark.parametrize(("factor", "verdict"), [(1.1, Verdict.IMPROVED), (0.9, Verdict.REGRESSED)])
def test_direction_for_higher_is_better_metrics(factor, verdict):
    rng = np.random.default_rng(8)
    before = 500 * rng.lognormal(0, 0.01, RUNS)
    after = 500 * factor * rng.lognormal(0, 0.01, RUNS)
    result = compare(before, after, metric="throughput", unit="req/s", lower_is_better=False)

    assert result.verdict is verdict
    assert result.reason.startswith("throughput " + ("rose" if factor > 1 else "fell"))


def test_moses_interval_and_hodges_lehmann_estimate():
    before = np.arange(10.0)
    after = np.arange(10.0) * 1.5 + 3.0
    diffs = np.sort(np.subtract.outer(after, before), axis=None)
    result = compare(before, after, metric="custom", unit="")

    assert result.change == pytest.approx(np.median(diffs))
    # Exact Mann-Whitney tables give the 24th and 77th of the 100 differences at 10 + 10.
    assert (result.ci_low, result.ci_high) == (diffs[23], diffs[76])


def test_percentages_are_absent_around_a_zero_median():
    result = compare([0.0] * 10, [1.0] * 10, metric="errors", unit="errors")

    assert result.verdict is Verdict.REGRESSED
    assert result.change_pct is None and result.noise_pct is None
    assert result.reason == "errors rose +1 errors (95 % CI +1 errors … +1 errors), p = 1.6e-05"


def test_as_dict_is_plain_json():
    result = rss(rss_runs(np.random.default_rng(9)), rss_runs(np.random.default_rng(10)))
    data = result.as_dict()

    assert data["verdict"] == "no detectable change"
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert all(type(v) in (str, int, float, bool, type(None)) for v in data.values())


def test_non_finite_samples_are_refused():
    with pytest.raises(ValueError, match="finite"):
        rss([1.0, math.nan], [1.0, 2.0])


def test_smallest_detectable():
    assert smallest_detectable(RSS_SD, 1) == math.inf
    assert smallest_detectable(RSS_SD, 20) < smallest_detectable(RSS_SD, 10)
    assert smallest_detectable(RSS_SD, 10, n_after=20) < smallest_detectable(RSS_SD, 10)
    # Never below the floor, however many runs.
    assert smallest_detectable(RSS_SD, 10_000) >= RSS_SD
    assert smallest_detectable(0.0, 10, reference=1000.0) >= 1.0


# --- the simulations behind the defaults -----------------------------------------------------


def test_aa_false_verdicts_stay_under_one_in_twenty():
    rng = np.random.default_rng(20)
    false_rss = sum(
        rss(rss_runs(rng), rss_runs(rng)).verdict is not Verdict.NO_CHANGE
        for _ in range(SIMULATIONS)
    )
    false_wall = 0
    for _ in range(SIMULATIONS):
        sigma = rng.uniform(0.01, 0.03)
        result = compare(wall_runs(rng, sigma), wall_runs(rng, sigma), metric="wall", unit="s")
        false_wall += result.verdict is not Verdict.NO_CHANGE

    print(
        f"\nA/A at {RUNS} runs a side, {SIMULATIONS} measurements each: "
        f"peak RSS {false_rss / SIMULATIONS:.1%} false verdicts, "
        f"wall time {false_wall / SIMULATIONS:.1%} (target <= 5%)"
    )
    assert false_rss / SIMULATIONS <= 1 / 20
    assert false_wall / SIMULATIONS <= 1 / 20


def _detection_rate(rng: np.random.Generator, shift: float, measurements: int) -> float:
    hits = 0
    for i in range(measurements):
        sign = 1 if i % 2 else -1
        result = rss(rss_runs(rng), rss_runs(rng, shift=sign * shift))
        hits += result.verdict is (Verdict.REGRESSED if sign > 0 else Verdict.IMPROVED)
    return hits / measurements


def test_a_256_kib_rss_shift_is_caught_nineteen_times_in_twenty():
    rate = _detection_rate(np.random.default_rng(21), 262_144, SIMULATIONS)

    print(f"\n256 KiB peak-RSS shift under 67 kB noise at {RUNS} runs: detected {rate:.1%}")
    assert rate >= 19 / 20


def test_smallest_rss_shift_detected_at_ten_runs():
    rng = np.random.default_rng(22)
    # 80 KiB is the research figure; the rest brackets where 19 in 20 is reached.
    shifts = [80, *range(120, 185, 8)]
    rates = {kib: _detection_rate(rng, kib * 1024, 200) for kib in shifts}
    # The first shift from which every larger one is caught 19 times in 20.
    smallest = 1024 * min(
        kib for kib in shifts if all(rates[k] >= 19 / 20 for k in shifts if k >= kib)
    )
    predicted = smallest_detectable(RSS_SD, RUNS, reference=RSS_BASE)

    print(
        "\ndetection by shift (KiB): "
        + ", ".join(f"{kib}: {rate:.0%}" for kib, rate in rates.items())
        + f"\nsmallest shift detected in >= 19/20 at {RUNS} runs: {smallest / 1e3:.0f} kB"
        f" (smallest_detectable says {predicted / 1e3:.0f} kB; research: ~80 kB at 80 % power)"
    )
    assert smallest <= 262_144
    assert predicted == pytest.approx(smallest, rel=0.15)


# --- expected results ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "metric", "change_pct"),
    [
        ("peak RSS -20 %", "peak_rss", -20.0),
        (f"peak rss {MINUS}20%", "peak_rss", -20.0),
        (f"Peak RSS: {EN_DASH} 20 %.", "peak_rss", -20.0),
        ("RSS \uff0d20\uff05", "peak_rss", -20.0),  # fullwidth minus and percent
        ("peak memory -12.5%", "peak_rss", -12.5),
        ("max RSS -12,5 percent", "peak_rss", -12.5),
        ("wall time -10 %", "wall", -10.0),
        ("wall-clock time down by 10%", "wall", -10.0),
        ("-10 % wall time", "wall", -10.0),
        ("p95 latency -15%", "p95_latency", -15.0),
        ("down 15 % in p95 latency", "p95_latency", -15.0),
        ("user cpu +5 %", "user_cpu", 5.0),
        ("User CPU time up 5 pct", "user_cpu", 5.0),
        (f"sys time {MINUS}3%", "system_cpu", -3.0),
        ("Requests/s +8 %", "requests_s", 8.0),
        ("  cache hit ratio up by 30% ", "cache_hit_ratio", 30.0),
    ],
)
def test_parse_expectation(text, metric, change_pct):
    assert parse_expectation(text) == Expectation(metric=metric, change_pct=change_pct)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage",
        "faster",
        "peak RSS 20 %",  # no direction
        "peak RSS -20",  # no unit: percent or nothing
        "peak RSS -0 %",
        "RSS at most 200 MB",
        "peak RSS -20 MB",
        "-20 %",
        "we hope peak RSS -20 % and wall -5 %",
        "20% -peak RSS",
    ],
)
def test_parse_expectation_refuses(text):
    assert parse_expectation(text) is None


def test_canonical_metric():
    assert canonical_metric("Peak  RSS") == "peak_rss"
    assert canonical_metric("wall_time") == "wall"
    assert canonical_metric("  Latency P99 (ms) ") == "latency_p99_ms"


def _measured(low: float, high: float, **overrides) -> Comparison:
    """A comparison of a metric whose before median is 100, so absolute equals percent."""
    change_pct = (low + high) / 2
    detected = low > 0 or high < 0
    fields = {
        "metric": "peak_rss",
        "unit": "bytes",
        "lower_is_better": True,
        "n_before": 10,
        "n_after": 10,
        "median_before": 100.0,
        "median_after": 100.0 + change_pct,
        "change": change_pct,
        "change_pct": change_pct,
        "ci_low": low,
        "ci_high": high,
        "ci_low_pct": low,
        "ci_high_pct": high,
        "p_value": 0.001 if detected else 0.5,
        "noise": 1.0,
        "noise_pct": 1.0,
        "floor": 1.0,
        "resolution": 2.0,
        "verdict": (
            (Verdict.IMPROVED if change_pct < 0 else Verdict.REGRESSED)
            if detected
            else Verdict.NO_CHANGE
        ),
        "reason": "",
    }
    return Comparison(**(fields | overrides))


@pytest.mark.parametrize(
    ("expected", "ci", "answer"),
    [
        ("peak RSS -20 %", (-25.0, -21.0), "met"),
        ("peak RSS -20 %", (-25.0, -20.0), "met"),
        ("peak RSS -20 %", (-22.0, -18.0), "unclear"),
        ("peak RSS -20 %", (-19.0, -15.0), "not met"),
        ("peak RSS -20 %", (-1.0, 1.0), "not met"),
        ("peak RSS -20 %", (5.0, 9.0), "not met"),
        ("peak RSS +5 %", (6.0, 9.0), "met"),
        ("peak RSS +5 %", (4.0, 9.0), "unclear"),
        ("peak RSS +5 %", (-9.0, -6.0), "not met"),
    ],
)
def test_check_expectation(expected, ci, answer):
    assert check_expectation(parse_expectation(expected), _measured(*ci)) == answer


def test_check_expectation_is_unclear_without_a_usable_measurement():
    exp = parse_expectation("peak RSS -20 %")

    assert check_expectation(exp, None) == "unclear"
    assert check_expectation(exp, _measured(-25.0, -21.0, metric="wall")) == "unclear"
    inconclusive = _measured(-25.0, -21.0, verdict=Verdict.INCONCLUSIVE)
    assert check_expectation(exp, inconclusive) == "unclear"
    no_percent = _measured(-25.0, -21.0, ci_low_pct=None, ci_high_pct=None)
    assert check_expectation(exp, no_percent) == "unclear"
    # A wide interval beyond the target, without a detected change, proves nothing.
    undecided = _measured(-60.0, -21.0, verdict=Verdict.NO_CHANGE)
    assert check_expectation(exp, undecided) == "unclear"


def test_expectation_against_a_real_comparison():
    rng = np.random.default_rng(30)
    result = rss(rss_runs(rng), rss_runs(rng, shift=-0.25 * RSS_BASE))

    assert check_expectation(parse_expectation(f"peak RSS {MINUS}20 %"), result) == "met"
    assert check_expectation(parse_expectation(f"peak RSS {MINUS}30 %"), result) == "not met"
    assert check_expectation(parse_expectation("memory -25 %"), result) == "unclear"
