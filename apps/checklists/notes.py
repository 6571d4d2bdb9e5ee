"""The final notes of a shipped change: Markdown written from the record, at shipping time,
and that Markdown as HTML that is safe to put in a page."""

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

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


# CommonMark with tables (the results table), raw HTML off: what people typed into a change
# (its title, reason, rollback note) reaches the notes as text, never as markup.
_markdown = MarkdownIt("commonmark", {"html": False}).enable("table")
HEADING_OFFSET = 2
# The renderer already refuses `javascript:` links; the sanitiser is the second wall, and the
# only one that holds if the renderer's options change.
_ALLOWED_TAGS = {
    *("h3", "h4", "h5", "h6", "p", "br", "hr", "blockquote", "ul", "ol", "li"),
    *("strong", "em", "code", "pre", "a", "del"),
    *("table", "thead", "tbody", "tr", "th", "td"),
}
# No `style`: the page's CSP refuses inline styles, so column alignment is left to the sheet.
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}


def notes_html(markdown: str) -> SafeString:
    """The notes rendered as HTML, sanitised: no script, no event handler, http(s) links only."""
    tokens = _markdown.parse(markdown or "")
    for token in tokens:
        # The notes sit under the page's own headings: their `#` is the page's third level.
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(int(token.tag[1]) + HEADING_OFFSET, 6)}"
    html = _markdown.renderer.render(tokens, _markdown.options, {})
    clean = nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(clean)  # noqa: S308 - sanitised by nh3 just above
