"""The final notes of a shipped change: Markdown written from the record, at shipping time."""

from apps.measurements.charts import change_text, format_value
from apps.measurements.metrics import label_of
from apps.measurements.selectors import latest_finished


def _results_table(change) -> list[str]:
    # The evidence the release was given: the measurement of the revisions it ships.
    latest = latest_finished(change)
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
        lines.append(
            f"| {r.get('label') or label_of(r['metric'])} "
            f"| {format_value(r.get('median_before'), r.get('unit', ''))} "
            f"| {format_value(r.get('median_after'), r.get('unit', ''))} | {change_text(r)} "
            f"| {r['verdict']} |"
        )
    improved = [
        r["reason"] for r in latest.results if r["verdict"] == "improved" and r.get("reason")
    ]
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
