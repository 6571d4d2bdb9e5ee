"""The final notes of a shipped change: Markdown written from the record, at shipping time."""

from apps.measurements.charts import format_value
from apps.measurements.models import MeasurementStatus


def _results_table(change) -> list[str]:
    done = change.measurements.filter(status=MeasurementStatus.DONE, kind="compare")
    latest = done.order_by("-id").first()
    if latest is None:
        return ["Not measured."]
    lines = [
        f"Measured with *{latest.profile.name}* ({latest.runs_planned} runs, interleaved), "
        f"{latest.base_sha[:12]} → {latest.head_sha[:12]}.",
        "",
        "| metric | before | after | change (95 % CI) | verdict |",
        "|---|---|---|---|---|",
    ]
    for r in latest.results:
        change_text = "—"
        if r["change_pct"] is not None:
            change_text = (
                f"{r['change_pct']:+.1f} % ({r['ci_low_pct']:+.1f} … {r['ci_high_pct']:+.1f} %)"
            )
        lines.append(
            f"| {r['metric']} | {format_value(r['median_before'], r['unit'])} "
            f"| {format_value(r['median_after'], r['unit'])} | {change_text} | {r['verdict']} |"
        )
    improved = [r["reason"] for r in latest.results if r["verdict"] == "improved"]
    if improved:
        lines += ["", "What improved: " + "; ".join(improved) + "."]
    if latest.expectation:
        lines += ["", f"Expected result “{change.expected_result}”: **{latest.expectation}**."]
    return lines


def final_notes(change) -> str:
    files = {f["path"]: f for f in change.diffstat}
    lines = [
        f"# {change.number} {change.title}",
        "",
        f"Shipped {change.shipped_at:%Y-%m-%d %H:%M} UTC as tag `{change.tag_name}` on "
        f"`{change.head_sha[:12]}` ({change.project}). Owner: {change.owner.get_username()}.",
        "",
        "## Reason",
        "",
        change.reason,
        "",
        "## Result",
        "",
        *_results_table(change),
        "",
        "## Command",
        "",
        "```",
        change.command or "(none recorded)",
        "```",
        "",
        "## Files touched",
        "",
    ]
    for path in change.files_touched or ["(none recorded)"]:
        stat = files.get(path)
        counts = (
            f" (+{stat['added']} \u2212{stat['removed']})" if stat and not stat["binary"] else ""
        )
        lines.append(f"- `{path}`{counts}")
    lines += ["", "## Checklist", ""]
    for item in change.checklist.all():
        mark = {"done": "x", "skipped": "-", "open": " "}[item.state]
        who = f" — {item.actor_name}, {item.ticked_at:%Y-%m-%d %H:%M}" if item.ticked_at else ""
        why = f" (skipped: {item.reason})" if item.state == "skipped" else ""
        lines.append(f"- [{mark}] {item.title}{who}{why}")
    lines += ["", "## Rollback", "", change.rollback_note, ""]
    return "\n".join(lines)
