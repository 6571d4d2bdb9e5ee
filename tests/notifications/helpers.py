"""Publishing events the way services will, and sending what they queued in-process."""

from apps.core.events import deliver
from apps.measurements.events import MeasurementFinished, RegressionFound
from apps.measurements.models import Measurement, MeasurementStatus, Profile
from apps.notifications.models import Delivery, DeliveryStatus
from apps.notifications.tasks import send_delivery
from apps.projects.models import Environment

# (metric, verdict, change in %): what a measurement of the change found.
IMPROVED = (("peak_rss", "improved", -31.5), ("wall", "no detectable change", 0.4))
REGRESSED = (("peak_rss", "no detectable change", 0.1), ("wall", "regressed", 12.0))


def measured(change, found=IMPROVED, **values) -> Measurement:
    """A finished measurement of `change` with these results (as a worker stores them)."""
    environment, _ = Environment.objects.get_or_create(name="notices")
    profile, _ = Profile.objects.get_or_create(
        project=change.project,
        name="handle 20k requests",
        defaults={"environment": environment, "argv": ["true"]},
    )
    results = [
        {
            "metric": metric,
            "verdict": verdict,
            "change_pct": pct,
            "unit": "B" if metric == "peak_rss" else "s",
            "median_before": 100.0,
            "median_after": 100.0 + pct,
            "ci_low_pct": pct - 1,
            "ci_high_pct": pct + 1,
            "p_value": 0.001,
            "noise": 0.01,
            "resolution": 0.02,
            "n_before": 5,
            "n_after": 5,
        }
        for metric, verdict, pct in found
    ]
    values = {"status": MeasurementStatus.DONE, "results": results, **values}
    return Measurement.objects.create(
        change=change, profile=profile, base_sha="a" * 40, head_sha="b" * 40, **values
    )


def finished(measurement: Measurement) -> MeasurementFinished:
    """The event `measurement_finish` publishes for it."""
    results = measurement.results or []
    return MeasurementFinished(
        measurement_id=measurement.pk,
        change_id=measurement.change_id,
        status=measurement.status,
        verdicts=tuple((r["metric"], r["verdict"]) for r in results),
        regressed=tuple(r["metric"] for r in results if r["verdict"] == "regressed"),
    )


def regression(measurement: Measurement) -> RegressionFound:
    return RegressionFound(
        measurement_id=measurement.pk,
        change_id=measurement.change_id,
        metrics=finished(measurement).regressed,
    )


def notify(event, capture) -> list[Delivery]:
    """Deliver `event` to its subscribers; the deliveries it queued (their sends captured, not
    run: `send_all` runs them)."""
    before = set(Delivery.objects.values_list("pk", flat=True))
    with capture(execute=False) as callbacks:
        deliver(event)
    created = list(Delivery.objects.exclude(pk__in=before).order_by("pk"))
    # One on-commit send per new delivery, nothing else.
    assert len(callbacks) == len(created)
    return created


def send_all() -> None:
    """Run the send task in this process for every pending delivery, retries included."""
    pending = Delivery.objects.filter(status=DeliveryStatus.PENDING).order_by("pk")
    for pk in pending.values_list("pk", flat=True):
        send_delivery.apply(args=[pk])
