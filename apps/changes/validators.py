import re

from django.core.exceptions import ValidationError

MAX_TEXT_LENGTH = 20_000
MAX_FILES = 5_000
MAX_PATH_LENGTH = 1_024
MAX_TAGS = 20
TAG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,49}$")


def validate_files_touched(value) -> None:
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise ValidationError("Files touched must be a list of paths.")
    if len(value) > MAX_FILES:
        raise ValidationError(f"At most {MAX_FILES} files touched.")
    for path in value:
        if not path or len(path) > MAX_PATH_LENGTH:
            raise ValidationError(f"Each path is 1 to {MAX_PATH_LENGTH} characters.")
        if "\x00" in path or "\n" in path or "\r" in path:
            raise ValidationError("A path cannot contain control characters.")
        if path.startswith("/"):
            raise ValidationError(
                "%(path)s: paths are relative to the repository root.", params={"path": path}
            )


def validate_tags(value) -> None:
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise ValidationError("Tags must be a list of words.")
    if len(value) > MAX_TAGS:
        raise ValidationError(f"At most {MAX_TAGS} tags.")
    for tag in value:
        if not TAG_PATTERN.match(tag):
            raise ValidationError(
                "%(tag)s: a tag is 1 to 50 lowercase letters, digits, '.', '_' or '-'.",
                params={"tag": tag},
            )
