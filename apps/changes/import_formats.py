"""Reading past fixes written elsewhere into import records (plain dicts in the API's change
shape). Parsing never writes; `imports.changes_import` does, all or nothing.
"""

import json
import re

from django.core.exceptions import ValidationError

from apps.core import safejson

MAX_RECORDS = 200_000

# Headings (or bare lines) that open a section, and the field each one feeds.
_SECTIONS = {
    "reason": "reason",
    "summary": "reason",
    "why this matters": "reason",
    "expected result": "expected_result",
    "command": "command",
    "rollback note": "rollback_note",
    "rollback": "rollback_note",
    "final notes": "final_notes",
    "files touched": "files_touched",
    "tags": "tags",
    "stack": "tags",
    "tools": "tags",
}
_LIST_FIELDS = {"files_touched", "tags"}
# `- key: value` metadata lines, and the field each key feeds.
_META = {
    "project": "project",
    "owner": "owner",
    "tags": "tags",
    "files touched": "files_touched",
    "before revision": "base_revision",
    "after revision": "head_revision",
    "expected result": "expected_result",
    "recommended action": "expected_result",
    "command": "command",
    "rollback note": "rollback_note",
    "summary": "reason",
}
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+\.)\s+")
_KEY_VALUE = re.compile(r"^([a-z][a-z ]{1,30}):\s*(.*)$", re.IGNORECASE)


class ImportFileError(ValueError):
    """The file itself cannot be read (not one record's fault)."""


def parse_json(text: str) -> list[dict]:
    try:
        data = safejson.loads(text)
    except (json.JSONDecodeError, safejson.JSONTooDeep) as exc:
        raise ImportFileError(f"Not valid JSON: {exc}") from exc
    if isinstance(data, dict):
        data = data.get("results", [data]) if "results" in data else [data]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise ImportFileError("Expected a change object or a list of change objects.")
    if len(data) > MAX_RECORDS:
        raise ImportFileError(f"At most {MAX_RECORDS} changes per file.")
    return data


def _tag(text: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", text.strip().lower()).strip("-._")[:50]


def _looks_like_heading(line: str, stripped: str) -> bool:
    # Notes pasted from a wiki lose their markup: a short line without a full stop or a
    # colon, not a list item, is what is left of a heading.
    return (
        0 < len(stripped) <= 40
        and not _BULLET.match(line)
        and not line.startswith((" ", "\t"))
        and not re.search(r"[.:;,!?|]", stripped)
    )


def parse_markdown(text: str) -> dict:
    """One note → one record. Lenient: notes written by hand or scraped from a wiki."""
    record: dict = {}
    sections: dict[str, list[str]] = {}
    current: str | None = None
    in_code = False
    # Without Markdown headings, the note was pasted as plain text: guess its headings.
    plain = not re.search(r"^#{1,6} ", text, re.MULTILINE)
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.strip().startswith("```"):
            in_code = not in_code
            continue
        stripped = line.strip()
        if not in_code:
            heading = stripped.lstrip("#").strip().rstrip(":").lower()
            if stripped.startswith("# ") and "title" not in record:
                record["title"] = stripped[2:].strip()
                current = None
                continue
            if heading in _SECTIONS:
                current = _SECTIONS[heading]
                sections.setdefault(current, [])
                continue
            if stripped.startswith("#") or (plain and _looks_like_heading(line, stripped)):
                current = None
                continue
            item = _BULLET.sub("", line).strip()
            match = _KEY_VALUE.match(item) if _BULLET.match(line) or current is None else None
            if match and match.group(1).lower() in _META:
                field = _META[match.group(1).lower()]
                value = match.group(2).strip()
                if field in _LIST_FIELDS:
                    record.setdefault(field, []).extend(
                        v.strip() for v in value.split(",") if v.strip()
                    )
                else:
                    record.setdefault(field, value)
                continue
            # Scraped notes glue a key to its value ("summarythis note explains ...").
            for key in ("summary", "expected result", "rollback note"):
                if (
                    current is None
                    and stripped.lower().startswith(key)
                    and len(stripped) > len(key)
                ):
                    record.setdefault(_META[key], stripped[len(key) :].strip())
                    break
            else:
                if "title" not in record and re.search(r"[A-Za-z]{3}", stripped):
                    record["title"] = stripped
                    continue
                if current is not None:
                    if current in _LIST_FIELDS:
                        if _BULLET.match(line):
                            sections[current].append(item)
                    else:
                        sections[current].append(line)
            continue
        if current is not None:
            sections[current].append(line)
    for field, lines in sections.items():
        if field in _LIST_FIELDS:
            record.setdefault(field, []).extend(v for v in lines if v)
        else:
            body = "\n".join(lines).strip()
            if body and field not in record:
                record[field] = body
    if "tags" in record:
        record["tags"] = list(dict.fromkeys(t for t in map(_tag, record["tags"]) if t))[:20]
    if "title" in record:
        record["title"] = record["title"][:200]
    return record


def parse_file(name: str, text: str) -> list[dict]:
    if name.lower().endswith(".json"):
        return parse_json(text)
    return [parse_markdown(text)]


def require(condition: bool, field: str, message: str) -> None:
    if not condition:
        raise ValidationError({field: message})
