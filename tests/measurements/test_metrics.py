"""Metric policies, what the gate makes of a verdict, and how numbers read."""

import pytest

from apps.core.units import format_bytes
from apps.measurements import metrics, stats
from apps.measurements.charts import change_text, format_value
from apps.measurements.metrics import Direction, Metric, Policy, Role
from apps.measurements.runner import _add_metric

pytestmark = pytest.mark.config_independent

MINUS = "\u2212"


def regressed(pct, low, high, **extra):
    return {
        "metric": "wall",
        "verdict": "regressed",
        "lower_is_better": True,
        "change_pct": pct,
        "ci_low_pct": low,
        "ci_high_pct": high,
        **extra,
    }


def test_default_policy_gates_peak_rss_wall_and_cpu_time_only():
    policy = Policy(kind="command", overrides={})
    roles = {m.key: (m.label, m.role) for m in policy.builtin()}
    assert roles == {
        "peak_rss": ("peak RSS", Role.GATING),
        "wall": ("wall time", Role.GATING),
        "cpu": ("CPU time", Role.GATING),
        "user_cpu": ("user CPU time", Role.INFORMATIONAL),
        "system_cpu": ("system CPU time", Role.INFORMATIONAL),
    }
    # A metric the command printed: informational, in the direction it declared.
    custom = policy.metric("hits", unit="%", declared=Direction.HIGHER)
    assert (custom.role, custom.direction, custom.label) == (Role.INFORMATIONAL, "higher", "hits")
    assert policy.metric("requests", unit="req/s").direction is Direction.HIGHER
    assert policy.metric("queries", unit="").direction is Direction.LOWER


def test_the_policy_overrides_by_key_or_label():
    clean = metrics.validate_policy(
        {
            "peak RSS": {"smallest_effect_pct": 0.5},
            "CPU time": {"role": "critical"},
            "hits": {"direction": "higher", "role": "gating", "label": "cache hits"},
        }
    )
    assert set(clean) == {"peak_rss", "cpu", "hits"}
    policy = Policy(kind="command", overrides=clean)
    assert policy.metric("peak_rss").smallest_effect_pct == 0.5
    assert policy.metric("cpu").role is Role.CRITICAL
    hits = policy.metric("hits", unit="%")
    assert (hits.label, hits.role, hits.direction) == ("cache hits", Role.GATING, "higher")
    assert policy.resolve("Cache hits") == "hits"
    assert policy.resolve("wall-clock time") == "wall"


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ([], "JSON object"),
        ({"wall": "gating"}, "give an object"),
        ({"wall": {"role": "blocking"}}, "critical, gating or informational"),
        ({"wall": {"direction": "up"}}, "“lower” or “higher”"),
        ({"wall": {"smallest_effect_pct": -1}}, "between 0 and 1000"),
        ({"wall": {"smallest_effect_pct": "5 %"}}, "number of percent"),
        ({"wall": {"colour": "red"}}, "unknown field"),
        ({"!!": {}}, "metric key"),
    ],
)
def test_bad_policies_are_refused_in_words(policy, message):
    with pytest.raises(metrics.PolicyError, match=message):
        metrics.validate_policy(policy)


def test_what_blocks_the_release():
    gating = Metric("wall", "wall time", "s", role=Role.GATING, smallest_effect_pct=5.0)
    critical = Metric("wall", "wall time", "s", role=Role.CRITICAL)
    informational = Metric("user_cpu", "user CPU time", "s")
    small, large = regressed(3.0, 1.0, 5.0), regressed(12.0, 8.0, 16.0)
    assert not metrics.blocks(small, gating)
    assert metrics.blocks(large, gating)
    assert metrics.blocks(small, critical)
    assert not metrics.blocks(regressed(41.0, 30.0, 50.0), informational)
    assert not metrics.blocks({"verdict": "improved"}, critical)
    assert metrics.blocks({"verdict": "inconclusive"}, gating), "no evidence is not a pass"
    # Higher is better: a fall is the regression.
    throughput = Metric("rps", "throughput", "req/s", Direction.HIGHER, Role.GATING, 5.0)
    fall = regressed(-12.0, -16.0, -8.0, lower_is_better=False)
    assert metrics.blocks(fall, throughput)


def test_the_refusal_names_the_label_the_change_and_the_interval():
    cpu = Metric("cpu", "CPU time", "s", role=Role.GATING, smallest_effect_pct=5.0)
    text = metrics.blocker_text(
        regressed(12.0, 8.0, 16.0, metric="cpu"), cpu, measurement="measurement 3"
    )
    assert text == (
        "CPU time regressed +12.0 % (95 % CI +8.0…+16.0 %) in measurement 3; "
        "the smallest effect that matters is 5 %."
    )


def test_undecided_means_the_interval_straddles_the_smallest_effect():
    wall = Metric("wall", "wall time", "s", role=Role.GATING, smallest_effect_pct=5.0)
    no_change = {"verdict": "no detectable change", "lower_is_better": True, "p_value": 0.5}
    straddling = no_change | {"change_pct": 2.0, "ci_low_pct": -1.0, "ci_high_pct": 8.0}
    assert metrics.undecided(straddling, wall) == (
        f"95 % CI {MINUS}1.0…+8.0 % straddles the smallest effect +5.0 %"
    )
    below = no_change | {"change_pct": 1.0, "ci_low_pct": -1.0, "ci_high_pct": 3.0}
    assert metrics.undecided(below, wall) == ""
    assert metrics.undecided(regressed(9.0, 6.0, 12.0), wall) == ""
    # A change the 95 % interval sees but this look's level cannot confirm yet.
    unconfirmed = below | {"ci_low_pct": 0.5, "p_value": 0.02, "alpha": 0.0036}
    assert "has not reached this look's level" in metrics.undecided(unconfirmed, wall)
    noisy = {"verdict": "inconclusive", "noise_pct": 40.0, "max_noise_pct": 25.0}
    assert metrics.undecided(noisy, wall) == "noise 40 % is too high"
    failed = {"verdict": "inconclusive", "noise_pct": 2.0, "max_noise_pct": 25.0}
    assert metrics.undecided(failed, wall) == "", "more runs do not mend failing ones"
    informational = Metric("user_cpu", "user CPU time", "s")
    assert metrics.undecided(straddling, informational) == ""


