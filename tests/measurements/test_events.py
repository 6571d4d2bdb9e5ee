"""Measurements publish what they found: finished with verdicts and blockers, regressions."""

from apps.changes.events import ChangeReadyForReview
from apps.changes.models import ChangeStatus
from apps.measurements.events import MeasurementFinished, MeasurementRequested, RegressionFound
from apps.measurements.lifecycle import measurement_request
from apps.measurements.metrics import blocking_results
from apps.measurements.models import MeasurementStatus
from apps.measurements.reports import measurement_fail, measurement_finish
from apps.search.models import SearchEntry

from .test_verdicts import finish_runs, start


def test_requesting_publishes_and_search_sees_measuring(engineer, demo_change, profile, delivered):
    seen = delivered(MeasurementRequested)
    measurement = measurement_request(actor=engineer, change=demo_change, profile=profile)
    assert seen == [
        MeasurementRequested(
            measurement_id=measurement.pk, change_id=demo_change.pk, actor_id=engineer.pk
        )
    ]
    assert SearchEntry.objects.get(change=demo_change).status == ChangeStatus.MEASURING


def test_a_finished_measurement_publishes_its_verdicts_and_the_change_is_ready(
    engineer, demo_change, profile, delivered
):
    seen = delivered(MeasurementFinished, RegressionFound, ChangeReadyForReview)
    measurement = start(measurement_request(actor=engineer, change=demo_change, profile=profile))
    finish_runs(
        measurement,
        {"before": [1.0, 1.01, 0.99, 1.0, 1.02], "after": [0.5, 0.51, 0.49, 0.5, 0.5]},
    )
    measurement_finish(measurement=measurement)
    measurement.refresh_from_db()
    finished, ready = seen
    assert finished.measurement_id == measurement.pk
    assert finished.change_id == demo_change.pk
    assert finished.status == MeasurementStatus.DONE
    assert ("wall", "improved") in finished.verdicts
    assert finished.blockers == tuple(text for _key, text in blocking_results(measurement))
    assert ready == ChangeReadyForReview(change_id=demo_change.pk)
    entry = SearchEntry.objects.get(change=demo_change)
    assert entry.status == ChangeStatus.READY
    assert "improved" in entry.verdicts


def test_a_gating_metric_that_regressed_is_a_regression_found(
    engineer, demo_change, profile, delivered
):
    seen = delivered(MeasurementFinished, RegressionFound)
    measurement = start(measurement_request(actor=engineer, change=demo_change, profile=profile))
    finish_runs(
        measurement,
        {"before": [1.0, 1.01, 0.99, 1.0, 1.02], "after": [2.0, 2.01, 1.99, 2.0, 2.02]},
    )
    measurement_finish(measurement=measurement)
    finished, regression = seen
    assert ("wall", "regressed") in finished.verdicts
    assert any("wall time" in text for text in finished.blockers)
    assert regression.measurement_id == measurement.pk
    assert regression.change_id == demo_change.pk
    assert "wall" in regression.metrics


def test_a_failed_measurement_is_finished_too_without_verdicts(
    engineer, demo_change, profile, delivered
):
    seen = delivered(MeasurementFinished, RegressionFound)
    measurement = start(measurement_request(actor=engineer, change=demo_change, profile=profile))
    measurement_fail(measurement_id=measurement.pk, error="the worker's disk is full")
    assert seen == [
        MeasurementFinished(
            measurement_id=measurement.pk,
            change_id=demo_change.pk,
            status=MeasurementStatus.FAILED,
        )
    ]
