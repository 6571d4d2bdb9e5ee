"""Verdicts a release can rely on: adaptive runs, every run visible, expected results checked
when filed, and profiles and environments defined through the API."""

import csv
import io

import pytest
from django.core.exceptions import ValidationError

from apps.changes.models import Change
from apps.changes.services import change_create, change_update
from apps.core.audit import audit_history
from apps.measurements.lifecycle import measurement_request
from apps.measurements.models import Measurement, MeasurementStatus, Profile, Run, RunStatus
from apps.measurements.profiles import profile_save
from apps.measurements.reports import measurement_extend, measurement_finish, run_claim
from apps.projects.models import Environment

from .conftest import make_profile

MIB = 2**20


def start(measurement: Measurement, worker: str = "w@test") -> Measurement:
    """What a worker's claim leaves: the measurement running in its hands."""
    Measurement.objects.filter(pk=measurement.pk).update(
        status=MeasurementStatus.RUNNING, worker=worker
    )
    measurement.refresh_from_db()
    return measurement


def finish_runs(measurement: Measurement, wall: dict[str, list[float]]) -> None:
    """Pending runs done with these wall times per side (taken in order), steady memory."""
    left = {side: list(values) for side, values in wall.items()}
    for run in measurement.runs.filter(status=RunStatus.PENDING).order_by("sequence"):
        seconds = left[run.side].pop(0)
        assert run_claim(run=run, worker=measurement.worker)
        Run.objects.filter(pk=run.pk).update(
            status=RunStatus.DONE,
            exit_code=0,
            wall_seconds=seconds,
            user_seconds=seconds * 0.9,
            system_seconds=seconds * 0.1,
            peak_rss_bytes=50 * MIB + 4096 * (run.sequence % 3),
            metrics={"hits": [90.0 + run.sequence % 2, "% higher"]},
            output_tail=f"run {run.sequence}",
        )


def spread(centre: float, n: int, step: float) -> list[float]:
    return [centre + step * (i - n / 2) for i in range(n)]


@pytest.fixture
def adaptive(demo_project, environment):
    return make_profile(
        demo_project, environment, name="adaptive", max_runs_per_side=15, extension_runs=5
    )


def test_an_undecided_gating_metric_adds_a_block_and_says_why(engineer, demo_change, adaptive):
    measurement = start(measurement_request(actor=engineer, change=demo_change, profile=adaptive))
    assert measurement.design == {"planned": 5, "block": 5, "maximum": 15}
    # Wall time +3 % with ~4 % scatter: the interval straddles the smallest effect (5 %).
    finish_runs(measurement, {"before": spread(1.0, 5, 0.02), "after": spread(1.03, 5, 0.02)})
    assert measurement_extend(measurement=measurement) is True
    measurement.refresh_from_db()
    assert measurement.runs_planned == 20
    assert measurement.runs.filter(status=RunStatus.PENDING).count() == 10
    (why,) = measurement.extensions
    assert why.startswith("wall time undecided (95 % CI")
    assert why.endswith("at 5 runs: adding 5")
    assert "CPU time undecided" in why, "CPU time follows wall time here"
    assert measurement.phase == why[:100]
    assert any(e.action == "extend" for e in audit_history(demo_change))
    # Pending runs first: a redelivered task runs them rather than adding more.
    assert measurement_extend(measurement=measurement) is True
    assert measurement.runs.count() == 20

    # The next block settles it: both sides the same, the interval well below 5 %.
    finish_runs(measurement, {"before": spread(1.0, 5, 0.001), "after": spread(1.0, 5, 0.001)})
    assert measurement_extend(measurement=measurement) is False
    measurement_finish(measurement=measurement)
    measurement.refresh_from_db()
    wall = next(r for r in measurement.results if r["metric"] == "wall")
    assert (wall["n_before"], wall["role"], wall["label"]) == (10, "gating", "wall time")
    assert wall["alpha"] < 0.01, "the second look spends its share of alpha only"
    hits = next(r for r in measurement.results if r["metric"] == "hits")
    assert (hits["role"], hits["lower_is_better"]) == ("informational", False)


def test_no_block_is_added_past_the_maximum_or_without_adaptive_runs(
    engineer, demo_change, profile
):
    measurement = start(measurement_request(actor=engineer, change=demo_change, profile=profile))
    finish_runs(measurement, {"before": spread(1.0, 5, 0.02), "after": spread(1.03, 5, 0.02)})
    assert measurement_extend(measurement=measurement) is False
    assert measurement.runs.count() == 10