def test_binary_units_and_signs_everywhere():
    assert format_bytes(256 * 1024) == "256.0 KiB"
    assert format_bytes(-1.5 * 2**20) == f"{MINUS}1.5 MiB"
    assert format_bytes(3 * 2**30, signed=True) == "+3.0 GiB"
    assert format_value(61.2 * 2**20, "bytes") == "61.2 MiB"
    assert metrics.signed_pct(7.24) == "+7.2 %"
    assert metrics.signed_pct(-0.354) == f"{MINUS}0.35 %"
    assert metrics.signed_pct(0.0) == "0.00 %"
    assert change_text({"change_pct": -82.0, "ci_low_pct": -83.5, "ci_high_pct": -80.1}) == (
        f"{MINUS}82.0 % (95 % CI {MINUS}83.5 … {MINUS}80.1 %)"
    )


def test_intervals_are_clamped_to_what_is_possible():
    # A time that drops to almost nothing: the Moses interval's far end would claim more
    # than -100 %, which no time can do.
    before = [1.0, 1.2, 3.0, 1.1, 0.9, 1.0, 5.0]
    after = [0.01, 0.02, 0.01, 0.015, 0.01, 0.012, 0.011]
    result = stats.compare(before, after, metric="wall", unit="s")
    assert result.ci_low_pct >= -100.0
    assert result.change_pct >= -100.0
    assert (
        "KiB"
        in stats.compare(
            [2**20 + i * 4096 for i in range(10)],
            [2**20 + 300 * 1024 + i * 4096 for i in range(10)],
            metric="peak_rss",
            unit="bytes",
        ).reason
    )


@pytest.mark.parametrize(
    ("text", "metric", "change_pct"),
    [
        ("peak RSS -20 %", "peak_rss", -20.0),
        (f"peak RSS {MINUS}20 %", "peak_rss", -20.0),
        (f"CPU time {MINUS}10 %", "cpu", -10.0),
        ("total CPU down 5%", "cpu", -5.0),
        ("user CPU time +3 %", "user_cpu", 3.0),
        ("wall-clock time: -10%", "wall", -10.0),
    ],
)
def test_expected_results_take_labels(text, metric, change_pct):
    assert stats.parse_expectation(text) == stats.Expectation(metric, change_pct)


def test_a_command_can_declare_its_metric_direction():
    found: dict = {}
    _add_metric(found, "METRIC hits=93 % higher")
    _add_metric(found, "METRIC queries=12 lower")
    _add_metric(found, "METRIC bytes_served=100 bytes")
    assert found == {
        "hits": (93.0, "% higher"),
        "queries": (12.0, "lower"),
        "bytes_served": (100.0, "bytes"),
    }
    assert metrics.split_declared_unit("% higher") == ("%", Direction.HIGHER)
    assert metrics.split_declared_unit("lower") == ("", Direction.LOWER)
    assert metrics.split_declared_unit("bytes") == ("bytes", None)


def test_a_measurement_in_one_line_says_what_blocks_first():
    policy = Policy(kind="command", overrides={})

    def result(metric, verdict, change_pct, **extra):
        interval = {}
        if change_pct is not None:
            interval = {"ci_low_pct": change_pct - 1, "ci_high_pct": change_pct + 1}
        return {"metric": metric, "verdict": verdict, "change_pct": change_pct, **interval, **extra}

    rss = result("peak_rss", "improved", -82.0)
    wall = result("wall", "no detectable change", 0.4)
    user = result("user_cpu", "regressed", 30.0)  # informational: never speaks for the change
    line = metrics.headline([wall, rss, user], policy, expected_metric="peak_rss")
    assert line == {
        "verdict": "improved",
        "metric": "peak_rss",
        "label": "peak RSS",
        "change_pct": -82.0,
    }
    # Without an expected result, the first gating metric speaks.
    assert metrics.headline([wall, rss, user], policy)["metric"] == "wall"
    # A regression past the smallest effect blocks the release, so it is the line.
    slower = result("wall", "regressed", 12.0)
    assert metrics.headline([rss, slower], policy, expected_metric="peak_rss") == {
        "verdict": "regressed",
        "metric": "wall",
        "label": "wall time",
        "change_pct": 12.0,
    }
    # One under the smallest effect (5 % for wall time) does not.
    slightly = result("wall", "regressed", 2.0)
    assert metrics.headline([rss, slightly], policy)["verdict"] == "improved"
    noisy = result("cpu", "inconclusive", None)
    assert metrics.headline([rss, noisy], policy)["verdict"] == "inconclusive"
    assert metrics.headline([], policy)["verdict"] == "inconclusive"
    # An HTTP endpoint's result speaks only when it blocks, with its own label.
    http = Policy(kind="http", overrides={})
    overall = result("latency_p99", "improved", -30.0)
    endpoint = result(
        "latency_p99", "regressed", 40.0, endpoint="GET /items", label="latency p99 of GET /items"
    )
    assert metrics.headline([overall, endpoint], http)["label"] == "latency p99 of GET /items"
    assert metrics.headline([overall], http)["label"] == "latency p99"
