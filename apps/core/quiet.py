"""Beat's routine passes leave the log alone when they found nothing to do.

Every few seconds beat sends each reconcile task, and Celery logs at INFO that it sent it, that
a worker received it and that it succeeded: lines that drown the ones that matter. This filter
drops those three for the routine tasks; the passes log what they did themselves
(apps.core.work.reconcile), and a failure still logs as an error.
"""

import logging
from collections.abc import Iterable

_BEAT_SENDS = "Scheduler: Sending due task"


class RoutineTaskFilter(logging.Filter):
    def __init__(self, tasks: Iterable[str] = ()) -> None:
        super().__init__()
        self.tasks = frozenset(tasks)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not record.name.startswith("celery."):
            return True
        return _task_of(record) not in self.tasks


def _task_of(record: logging.LogRecord) -> str | None:
    # A worker's "received" and "succeeded" lines carry their fields as `data`; beat's line
    # has the entry's name and task as its arguments.
    data = getattr(record, "data", None)
    if isinstance(data, dict):
        return data.get("name")
    if isinstance(record.msg, str) and record.msg.startswith(_BEAT_SENDS):
        args = record.args
        if isinstance(args, tuple) and len(args) == 2:
            return args[1]
    return None