def test_only_the_worker_holding_it_extends(engineer, demo_change, adaptive):
    measurement = start(measurement_request(actor=engineer, change=demo_change, profile=adaptive))
    finish_runs(measurement, {"before": spread(1.0, 5, 0.02), "after": spread(1.03, 5, 0.02)})
    measurement.worker = "someone-else@test"
    assert measurement_extend(measurement=measurement) is False
    assert measurement.runs.count() == 10


@pytest.fixture
def finished(engineer, demo_change, profile):
    measurement = start(measurement_request(actor=engineer, change=demo_change, profile=profile))
    finish_runs(
        measurement,
        {"before": [1.0, 1.01, 0.99, 1.0, 3.0], "after": [0.5, 0.51, 0.49, 0.5, 0.5]},
    )
    measurement_finish(measurement=measurement)
    measurement.refresh_from_db()
    return measurement


def test_every_run_through_the_api_as_json_and_csv(api_as, viewer, finished):
    runs = api_as(viewer).get(f"/api/measurements/{finished.pk}/runs/").json()
    assert [r["sequence"] for r in runs] == list(range(1, 11))
    first = runs[0]
    assert set(first) >= {
        "side",
        "exit_code",
        "duration_seconds",
        "metrics",
        "output_tail",
        "outlier",
    }
    assert first["worker"] == "w@test"
    assert first["metrics"]["cpu"]["label"] == "CPU time"
    assert first["metrics"]["peak_rss"]["unit"] == "bytes"
    slow = [r for r in runs if r["outlier"]]
    assert len(slow) == 1 and slow[0]["side"] == "before"
    assert "wall time" in slow[0]["outlier_metrics"]

    response = api_as(viewer).get(f"/api/measurements/{finished.pk}/runs/?format=csv")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 10
    assert rows[0]["peak_rss (bytes)"]
    assert {r["worker"] for r in rows} == {"w@test"}
    assert sum(r["outlier"] == "True" for r in rows) == 1


def test_the_page_shows_reasons_runs_and_the_csv(as_user, viewer, finished):
    page = as_user(viewer).get(f"/measurements/{finished.pk}/").content.decode()
    wall = next(r for r in finished.results if r["metric"] == "wall")
    assert f'<small class="reason">{wall["reason"]}</small>' in page
    assert "MiB" in page and " MB" not in page
    assert "<strong>outlier</strong>: wall time" in page
    assert '<th scope="col">Worker</th>' in page
    assert page.count('<td class="mono worker">w@test</td>') == 10
    assert f"/measurements/{finished.pk}/runs.csv" in page
    download = as_user(viewer).get(f"/measurements/{finished.pk}/runs.csv")
    assert download["Content-Disposition"].endswith(f'measurement-{finished.pk}-runs.csv"')
    assert len(download.content.decode().splitlines()) == 11


# --- expected results ---------------------------------------------------------------------


def test_an_expected_result_must_name_a_known_metric(engineer, demo_project):
    fields = {
        "project": demo_project,
        "title": "Faster",
        "reason": "Slow.",
        "base_revision": "main",
        "head_revision": "fix/bounded-cache",
    }
    for text in ("peak RSS \u221220 %", "CPU time -10 %", "Wall time down 5 %", "a free text"):
        assert change_create(actor=engineer, expected_result=text, **fields).pk
    with pytest.raises(ValidationError) as excinfo:
        change_create(actor=engineer, expected_result="heap size -20 %", **fields)
    (message,) = excinfo.value.message_dict["expected_result"]
    assert message.startswith("No metric named “heap size” is measured here")
    assert "peak RSS" in message
    change = Change.objects.filter(project=demo_project).first()
    with pytest.raises(ValidationError):
        change_update(actor=engineer, change=change, expected_result="heap size -20 %")


def test_a_metric_the_project_measures_may_be_expected(engineer, demo_project, finished):
    change = change_create(
        actor=engineer,
        project=demo_project,
        title="More hits",
        reason="Cold cache.",
        expected_result="hits +2 %",
    )
    assert change.expected_result == "hits +2 %"
    # A label the profile's policy gives a metric may be expected too.
    finished.profile.metric_policy = {"hits": {"label": "cache hits", "direction": "higher"}}
    profile_save(actor=None, profile=finished.profile)
    labelled = change_update(actor=engineer, change=change, expected_result="cache hits +2 %")
    assert labelled.expected_result == "cache hits +2 %"


