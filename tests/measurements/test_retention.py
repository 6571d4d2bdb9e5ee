"""Keeping the database lean: old measurements lose their runs' raw samples, never what was
concluded from them, and their page says what was pruned."""

from datetime import timedelta

from django.utils import timezone

from apps.core.audit import audit_history
from apps.measurements.models import Measurement
from apps.measurements.retention import measurements_prune
from apps.measurements.tasks import prune_measurements

from .conftest import measure


def raw(measurement) -> list[tuple]:
    return [(bool(r.rss_timeline), bool(r.output_tail)) for r in measurement.runs.all()]


def figures(measurement) -> list[tuple]:
    return [
        (r.peak_rss_bytes, r.wall_seconds, r.metrics, r.exit_code) for r in measurement.runs.all()
    ]


def test_old_measurements_lose_raw_samples_and_keep_their_findings(
    as_user, engineer, demo_change, profile, settings
):
    measurement = measure(engineer, demo_change, profile)
    kept = (measurement.results, measurement.expectation, figures(measurement))
    assert any(timeline for timeline, _tail in raw(measurement)), "nothing to prune"

    settings.RETENTION_DAYS = 30
    prune_measurements()
    measurement.refresh_from_db()
    assert measurement.pruned_at is None, "a recent measurement keeps its samples"

    Measurement.objects.filter(pk=measurement.pk).update(
        finished_at=timezone.now() - timedelta(days=31), log_lines=["measurement: starting"]
    )
    prune_measurements()
    measurement.refresh_from_db()
    assert measurement.pruned_at is not None
    assert raw(measurement) == [(False, False)] * measurement.runs.count()
    assert measurement.log_lines == []
    assert (measurement.results, measurement.expectation, figures(measurement)) == kept
    assert audit_history(measurement).get(action="pruned").actor is None
    assert measurements_prune(older_than=timedelta(days=30)) == 0, "pruned once only"

    page = as_user(engineer).get(demo_change.get_absolute_url()).content.decode()
    assert "Raw samples pruned on" in page
    assert "verdict-improved" in page, "the verdicts stay on the page"
    assert "<polyline" not in page, "no timeline is drawn from pruned samples"


def test_active_measurements_are_never_pruned(engineer, demo_change, profile):
    from apps.measurements.lifecycle import measurement_request

    queued = measurement_request(actor=engineer, change=demo_change, profile=profile)
    Measurement.objects.filter(pk=queued.pk).update(created=timezone.now() - timedelta(days=400))
    assert measurements_prune(older_than=timedelta(days=1)) == 0
