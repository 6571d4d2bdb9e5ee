"""The HTTP judgement on chosen numbers: tails, rates, queries, leaks, and the cache warning."""

import json

import numpy as np
import pytest

from apps.measurements.http.analysis import LEAK_FLOOR, cache_warning, compare_sides
from apps.measurements.stats import Verdict

from .synthetic import endpoint, result

pytestmark = pytest.mark.config_independent


def latencies(seed: int, median_ms: float, n: int = 2000) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(np.log(median_ms), 0.25, n)


def test_a_slower_endpoint_is_a_latency_regression_with_intervals():
    before = result({"GET /a": endpoint(latencies(1, 20.0))})
    after = result({"GET /a": endpoint(latencies(2, 24.0))})
    report = compare_sides([before], [after])
    for metric in ("latency_p50", "latency_p95", "latency_p99"):
        judged = report.comparison(metric, "GET /a")
        assert judged.verdict is Verdict.REGRESSED, judged.reason
        assert 0 < judged.ci_low < judged.change < judged.ci_high
        assert judged.direction == "lower" and judged.unit == "ms"
    assert report.comparison("latency_p50").median_before == pytest.approx(20.0, rel=0.03)
    assert report.comparison("latency_p50").median_after == pytest.approx(24.0, rel=0.03)


def test_the_same_distribution_is_no_change():
    before = result({"GET /a": endpoint(latencies(3, 20.0))})
    after = result({"GET /a": endpoint(latencies(4, 20.0))})
    report = compare_sides([before], [after])
    verdicts = {c.metric: c.verdict for c in report.comparisons if c.endpoint is None}
    assert set(verdicts.values()) == {Verdict.NO_CHANGE}, verdicts


def test_a_change_only_in_the_tail_is_caught_in_the_tail():
    tail = latencies(6, 20.0)
    tail[np.argsort(tail)[-60:]] *= 4  # the slowest 3 % get four times slower
    report = compare_sides(
        [result({"GET /a": endpoint(latencies(5, 20.0))})], [result({"GET /a": endpoint(tail)})]
    )
    assert report.comparison("latency_p50").verdict is Verdict.NO_CHANGE
    assert report.comparison("latency_p99").verdict is Verdict.REGRESSED


def test_p99_needs_a_thousand_requests():
    report = compare_sides(
        [result({"GET /a": endpoint(latencies(1, 20.0, 900))})],
        [result({"GET /a": endpoint(latencies(2, 40.0, 900))})],
    )
    p99 = report.comparison("latency_p99")
    assert p99.verdict is Verdict.INCONCLUSIVE
    assert "at least 1,000" in p99.reason
    assert report.before.total.p99 is None
    assert report.comparison("latency_p50").verdict is Verdict.REGRESSED


def test_a_generator_that_fell_behind_makes_latency_inconclusive():
    reason = "the generator could not keep 5,000 req/s: 3.0 % of sends started more than 1 ms late"
    before = result({"GET /a": endpoint(latencies(1, 20.0))}, late=60, inconclusive=reason)
    after = result({"GET /a": endpoint(latencies(2, 40.0))})
    report = compare_sides([before], [after])
    assert report.comparison("latency_p50").verdict is Verdict.INCONCLUSIVE
    assert reason in report.comparison("latency_p50").reason
    assert f"before: {reason}" in report.warnings
    assert report.before.late_fraction == pytest.approx(0.03)


def test_error_rate_is_compared_exactly():
    ok = latencies(1, 5.0)
    report = compare_sides(
        [result({"GET /f": endpoint(ok)})],
        [result({"GET /f": endpoint(ok, errors={"5xx": 100})})],
    )
    judged = report.comparison("error_rate", "GET /f")
    assert report.after.endpoints["GET /f"].error_rate == pytest.approx(5.0)
    assert judged.verdict is Verdict.REGRESSED
    assert judged.p_value < 1e-20
    assert judged.ci_low > 3.5 and judged.ci_high < 6.5
    same = compare_sides(
        [result({"GET /f": endpoint(ok, errors={"timeout": 3})})],
        [result({"GET /f": endpoint(ok, errors={"connection": 4})})],
    )
    assert same.comparison("error_rate").verdict is Verdict.NO_CHANGE


def test_cache_states_that_differ_are_flagged_beside_the_latency():
    before = result({"GET /c": endpoint(latencies(1, 20.0), cache={"hit": 240, "miss": 1760})})
    after = result({"GET /c": endpoint(latencies(2, 2.0), cache={"hit": 1880, "miss": 120})})
    report = compare_sides([before], [after])
    assert report.comparison("cache_hit_ratio", "GET /c").verdict is Verdict.IMPROVED
    assert report.comparison("cache_hit_ratio").direction == "higher"
    assert (
        "after served 94 % from cache, before 12 %: the latency gain may be the cache"
        in report.warnings
    )
    assert cache_warning(90.0, 10.0, 3.0).endswith("the latency loss may be the cache")


def test_no_cache_headers_no_cache_metric():
    report = compare_sides(
        [result({"GET /a": endpoint(latencies(1, 5.0))})],
        [result({"GET /a": endpoint(latencies(2, 5.0))})],
    )
    assert report.comparison("cache_hit_ratio") is None
    assert report.warnings == []