def test_the_form_and_the_api_say_so(as_user, api_as, engineer, demo_project):
    form = {
        "title": "t",
        "project": demo_project.pk,
        "reason": "r",
        "expected_result": "heap -20 %",
        "tags": "",
    }
    page = as_user(engineer).post("/changes/new/", form)
    assert page.status_code == 200
    assert "No metric named “heap” is measured here" in page.content.decode()
    api = api_as(engineer).post(
        "/api/changes/",
        {"title": "t", "project": "demo", "reason": "r", "expected_result": "heap -20 %"},
        format="json",
    )
    assert api.status_code == 400
    assert "No metric named" in str(api.json()["expected_result"])


# --- profiles and environments through the API --------------------------------------------


def test_admins_define_profiles_through_the_api(api_as, admin, engineer, viewer, demo_project):
    api = api_as(admin)
    created = api.post(
        "/api/environments/",
        {"name": "ci", "description": "CI runners", "config_files": ["/etc/app.toml"]},
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = {
        "project": "demo",
        "name": "bench",
        "environment": "ci",
        "argv": ["python", "bench.py"],
        "setup_argv": ["make"],
        "env": {"LOG_LEVEL": "warning"},
        "runs_per_side": 10,
        "max_runs_per_side": 30,
        "extension_runs": 10,
        "timeout_seconds": 60,
        "memory_limit_mb": 512,
        "metric_policy": {"wall time": {"role": "informational"}, "hits": {"direction": "higher"}},
    }
    response = api.post("/api/profiles/", body, format="json")
    assert response.status_code == 201, response.json()
    profile = Profile.objects.get(name="bench")
    assert profile.metric_policy == {
        "wall": {"role": "informational"},
        "hits": {"direction": "higher"},
    }
    assert profile.env == {"LOG_LEVEL": "warning"}
    roles = {m["key"]: m["role"] for m in response.json()["metrics"]}
    assert roles["wall"] == "informational" and roles["cpu"] == "gating"
    assert [e.action for e in audit_history(profile)] == ["create"]

    edited = api.patch(f"/api/profiles/{profile.pk}/", {"memory_limit_mb": 1024}, format="json")
    assert edited.status_code == 200
    assert audit_history(profile).first().after["memory_limit_mb"] == 1024

    for bad in (
        {"argv": "python bench.py"},
        {"metric_policy": {"wall": {"role": "blocking"}}},
        {"max_runs_per_side": 5},
        {"env": {"1BAD": "x"}},
    ):
        refused = api.patch(f"/api/profiles/{profile.pk}/", bad, format="json")
        assert refused.status_code == 400, bad
        assert set(refused.json()) == set(bad), refused.json()

    for persona in (engineer, viewer):
        assert api_as(persona).get("/api/profiles/").status_code == 200
        assert api_as(persona).post("/api/profiles/", body, format="json").status_code == 403
        assert (
            api_as(persona)
            .patch(f"/api/profiles/{profile.pk}/", {"argv": ["rm"]}, format="json")
            .status_code
            == 403
        )
        assert api_as(persona).post("/api/environments/", {"name": "x"}).status_code == 403
    assert Environment.objects.filter(name="x").count() == 0
    profile.refresh_from_db()
    assert profile.argv == ["python", "bench.py"]


def test_a_worker_runs_the_added_blocks_up_to_the_maximum(
    engineer, demo_change, demo_project, environment
):
    from apps.measurements.execution import execute

    # A gating metric that never moves sits exactly on a zero smallest effect: undecided at
    # every look, so the worker must run every block there is, and no more.
    undecidable = make_profile(
        demo_project,
        environment,
        name="undecidable",
        max_runs_per_side=6,
        extension_runs=1,
        metric_policy={"bytes_served": {"role": "gating", "smallest_effect_pct": 0}},
    )
    measurement = measurement_request(actor=engineer, change=demo_change, profile=undecidable)
    execute(measurement_id=measurement.pk, worker="w@test")
    measurement.refresh_from_db()
    assert measurement.status == MeasurementStatus.DONE, measurement.error
    assert measurement.runs_done == measurement.runs_planned == 12
    (why,) = measurement.extensions
    # (On a loaded host wall time may be undecided too; bytes served always is.)
    assert "bytes served undecided (95 % CI 0.00…0.00 % straddles" in why
    assert why.endswith("at 5 runs: adding 1")
    served = next(r for r in measurement.results if r["metric"] == "bytes_served")
    assert served["n_before"] == served["n_after"] == 6
