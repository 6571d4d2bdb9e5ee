"""The change page's overview is composed of sections that the apps built on changes provide
(its measurements, its checklist, the queue it waits on). Each registers a function from its
`AppConfig.ready()`; changes knows none of them.

A section takes the signed-in user and the change and returns the template context it adds.
"""

from collections.abc import Callable

from apps.accounts.models import User

from .models import Change

Section = Callable[[User, Change], dict]

_sections: list[Section] = []


def register(section: Section) -> None:
    """Add `section` to every change page's overview (once)."""
    if section not in _sections:
        _sections.append(section)


def overview_context(user: User, change: Change) -> dict:
    """The context every registered section adds for `user` looking at `change`."""
    context: dict = {}
    for section in _sections:
        context.update(section(user, change))
    return context