def test_one_extra_query_per_request_is_a_regression_of_that_endpoint():
    fast = latencies(1, 2.0, 1000)
    before = result(
        {
            "GET /items": endpoint(fast, queries={1: 1000}),
            "GET /ok": endpoint(fast, queries={0: 1000}),
        }
    )
    after = result(
        {
            "GET /items": endpoint(fast, queries={2: 1000}),
            "GET /ok": endpoint(fast, queries={0: 1000}),
        }
    )
    report = compare_sides([before], [after])
    items = report.comparison("db_queries", "GET /items")
    assert items.verdict is Verdict.REGRESSED
    assert "GET /items" in items.reason
    assert items.change == pytest.approx(1.0)
    assert report.comparison("db_queries", "GET /ok").verdict is Verdict.NO_CHANGE
    assert report.after.endpoints["GET /items"].db_max == 2
    assert report.after.endpoints["GET /items"].db_mean == pytest.approx(2.0)


def memory_series(seed, per_request, n=2000, every=20, plateau_at=None, base=30_000_000):
    """RSS samples: a trend (bytes per request) in whole pages, with page-sized noise."""
    rng = np.random.default_rng(seed)
    points = []
    for done in range(0, n + 1, every):
        grown = per_request * (min(done, plateau_at) if plateau_at else done)
        noise = rng.integers(-3, 4) * 4096
        points.append([done, int(base + (grown // 4096) * 4096 + noise)])
    return points


def memory_result(samples):
    return result({"GET /leak": endpoint(latencies(1, 2.0, 2000))}, memory=samples)


def test_a_leak_is_a_slope_and_its_fix_an_improvement():
    flat = memory_result(memory_series(1, 0))
    leaking = memory_result(memory_series(2, 4096))
    regressed = compare_sides([flat], [leaking]).comparison("rss_slope")
    assert regressed.verdict is Verdict.REGRESSED, regressed.reason
    assert regressed.median_after == pytest.approx(4096 * 1000, rel=0.05)
    fixed = compare_sides([leaking], [flat])
    assert fixed.comparison("rss_slope").verdict is Verdict.IMPROVED
    assert fixed.before.leak and not fixed.after.leak
    assert "no leak" in fixed.comparison("rss_slope").reason


def test_a_bounded_cache_that_fills_then_stays_flat_is_not_a_leak():
    bounded = memory_result(memory_series(3, 8192, plateau_at=600))
    report = compare_sides([memory_result(memory_series(4, 0))], [bounded])
    assert not report.after.leak
    assert report.comparison("rss_slope").verdict is Verdict.NO_CHANGE


def test_a_slope_below_the_floor_is_not_a_leak():
    tiny = memory_result(memory_series(5, LEAK_FLOOR / 1000 / 4))
    report = compare_sides([tiny], [tiny])
    assert not report.before.leak


def test_blocks_are_pooled_without_their_starting_levels():
    blocks = [memory_result(memory_series(s, 4096, base=b)) for s, b in ((1, 3e7), (2, 9e7))]
    report = compare_sides(blocks, [memory_result(memory_series(3, 0))])
    assert report.before.rss_slope[0] == pytest.approx(4096 * 1000, rel=0.05)
    assert report.before.blocks == 2


def test_peak_rss_is_judged_over_blocks():
    def block(peak, seed):
        return result({"GET /a": endpoint(latencies(seed, 2.0, 200))}, peak=peak)

    report = compare_sides(
        [block(50_000_000 + i * 4096, i) for i in range(6)],
        [block(60_000_000 + i * 4096, i + 10) for i in range(6)],
    )
    assert report.comparison("server_peak_rss").verdict is Verdict.REGRESSED
    assert report.before.peak_rss == 50_000_000 + 5 * 4096


def test_the_report_is_json_with_the_comparison_fields():
    report = compare_sides(
        [result({"GET /a": endpoint(latencies(1, 20.0), errors={"5xx": 1})})],
        [result({"GET /a": endpoint(latencies(2, 20.0))})],
    )
    data = json.loads(json.dumps(report.as_dict()))
    first = data["comparisons"][0]
    for key in ("metric", "label", "unit", "direction", "verdict", "reason", "ci_low", "p_value"):
        assert key in first
    assert {c["metric"] for c in data["comparisons"]} >= {
        "latency_p50",
        "latency_p95",
        "latency_p99",
        "error_rate",
    }
    assert data["sides"]["before"]["total"]["error_rate"] == pytest.approx(0.05)


def test_runs_merge_as_if_they_were_one():
    first, second = latencies(7, 20.0, 1000), latencies(8, 30.0, 1000)
    blocks = [result({"GET /a": endpoint(first)}), result({"GET /a": endpoint(second)})]
    whole = [result({"GET /a": endpoint(np.concatenate([first, second]))})]
    merged, single = compare_sides(blocks, blocks).before, compare_sides(whole, whole).before
    assert (merged.total.p50, merged.total.p99) == (single.total.p50, single.total.p99)
    assert merged.total.histogram == single.total.histogram
    assert merged.requests == 2000 and merged.blocks == 2
