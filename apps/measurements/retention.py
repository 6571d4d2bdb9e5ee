"""Keeping the database lean: the raw samples of old measurements' runs are deleted, what was
concluded from them is kept."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.core.audit import audit_record_many

from .models import ACTIVE_STATUSES, Measurement, Run

# Measurements pruned per transaction: a first pass over years of history must not hold one
# long transaction (and its locks) open.
BATCH = 200


def prunable(*, older_than: timedelta):
    """Finished measurements older than `older_than` whose raw samples are still kept."""
    cutoff = timezone.now() - older_than
    return Measurement.objects.exclude(status__in=ACTIVE_STATUSES).filter(
        Q(finished_at__lt=cutoff) | Q(finished_at__isnull=True, created__lt=cutoff),
        pruned_at__isnull=True,
    )


def measurements_prune(*, older_than: timedelta | None = None) -> int:
    """Delete the RSS timelines and output tails of old measurements' runs, and their logs.

    Kept: each measurement's results, verdicts, expectation, attribution and notes, and every
    run's figures (peak RSS, times, metrics), so pages, exports and search still show what was
    found. The measurement records when it was pruned. Safe to run twice: a pruned measurement
    is not pruned again. Returns how many measurements were pruned.
    """
    older_than = older_than or timedelta(days=settings.RETENTION_DAYS)
    pruned = 0
    while True:
        with transaction.atomic():
            batch = list(
                prunable(older_than=older_than)
                .select_for_update(skip_locked=True, of=("self",))
                .order_by("pk")[:BATCH]
            )
            if not batch:
                return pruned
            now = timezone.now()
            ids = [m.pk for m in batch]
            Run.objects.filter(measurement_id__in=ids).update(rss_timeline=[], output_tail="")
            Measurement.objects.filter(pk__in=ids).update(pruned_at=now, log_lines=[])
            audit_record_many(
                actor=None,
                action="pruned",
                objs=batch,
                after=lambda m: {"pruned": "its runs' RSS timelines and output tails, its log"},
            )
        pruned += len(batch)
