"""What checklists do when something happens to a change or its measurements.

Registered in `ChecklistsConfig.ready()`; each runs after the write that caused it commits.
"""

from apps.changes.events import ChangesFiled
from apps.measurements.events import MeasurementFinished
from apps.measurements.models import Measurement, MeasurementStatus

from .staging import staging_config_record
from .templates import checklist_copy

# Changes given their checklists per query: an import files thousands at once.
BATCH = 2000


def copy_checklists(event: ChangesFiled) -> None:
    """Newly filed changes get their project's checklist."""
    ids = list(event.change_ids)
    for start in range(0, len(ids), BATCH):
        checklist_copy(change_ids=ids[start : start + BATCH])


def record_staging_config(event: MeasurementFinished) -> None:
    """The staging-config item is done when the config did not move during the measurement."""
    if event.change_id is None or event.status != MeasurementStatus.DONE:
        return
    measurement = Measurement.objects.select_related("change").get(pk=event.measurement_id)
    staging_config_record(
        change=measurement.change,
        start=measurement.config_at_start,
        end=measurement.config_at_end,
    )
