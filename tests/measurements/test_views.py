"""Measuring from the change page and through the API."""

from apps.measurements.execution import execute
from apps.measurements.models import Measurement, MeasurementStatus


def test_owner_measures_from_the_change_page(as_user, engineer, demo_change, profile):
    client = as_user(engineer)
    page = client.get(demo_change.get_absolute_url()).content.decode()
    assert "handle 20k requests" in page
    response = client.post(f"/changes/FIX-{demo_change.pk}/measure/", {"profile": profile.pk})
    assert response.status_code == 302
    measurement = Measurement.objects.get()
    page = client.get(demo_change.get_absolute_url()).content.decode()
    # While it runs the section polls itself and shows its progress.
    assert f'hx-get="/measurements/{measurement.pk}/"' in page
    assert "0 of 10 runs" in page
    partial = client.get(
        f"/measurements/{measurement.pk}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="x"
    ).content.decode()
    assert "<html" not in partial
    assert "<progress" in partial


def test_finished_measurement_shows_verdicts_and_charts(as_user, engineer, demo_change, profile):
    client = as_user(engineer)
    client.post(f"/changes/FIX-{demo_change.pk}/measure/", {"profile": profile.pk})
    measurement = Measurement.objects.get()
    execute(measurement_id=measurement.pk, worker="w@test")
    page = client.get(demo_change.get_absolute_url()).content.decode()
    assert "every 1s" not in page, "a finished measurement stops polling"
    assert "peak RSS" in page
    assert "verdict-improved" in page
    assert "<svg" in page
    assert "<polyline" in page, "the RSS timeline of both sides"
    assert "expect-met" in page
    assert all(run.sandboxed for run in measurement.runs.all())
    assert "without a sandbox" not in page


def test_every_result_says_when_its_runs_ran_unsandboxed(
    as_user, engineer, demo_change, profile, settings
):
    # A worker that cannot sandbox (here: an admin listed the data folder to be shown, which
    # it refuses) and whose admin allows unsandboxed runs.
    settings.SANDBOX_READONLY_FOLDERS = [str(settings.DATA_DIR)]
    settings.ALLOW_UNSANDBOXED_RUNS = True
    client = as_user(engineer)
    client.post(f"/changes/FIX-{demo_change.pk}/measure/", {"profile": profile.pk})
    measurement = Measurement.objects.get()
    execute(measurement_id=measurement.pk, worker="w@test")
    assert not any(run.sandboxed for run in measurement.runs.all())
    for url in (demo_change.get_absolute_url(), f"/measurements/{measurement.pk}/"):
        page = client.get(url).content.decode()
        assert "10 runs of this measurement ran <strong>without a sandbox</strong>" in page


def test_viewer_sees_no_measure_form_and_cannot_post(as_user, viewer, demo_change, profile):
    client = as_user(viewer)
    assert "Measure</button>" not in client.get(demo_change.get_absolute_url()).content.decode()
    assert (
        client.post(f"/changes/FIX-{demo_change.pk}/measure/", {"profile": profile.pk}).status_code
        == 403
    )
    assert not Measurement.objects.exists()


def test_measure_without_a_profile_is_a_clear_error(as_user, engineer, demo_change):
    response = as_user(engineer).post(f"/changes/FIX-{demo_change.pk}/measure/", follow=True)
    assert "Pick a measurement profile" in response.content.decode()


def test_api_start_follow_and_cancel(api_as, engineer, viewer, demo_change, profile):
    api = api_as(engineer)
    body = {"change": f"FIX-{demo_change.pk}", "profile": profile.pk}
    assert api_as(viewer).post("/api/measurements/", body, format="json").status_code == 403
    created = api.post("/api/measurements/", body, format="json")
    assert created.status_code == 201
    data = created.json()
    assert data["status"] == "queued"
    assert data["runs_planned"] == 10
    assert data["change"] == f"FIX-{demo_change.pk}"
    assert api.post(f"/api/measurements/{data['id']}/cancel/").status_code == 204
    assert api.get(f"/api/measurements/{data['id']}/").json()["status"] == "cancelled"


def test_api_bad_requests(api_as, engineer, demo_change, profile):
    api = api_as(engineer)
    bad_change = api.post("/api/measurements/", {"change": "nope", "profile": 1}, format="json")
    assert bad_change.status_code == 400
    assert "change" in bad_change.json()
    bad_profile = api.post(
        "/api/measurements/", {"change": demo_change.pk, "profile": "x"}, format="json"
    )
    assert bad_profile.status_code == 400
    assert "profile" in bad_profile.json()
    for body in ([None, None], "x", {"change": demo_change.pk, "profile": 1e300}):
        assert api.post("/api/measurements/", body, format="json").status_code == 400
    assert (
        api.post(f"/api/profiles/{profile.pk}/calibrate/", ["x"], format="json").status_code == 400
    )


def test_api_results(api_as, engineer, demo_change, profile):
    api = api_as(engineer)
    data = api.post(
        "/api/measurements/", {"change": demo_change.pk, "profile": profile.pk}, format="json"
    ).json()
    execute(measurement_id=data["id"], worker="w@test")
    done = api.get(f"/api/measurements/{data['id']}/").json()
    assert done["status"] == MeasurementStatus.DONE
    peak = next(r for r in done["results"] if r["metric"] == "peak_rss")
    assert peak["verdict"] == "improved"
    assert peak["ci_high_pct"] < 0


