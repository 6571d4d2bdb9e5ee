"""What the work in hand is: the request id, user, task, measurement and change that every log
line and audit entry carries, in web processes and workers alike."""

import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.utils.functional import SimpleLazyObject, empty

request_id_var: ContextVar[str] = ContextVar("request_id", default="")
# The user of a task: its request's user travels with the task (apps.core.tasklog).
user_var: ContextVar[str] = ContextVar("user", default="")
task_id_var: ContextVar[str] = ContextVar("task_id", default="")
measurement_var: ContextVar[str] = ContextVar("measurement", default="")
change_var: ContextVar[str] = ContextVar("change", default="")
# The request in hand, read for its user once authentication (Django's or the API's) set one.
request_var: ContextVar[object | None] = ContextVar("request", default=None)

_FIELDS = {
    "request_id": request_id_var,
    "user": user_var,
    "task_id": task_id_var,
    "measurement": measurement_var,
    "change": change_var,
}
LOG_FIELDS = tuple(_FIELDS)

# An incoming id is kept only if it is short and plain, so it cannot forge log lines.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(candidate: str | None) -> str:
    if candidate and _VALID_REQUEST_ID.match(candidate):
        return candidate
    return new_request_id()


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Within the block, log lines carry `fields` (names from LOG_FIELDS; None leaves one as is)."""
    tokens = [
        (_FIELDS[name], _FIELDS[name].set(str(value)))
        for name, value in fields.items()
        if value is not None
    ]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def current_user() -> str:
    """The username of the work in hand: a task's, or the request's once it was authenticated."""
    if user := user_var.get():
        return user
    request = request_var.get()
    # Never resolve a lazy user here: that would query the database from inside logging.
    user = getattr(request, "__dict__", {}).get("user")
    if user is None or (isinstance(user, SimpleLazyObject) and user._wrapped is empty):
        return ""
    return user.get_username() if user.is_authenticated else ""


class LogContextFilter(logging.Filter):
    """Puts the fields of LOG_FIELDS on every record ("" where the work in hand has none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _FIELDS.items():
            setattr(record, name, var.get())
        record.user = current_user()
        # Django logs a 4xx response after the middleware returned, naming the request instead.
        request = getattr(record, "request", None)
        if not record.request_id and request is not None:
            token = request_var.set(request)
            try:
                record.request_id = getattr(request, "request_id", "")
                record.user = current_user()
            finally:
                request_var.reset(token)
        # The plain format shows the request id alone, as "-" outside a request or task.
        record.request_id_or_dash = record.request_id or "-"
        return True
