"""HTTP profiles through the API: every field, admin-only writes, audited, plans checked on save."""

from apps.core.audit import audit_history
from apps.measurements.models import Profile

from .conftest import demo_change, demo_project, environment, profile  # noqa: F401

PLAN = {"entries": [{"path": "/items"}], "requests": 1000, "rate": 200}


def test_admins_define_http_profiles_through_the_api(
    api_as,
    admin,
    engineer,
    demo_project,  # noqa: F811
):
    api = api_as(admin)
    staging = api.post(
        "/api/environments/",
        {"name": "staging", "base_url": "http://127.0.0.1:8999"},
        format="json",
    )
    assert staging.status_code == 201, staging.json()
    api.post("/api/environments/", {"name": "bare"}, format="json")
    body = {
        "project": "demo",
        "name": "serve it",
        "environment": "staging",
        "kind": "http",
        "http_target": "serve",
        "argv": ["python", "app.py", "--port", "{port}"],
        "ready_path": "/health",
        "startup_timeout_seconds": 20,
        "http_plan": PLAN,
        "reset": {"method": "POST", "path": "/cache/clear"},
    }
    created = api.post("/api/profiles/", body, format="json")
    assert created.status_code == 201, created.json()
    data = created.json()
    assert data["kind"] == "http" and data["http_plan"] == PLAN and data["ready_path"] == "/health"
    roles = {m["key"]: m["role"] for m in data["metrics"]}
    assert roles["latency_p99"] == roles["db_queries"] == roles["rss_slope"] == "gating"
    assert roles["latency_p50"] == roles["cache_hit_ratio"] == "informational"
    serving = Profile.objects.get(name="serve it")
    assert [e.action for e in audit_history(serving)] == ["create"]

    live = api.post(
        "/api/profiles/",
        {**body, "name": "live", "http_target": "staging", "argv": []},
        format="json",
    )
    assert live.status_code == 201, live.json()

    for bad, field in (
        ({"argv": ["python", "app.py"]}, "argv"),
        ({"http_plan": {"entries": [{"path": "http://evil.example/"}]}}, "http_plan"),
        ({"http_plan": {"entries": [{"path": "/"}], "rate": "fast"}}, "http_plan"),
        ({"reset": {"method": "GET", "path": "//evil.example/x"}}, "reset"),
        ({"reset": {"shell": "rm -rf /"}}, "reset"),
        ({"http_target": "staging", "environment": "bare"}, "http_target"),
    ):
        refused = api.patch(f"/api/profiles/{serving.pk}/", bad, format="json")
        assert refused.status_code == 400, bad
        assert field in refused.json(), refused.json()
    assert (
        api_as(engineer)
        .patch(f"/api/profiles/{serving.pk}/", {"ready_path": "/"}, format="json")
        .status_code
        == 403
    )
    serving.refresh_from_db()
    assert serving.ready_path == "/health"


def test_only_a_waiting_staging_snapshot_takes_an_after_one(
    api_as,
    engineer,
    demo_change,  # noqa: F811
    profile,  # noqa: F811
):
    from apps.measurements.lifecycle import measurement_request

    measurement = measurement_request(actor=engineer, change=demo_change, profile=profile)
    refused = api_as(engineer).post(f"/api/measurements/{measurement.pk}/after/")
    assert refused.status_code == 400
    assert "before snapshot" in str(refused.json())


def test_admins_define_http_profiles_in_the_admin(
    as_user,
    admin,
    demo_project,  # noqa: F811
    environment,  # noqa: F811
):
    import json

    form = {
        "project": demo_project.pk,
        "name": "served",
        "environment": environment.pk,
        "kind": "http",
        "argv": "python\napp.py",
        "setup_argv": "",
        "env": "{}",
        "runs_per_side": 5,
        "warmups": 0,
        "timeout_seconds": 60,
        "max_runs_per_side": 5,
        "extension_runs": 1,
        "metric_policy": "{}",
        "http_target": "serve",
        "ready_path": "/",
        "startup_timeout_seconds": 30,
        "http_plan": json.dumps(PLAN),
        "reset": "{}",
    }
    client = as_user(admin)
    refused = client.post("/admin/measurements/profile/add/", form)
    assert refused.status_code == 200
    assert "write {port} in its argv" in refused.content.decode()
    form["argv"] = "python\napp.py\n{port}"
    created = client.post("/admin/measurements/profile/add/", form)
    assert created.status_code == 302, created.content.decode()[:2000]
    served = Profile.objects.get(name="served")
    assert served.kind == "http" and served.http_plan == PLAN
    assert [e.action for e in audit_history(served)] == ["create"]