def test_api_calibrate(api_as, engineer, profile):
    response = api_as(engineer).post(
        f"/api/profiles/{profile.pk}/calibrate/", {"revision": "main"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["kind"] == "calibrate"
    bad = api_as(engineer).post(
        f"/api/profiles/{profile.pk}/calibrate/", {"revision": "--evil"}, format="json"
    )
    assert bad.status_code == 400
    assert "revision" in bad.json()


def test_calibrate_from_the_project_page(as_user, engineer, profile):
    client = as_user(engineer)
    assert "Calibrate" in client.get("/projects/demo/").content.decode()
    response = client.post(f"/measurements/profiles/{profile.pk}/calibrate/", {"revision": "main"})
    measurement = Measurement.objects.get()
    assert response["Location"] == f"/measurements/{measurement.pk}/"


def test_the_table_shows_what_calibration_found(as_user, engineer, demo_change, profile):
    from apps.measurements.lifecycle import measurement_calibrate

    execute(
        measurement_id=measurement_calibrate(actor=engineer, profile=profile, revision="main").pk,
        worker="w@test",
    )
    client = as_user(engineer)
    client.post(f"/changes/FIX-{demo_change.pk}/measure/", {"profile": profile.pk})
    execute(measurement_id=Measurement.objects.filter(kind="compare").get().pk, worker="w@test")
    assert "profile resolves" in client.get(demo_change.get_absolute_url()).content.decode()


def test_cancelling_a_calibration_returns_to_its_project(as_user, engineer, profile):
    from apps.measurements.lifecycle import measurement_calibrate

    measurement = measurement_calibrate(actor=engineer, profile=profile, revision="main")
    response = as_user(engineer).post(f"/measurements/{measurement.pk}/cancel/")
    assert response.status_code == 302
    assert response["Location"] == "/projects/demo/"
    measurement.refresh_from_db()
    assert measurement.status == MeasurementStatus.CANCELLED


def test_the_status_sentence_changes_with_the_stage_not_each_run(demo_change, profile):
    from apps.measurements.selectors import announcement

    assert announcement(None) == ""
    m = Measurement.objects.create(change=demo_change, profile=profile)
    assert announcement(m) == "Measurement queued: waiting for a worker."
    m.status, m.phase = MeasurementStatus.RUNNING, "run 1 (before)"
    first = announcement(m)
    m.phase = "warm-up 7 (before)"
    assert announcement(m) == first == "Measurement running: measuring the before side."
    m.phase = "run 8 (after)"
    assert announcement(m) == "Measurement running: measuring the after side."
    m.phase = "computing the verdict"
    assert announcement(m) == "Measurement running: computing the verdict."
    m.status = MeasurementStatus.DONE
    m.results = [
        {"metric": "peak_rss", "role": "gating", "verdict": "improved"},
        {"metric": "wall_seconds", "role": "guard", "verdict": "no change"},
    ]
    assert announcement(m) == "Measurement done: peak RSS improved."
    m.status = MeasurementStatus.CANCELLED
    assert announcement(m) == "Measurement cancelled."


def test_a_poll_says_the_sentence_only_when_it_changed(as_user, engineer, demo_change, profile):
    client = as_user(engineer)
    client.post(f"/changes/FIX-{demo_change.pk}/measure/", {"profile": profile.pk})
    measurement = Measurement.objects.get()
    page = client.get(demo_change.get_absolute_url()).content.decode()
    assert 'id="measurement-status"' in page
    assert 'hx-include="#measurement-said"' in page
    poll = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": f"measurement-{measurement.pk}"}
    url = f"/measurements/{measurement.pk}/"
    queued = "Measurement queued: waiting for a worker."
    same = client.get(url, {"said": queued}, **poll).content.decode()
    assert "hx-swap-oob" not in same, "the same sentence is not said again"
    Measurement.objects.filter(pk=measurement.pk).update(
        status=MeasurementStatus.RUNNING, phase="run 1 (before)"
    )
    moved = client.get(url, {"said": queued}, **poll).content.decode()
    assert 'id="measurement-status" class="visually-hidden" role="status" hx-swap-oob' in moved
    assert "Measurement running: measuring the before side." in moved
    # A page without the region (no `said` sent) gets nothing it could not place.
    assert "hx-swap-oob" not in client.get(url, **poll).content.decode()


def test_the_section_answers_again_without_measure_once_shipped(
    as_user, engineer, demo_change, profile
):
    from apps.changes.models import Change, ChangeStatus

    client = as_user(engineer)
    url = f"/measurements/changes/{demo_change.pk}/"
    assert client.get(url).status_code == 302, "without htmx: the change page"
    section = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert 'id="measure-button"' in section
    assert 'hx-trigger="change-closed from:body"' in section
    Change.objects.filter(pk=demo_change.pk).update(status=ChangeStatus.SHIPPED)
    section = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert 'id="measure-button"' not in section
    assert 'id="measurements"' in section
