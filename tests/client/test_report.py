"""What a measurement means for a CI job: exit codes and the Markdown summary."""

import pytest
from fixledger_client.report import FAILED_CHECK, NO_ANSWER, OK, judge, markdown

pytestmark = pytest.mark.config_independent

PEAK = {
    "metric": "peak_rss",
    "label": "peak RSS",
    "unit": "bytes",
    "role": "gating",
    "median_before": 40 * 2**20,
    "median_after": 50 * 2**20,
    "change_pct": 25.0,
    "ci_low_pct": 24.0,
    "ci_high_pct": 26.5,
    "verdict": "regressed",
}
WALL = {**PEAK, "metric": "wall", "label": "wall | time", "unit": "s", "verdict": "improved"}
WALL.update(median_before=0.5, median_after=0.4, change_pct=-20.0, ci_low_pct=-22, ci_high_pct=-18)


def done(results, blockers=(), expectation=""):
    return {
        "id": 7,
        "status": "done",
        "results": results,
        "blockers": [{"metric": m, "text": f"{m} blocks"} for m in blockers],
        "expectation": expectation,
        "base_sha": "a" * 40,
        "head_sha": "b" * 40,
    }


def test_a_blocking_regression_fails_only_when_asked():
    measurement = done([PEAK, WALL], blockers=["peak_rss"], expectation="met")
    assert judge(measurement, {"regressed"}).code == FAILED_CHECK
    assert judge(measurement, {"regressed"}).reasons == ["peak_rss blocks"]
    assert judge(measurement, {"expectation"}, expected="wall time -10 %").code == OK
    assert judge(measurement, set()).code == OK


def test_a_regression_the_policy_lets_through_passes():
    assert judge(done([PEAK, WALL]), {"regressed"}).code == OK


def test_no_answer_is_exit_2():
    inconclusive = {**PEAK, "verdict": "inconclusive"}
    assert judge(done([inconclusive], blockers=["peak_rss"]), {"regressed"}).code == NO_ANSWER
    assert judge(done([WALL], expectation="unclear"), {"expectation"}).code == NO_ANSWER
    assert judge(done([WALL]), {"expectation"}).code == NO_ANSWER, "nothing checkable"
    assert judge(done([]), {"regressed"}).code == NO_ANSWER
    for status in ("failed", "cancelled", "running"):
        assert judge({"status": status}, {"regressed"}).code == NO_ANSWER


def test_an_expected_result_not_met_fails():
    outcome = judge(done([WALL], expectation="not met"), {"expectation"}, expected="wall -50 %")
    assert outcome.code == FAILED_CHECK
    assert outcome.reasons == ["The expected result (wall -50 %) was not met."]


def test_the_summary_is_a_markdown_table_that_survives_odd_labels():
    measurement = done([PEAK, WALL], blockers=["peak_rss"], expectation="not met")
    text = markdown(
        change={"number": "FIX-3", "title": "a | b", "url": "http://x/changes/FIX-3/",
                "expected_result": "peak RSS -20 %"},
        profile={"name": "bench"},
        measurement=measurement,
        outcome=judge(measurement, {"regressed"}),
        measurement_url="http://x/measurements/7/",
    )  # fmt: skip
    assert text.startswith("### ❌ FIX-3 a \\| b: failed the check\n")
    assert (
        "| peak RSS | 40.0 MiB | 50.0 MiB | +25.0 % (95 % CI +24.0…+26.5 %) | **regressed** "
        "| gating |" in text
    )
    assert "| wall \\| time | 500.0 ms | 400.0 ms | \u221220.0 % (95 % CI" in text
    assert "Expected result: *peak RSS -20 %*: **not met**." in text
    assert "[measurement 7](http://x/measurements/7/)" in text
    assert "[FIX-3 on fixledger](http://x/changes/FIX-3/)" in text
