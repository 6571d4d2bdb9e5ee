"""Changes written out as Markdown notes and read back (the format `import_formats.parse_markdown`
understands), so a note exported here imports elsewhere unchanged.
"""

from .models import Change

SECTIONS = (
    ("reason", "Reason"),
    ("expected_result", "Expected result"),
    ("command", "Command"),
    ("rollback_note", "Rollback note"),
    ("final_notes", "Final notes"),
)


def change_to_markdown(change: Change) -> str:
    meta = [
        ("number", change.number),
        ("project", change.project.slug),
        ("owner", change.owner.get_username()),
        ("status", change.status),
        ("filed", change.created.date().isoformat()),
        ("tags", ", ".join(change.tags)),
        ("before revision", change.base_revision),
        ("after revision", change.head_revision),
    ]
    lines = [f"# {change.title}", ""]
    lines += [f"- {key}: {value}" for key, value in meta if value]
    for name, heading in SECTIONS:
        text = getattr(change, name, "") or ""
        if text:
            body = f"```\n{text}\n```" if name == "command" else text
            lines += ["", f"## {heading}", "", body]
    if change.files_touched:
        lines += ["", "## Files touched", ""] + [f"- {p}" for p in change.files_touched]
    return "\n".join(lines) + "\n"
