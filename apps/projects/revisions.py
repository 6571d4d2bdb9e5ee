"""What a revision name may look like before it goes anywhere near git."""

import re

from django.core.exceptions import ValidationError

MAX_REVISION_LENGTH = 255
_SHA = re.compile(r"^[0-9a-f]{4,64}$")
# Strict ref syntax: path components of plain characters, never starting with '-' or '.', so a
# name can never be read as an option or walk the reflog.
_REF = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*(/[A-Za-z0-9_][A-Za-z0-9_.+-]*)*$")


def validate_revision(value: str) -> None:
    """Accept a hex SHA or a strict branch/tag name; refuse anything git could misread."""
    if not value:
        return
    if len(value) > MAX_REVISION_LENGTH:
        raise ValidationError(f"A revision is at most {MAX_REVISION_LENGTH} characters.")
    # fullmatch: with match(), '$' also matches before a trailing newline.
    if _SHA.fullmatch(value):
        return
    if (
        not _REF.fullmatch(value)
        or ".." in value
        or value.endswith((".lock", "."))
        or "@{" in value
    ):
        raise ValidationError(
            "%(value)s is not a commit SHA or a branch or tag name.", params={"value": value}
        )
