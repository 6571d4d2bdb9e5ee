"""Whether a change's expected result names something fixledger can check.

The metrics belong to measurements, which builds on changes: it registers its check from its
`AppConfig.ready()`. A check takes the project's id and the text and returns why the text
cannot be checked, or "" when it can.
"""

from collections.abc import Callable

Check = Callable[[int | None, str], str]

_checks: list[Check] = []


def register(check: Check) -> None:
    if check not in _checks:
        _checks.append(check)


def expectation_error(project_id: int | None, text: str) -> str:
    """The first reason a registered check gives, or ""."""
    for check in _checks:
        error = check(project_id, text)
        if error:
            return error
    return ""
