"""What happens to a measurement, for the parts that react (search, notifications)."""

from dataclasses import dataclass

from apps.core.events import Event


@dataclass(frozen=True)
class MeasurementFinished(Event):
    """A measurement ended: ``status`` is its final status, ``verdicts`` maps metric → verdict.

    ``blockers`` are the reasons it keeps the change from shipping (empty when it does not);
    ``regressed`` the gating metrics that regressed, each told again by a `RegressionFound`.
    """

    measurement_id: int
    change_id: int | None
    status: str
    verdicts: tuple[tuple[str, str], ...] = ()
    blockers: tuple[str, ...] = ()
    regressed: tuple[str, ...] = ()


@dataclass(frozen=True)
class RegressionFound(Event):
    """A gating metric regressed in this measurement."""

    measurement_id: int
    change_id: int | None
    metrics: tuple[str, ...]


@dataclass(frozen=True)
class MeasurementRequested(Event):
    """A measurement of a change was asked for: the change is being measured."""

    measurement_id: int
    change_id: int
    actor_id: int | None
