"""A measurement's own log lines, kept on it so that its page shows them.

A worker's log handler collects the lines logged while a measurement's task runs (the log
context names the measurement, apps.core.context); the task stores them on the measurement
when it ends, at most MAX_LINES, newest kept. Collected in memory and written once: a logging
handler must not write to the database inside whatever transaction the line was logged in.
"""

import logging
import threading

MAX_LINES = 300
_lock = threading.Lock()
_pending: dict[str, list[str]] = {}


class MeasurementLogHandler(logging.Handler):
    """Collects the formatted lines of records whose context names a measurement."""

    def emit(self, record: logging.LogRecord) -> None:
        measurement = getattr(record, "measurement", "")
        if not measurement:
            return
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        with _lock:
            lines = _pending.setdefault(measurement, [])
            lines.append(line)
            del lines[:-MAX_LINES]


def collected(measurement_id: int) -> list[str]:
    """The lines collected for a measurement since last asked, handed over once."""
    with _lock:
        return _pending.pop(str(measurement_id), [])


def measurement_log_save(*, measurement_id: int) -> None:
    """Append the collected lines to the measurement's log, keeping the last MAX_LINES."""
    from .models import Measurement

    lines = collected(measurement_id)
    if not lines:
        return
    # Only the worker holding the measurement writes its log: read, append, write is enough.
    rows = Measurement.objects.filter(pk=measurement_id)
    previous = rows.values_list("log_lines", flat=True).first()
    if previous is not None:
        rows.update(log_lines=(previous + lines)[-MAX_LINES:])
