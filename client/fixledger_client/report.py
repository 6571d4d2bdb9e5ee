"""What a finished (or unfinished) measurement means for CI: an exit code, and words for people."""

from dataclasses import dataclass, field
from typing import Any

# Exit codes, as documented in `fixledger measure --help` and the README.
OK = 0
FAILED_CHECK = 1  # a gating or critical metric regressed, or the expected result was not met
NO_ANSWER = 2  # inconclusive, failed, cancelled, or still running at --timeout
USAGE = 3  # bad arguments, a refused request or token, no connection

FAIL_ON_CHOICES = ("regressed", "expectation", "none")
FINISHED = ("done", "failed", "cancelled")
MINUS = "\u2212"  # a true minus sign, as the server writes changes


@dataclass
class Outcome:
    code: int
    headline: str
    reasons: list[str] = field(default_factory=list)


def judge(measurement: dict[str, Any], fail_on: set[str], *, expected: str = "") -> Outcome:
    """The exit code for `measurement` under `--fail-on`, with why; `expected` is the change's
    expected result."""
    status = measurement.get("status")
    if status == "failed":
        return Outcome(NO_ANSWER, "failed", [measurement.get("error") or "The measurement failed."])
    if status == "cancelled":
        return Outcome(NO_ANSWER, "cancelled", ["The measurement was cancelled."])
    if status != "done":
        phase = measurement.get("phase") or status
        return Outcome(NO_ANSWER, "unfinished", [f"Still {phase} when the wait ended."])
    if not fail_on:
        return Outcome(OK, "measured")
    if not measurement.get("results"):
        return Outcome(NO_ANSWER, "inconclusive", ["The measurement has no results to judge."])
    blocking = {b["metric"]: b["text"] for b in measurement.get("blockers", [])}
    failed, unanswered = [], []
    for result in measurement.get("results", []):
        text = blocking.get(result.get("metric"))
        if text is None:
            continue
        if result.get("verdict") == "regressed":
            if "regressed" in fail_on:
                failed.append(text)
        else:
            unanswered.append(text)
    if "expectation" in fail_on:
        expected = expected or "the expected result"
        state = measurement.get("expectation") or ""
        if state == "not met":
            failed.append(f"The expected result ({expected}) was not met.")
        elif state != "met":
            unanswered.append(
                f"The measurement shows neither way whether {expected} was met."
                if state
                else "The change's expected result names nothing this measurement checks."
            )
    if failed:
        return Outcome(FAILED_CHECK, "failed the check", failed + unanswered)
    if unanswered:
        return Outcome(NO_ANSWER, "inconclusive", unanswered)
    return Outcome(OK, "passed")


# --- numbers for people -------------------------------------------------------------------


def _sign(value: float) -> str:
    return MINUS if value < 0 else "+" if value > 0 else ""


def signed_pct(value: float | None, *, unit: bool = True) -> str:
    if value is None:
        return "—"
    magnitude = abs(value)
    digits = f"{magnitude:.2f}" if magnitude < 1 else f"{magnitude:.1f}"
    text = f"{_sign(value) if float(digits) else ''}{digits}"
    return f"{text} %" if unit else text


def quantity(value: float | None, unit: str) -> str:
    """A median in its unit: sizes in binary units, times in s or ms."""
    if value is None:
        return "—"
    if unit == "bytes":
        for name, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
            if abs(value) >= scale:
                return f"{value / scale:,.1f} {name}"
        return f"{value:,.0f} B"
    if unit == "s" and abs(value) < 1:
        return f"{value * 1000:.1f} ms"
    if unit == "s":
        return f"{value:.3g} s"
    return f"{value:g} {unit}".strip()


def change_text(result: dict[str, Any]) -> str:
    change = result.get("change_pct")
    if change is None:
        return "—"
    low, high = result.get("ci_low_pct"), result.get("ci_high_pct")
    if low is None or high is None:
        return signed_pct(change)
    return f"{signed_pct(change)} (95 % CI {signed_pct(low, unit=False)}…{signed_pct(high)})"


# --- Markdown -----------------------------------------------------------------------------


def _cell(text: Any) -> str:
    # A pipe or a line break would end the table cell early.
    return str(text).replace("|", "\\|").replace("\n", " ")


ICONS = {0: "✅", 1: "❌", 2: "⚠️"}


def markdown(
    *,
    change: dict[str, Any],
    profile: dict[str, Any],
    measurement: dict[str, Any],
    outcome: Outcome,
    measurement_url: str,
) -> str:
    """A summary for a pull-request comment or a CI job summary."""
    number, title = change.get("number", "?"), change.get("title", "")
    base, head = measurement.get("base_sha", "")[:10], measurement.get("head_sha", "")[:10]
    lines = [
        f"### {ICONS.get(outcome.code, '')} {_cell(number)} {_cell(title)}: {outcome.headline}",
        "",
        f"Profile *{_cell(profile.get('name', '?'))}*, `{base}` → `{head}`, "
        f"[measurement {measurement.get('id')}]({measurement_url}) ({measurement.get('status')}).",
        "",
    ]
    results = measurement.get("results") or []
    if results:
        lines += [
            "| Metric | Before | After | Change (95 % CI) | Verdict | Role |",
            "|---|---:|---:|---|---|---|",
        ]
        blocking = {b["metric"] for b in measurement.get("blockers", [])}
        for r in results:
            unit = r.get("unit", "")
            verdict = r.get("verdict", "")
            shown = f"**{verdict}**" if r.get("metric") in blocking else verdict
            lines.append(
                f"| {_cell(r.get('label') or r.get('metric'))} "
                f"| {quantity(r.get('median_before'), unit)} "
                f"| {quantity(r.get('median_after'), unit)} "
                f"| {change_text(r)} | {_cell(shown)} | {_cell(r.get('role', ''))} |"
            )
        lines.append("")
    expected = change.get("expected_result") or ""
    if expected:
        state = measurement.get("expectation") or "not checkable"
        lines += [f"Expected result: *{_cell(expected)}*: **{state}**.", ""]
    for reason in outcome.reasons:
        lines.append(f"- {reason}")
    if outcome.reasons:
        lines.append("")
    for extension in measurement.get("extensions") or []:
        lines.append(f"- More runs: {extension}")
    if change.get("url"):
        lines += [f"[{_cell(number)} on fixledger]({change['url']})", ""]
    return "\n".join(lines) + "\n"
