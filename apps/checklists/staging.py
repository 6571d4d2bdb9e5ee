"""The staging-config item: done only when a measurement saw the configuration hold."""

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.changes.models import Change

from .items import set_state
from .models import ChecklistItem, ItemKind, ItemState


def require_staging_evidence(change: Change) -> None:
    """“Verify staging config” is done only with a measurement of the current revisions whose
    environment kept its configuration from the first run to the last."""
    from apps.measurements.models import MeasurementKind
    from apps.measurements.selectors import latest_finished

    latest = latest_finished(change, current_only=True, kinds=(MeasurementKind.COMPARE,))
    if not (change.base_sha and change.head_sha) or latest is None:
        raise ValidationError(
            "“Verify staging config” compares the configuration a measurement of the current "
            "revisions ran under: measure the change first (or skip the item, saying why)."
        )
    if latest.config_at_start != latest.config_at_end:
        raise ValidationError(
            f"The staging configuration changed during measurement {latest.pk}: measure again."
        )


def staging_config_record(*, change: Change, start: str, end: str) -> None:
    """After a measurement: the staging-config item is done when the config did not move."""
    item = change.checklist.filter(kind=ItemKind.STAGING_CONFIG, state=ItemState.OPEN).first()
    if item is None or not start:
        return
    with transaction.atomic():
        locked = ChecklistItem.objects.select_for_update().get(pk=item.pk)
        if start == end:
            set_state(locked, actor=None, state=ItemState.DONE, evidence={"fingerprint": start})
        else:
            locked.evidence = {
                "warning": "The staging configuration changed during the measurement.",
                "fingerprint_before": start,
                "fingerprint_after": end,
            }
            locked.save(update_fields=["evidence"])
