import re

from django.core.exceptions import ValidationError

MAX_ARGS = 100
MAX_ARG_LENGTH = 1_000
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def validate_argv(value, *, allow_empty: bool = False) -> None:
    """An argv list as an admin writes it: run without a shell, so no quoting games."""
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise ValidationError(
            'Write the command as a JSON list of strings, e.g. ["python", "x.py"].'
        )
    if not value and not allow_empty:
        raise ValidationError("The command needs at least the program to run.")
    if len(value) > MAX_ARGS:
        raise ValidationError(f"At most {MAX_ARGS} arguments.")
    for arg in value:
        if len(arg) > MAX_ARG_LENGTH or "\x00" in arg:
            raise ValidationError(f"Each argument is at most {MAX_ARG_LENGTH} characters, no NUL.")
    if value and not value[0]:
        raise ValidationError("The program name cannot be empty.")


def validate_optional_argv(value) -> None:
    validate_argv(value, allow_empty=True)


def validate_env(value) -> None:
    if not isinstance(value, dict):
        raise ValidationError(
            'Write the variables as a JSON object, e.g. {"LOG_LEVEL": "warning"}.'
        )
    for name, val in value.items():
        if not _ENV_NAME.match(name) or not isinstance(val, str) or "\x00" in val:
            raise ValidationError(f"{name!r}: names are letters, digits and _, values are strings.")


def validate_metric_policy(value) -> None:
    from .metrics import PolicyError, validate_policy

    try:
        validate_policy(value)
    except PolicyError as exc:
        raise ValidationError(str(exc)) from None


def validate_http_plan(value) -> None:
    from .http.plan import PlanError, parse_plan

    if value in ({}, None):
        return  # command profiles have none; an HTTP profile's clean() asks for one
    try:
        parse_plan(value)
    except PlanError as exc:
        raise ValidationError(f"Request plan: {exc}") from None
    except (TypeError, AttributeError):
        raise ValidationError("Write the request plan as a JSON object.") from None


def validate_reset(value) -> None:
    """`{}`, a request `{"method", "path"}` to the probed service, or a command `{"argv"}`."""
    from .http.plan import METHODS, PlanError, validate_path

    if value in ({}, None):
        return
    if not isinstance(value, dict) or set(value) not in ({"method", "path"}, {"argv"}):
        raise ValidationError(
            'Write the reset step as {"method": "POST", "path": "/cache/clear"} or '
            '{"argv": ["python", "clear_cache.py"]}.'
        )
    if "argv" in value:
        validate_argv(value["argv"])
        return
    if value["method"] not in METHODS:
        raise ValidationError(f"The reset method is one of {', '.join(METHODS)}.")
    try:
        validate_path(value["path"])
    except PlanError as exc:
        raise ValidationError(f"Reset path: {exc}") from None
