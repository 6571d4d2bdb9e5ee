"""HTTP profiles measured as a worker does: the sample service's revisions served in the sandbox,
probed from inside its network, judged with the profile's roles, and every server stopped."""

import sys

import psutil
import pytest
from django.core.exceptions import ValidationError

from apps.changes.services import change_create
from apps.measurements.lifecycle import measurement_request, measurement_snapshot_after
from apps.measurements.models import (
    ACTIVE_STATUSES,
    HttpTarget,
    Measurement,
    MeasurementStatus,
    Profile,
    ProfileKind,
)
from apps.measurements.profiles import profile_save
from apps.measurements.selectors import release_evidence
from apps.projects.services import project_create
from apps.projects.tasks import sync_project
from apps.search.models import SearchEntry

from ..workers import wait_for
from .conftest import environment, measure  # noqa: F401
from .http.sample import make_sample_repo

# 300 requests a block at 250 req/s (over a second), five blocks a side: 1,500 a side, enough
# for a p99; memory sampled every 5 requests for the slope.
PLAN = {
    "entries": [{"path": "/items"}, {"path": "/leak"}, {"path": "/cached"}],
    "requests": 300,
    "warmup": 150,
    "rate": 250,
    "memory": {"source": "process", "samples": 60},
}
SERVER_MARK = "server.py"


def servers() -> list[psutil.Process]:
    """This checkout's sample servers (another checkout's tests may serve theirs meanwhile)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if cmdline[:2] == [sys.executable, SERVER_MARK]:
            found.append(proc)
    return found


@pytest.fixture
def sample_project(admin, tmp_path, environment):  # noqa: F811
    shas = make_sample_repo(tmp_path / "sample", vendor_reporting=True)
    project = project_create(
        actor=admin, name="Sample", slug="sample", repository_url=str(tmp_path / "sample")
    )
    sync_project(project.pk)
    return project, shas


def http_profile(project, environment, **values) -> Profile:  # noqa: F811
    defaults = {
        "name": "probe the sample",
        "kind": ProfileKind.HTTP,
        "argv": [sys.executable, "server.py", "{port}"],
        "env": {"PYTHONDONTWRITEBYTECODE": "1", "MALLOC_ARENA_MAX": "1"},
        "ready_path": "/items",
        "http_plan": PLAN,
        "reset": {"method": "GET", "path": "/items"},
        "runs_per_side": 5,
        "max_runs_per_side": 5,
        "warmups": 0,
        "timeout_seconds": 60,
    }
    return profile_save(
        actor=None,
        profile=Profile(project=project, environment=environment, **{**defaults, **values}),
    )


def settled(measurement) -> None:
    """Wait for a real worker to end (or pause) the measurement; refresh it."""
    wait_for(
        lambda: Measurement.objects.get(pk=measurement.pk).status not in ACTIVE_STATUSES,
        what="the worker to measure the change",
        timeout=90,
    )
    measurement.refresh_from_db()


def file_change(engineer, project, base, head):
    return change_create(
        actor=engineer,
        project=project,
        title=f"{base} to {head}",
        reason="Measure it.",
        expected_result="latency p99 -5 %",
        base_revision=base,
        head_revision=head,
    )


def test_an_http_profile_needs_its_port_plan_and_a_base_url_to_probe(
    admin,
    sample_project,
    environment,  # noqa: F811
):
    project, _shas = sample_project
    with pytest.raises(ValidationError, match="port"):
        http_profile(project, environment, argv=[sys.executable, "server.py"])
    with pytest.raises(ValidationError, match="entries"):
        http_profile(project, environment, http_plan={"requests": 10})
    with pytest.raises(ValidationError, match=r"host|path"):
        http_profile(project, environment, http_plan={"entries": [{"path": "//evil.example/"}]})
    with pytest.raises(ValidationError, match="base URL"):
        http_profile(project, environment, http_target=HttpTarget.STAGING)
    with pytest.raises(ValidationError, match="allow at least that"):
        http_profile(project, environment, timeout_seconds=10)
    with pytest.raises(ValidationError, match="reset"):
        http_profile(project, environment, reset={"argv": "rm -rf /"})


def test_a_leak_fixed_is_a_slope_improved_and_every_server_is_stopped(
    as_user,
    engineer,
    sample_project,
    environment,  # noqa: F811
):
    project, _shas = sample_project
    profile = http_profile(project, environment)
    change = file_change(engineer, project, "leak", "main")
    measurement = measure(engineer, change, profile)

    assert measurement.status == MeasurementStatus.DONE, measurement.error
    results = {(r["metric"], r["endpoint"]): r for r in measurement.results}
    slope = results[("rss_slope", None)]
    assert slope["verdict"] == "improved", slope["reason"]
    assert slope["role"] == "gating"
    assert results[("latency_p99", None)]["role"] == "gating"
    assert results[("latency_p50", None)]["role"] == "informational"
    assert results[("cache_hit_ratio", None)]["direction"] == "higher"
    sides = measurement.http_report["sides"]
    assert sides["before"]["leak"]
    assert sides["before"]["rss_slope"][0] > 2 * sides["after"]["rss_slope"][0]
    assert sides["before"]["blocks"] == sides["after"]["blocks"] == 5
    runs = list(measurement.runs.all())
    assert all(r.probe["reset"] == "GET /items answered 200" for r in runs)
    assert all(r.sandboxed and r.peak_rss_bytes and r.probe["result"]["total"] for r in runs)
    assert all("latency_p99" in r.metrics or "latency_p50" in r.metrics for r in runs)
    assert servers() == []
    entry = SearchEntry.objects.get(change=change)
    assert entry.gains["rss_slope"] > 0 and "improved" in entry.verdicts

    page = as_user(engineer).get(change.get_absolute_url()).content.decode()
    for shown in (
        "RSS growth per 1,000 requests",
        "GET /leak",
        "generator lag p99",
        'aria-label="Latency percentiles',
        'aria-label="RSS over requests',
        "the reset step ran before each",
        "GET /items answered 200",
        "DB queries (mean)",
    ):
        assert shown in page, shown


def test_an_extra_query_is_a_regression_named_by_endpoint_and_blocks_the_release(
    worker,
    engineer,
    sample_project,
    environment,  # noqa: F811
):
    project, _shas = sample_project
    reset = {"argv": [sys.executable, "-c", "open('reset.flag', 'w')"]}
    profile = http_profile(project, environment, reset=reset)
    change = file_change(engineer, project, "main", "extra-query")
    worker(queues=(environment.queue,))
    measurement = measurement_request(actor=engineer, change=change, profile=profile)
    settled(measurement)

    assert measurement.status == MeasurementStatus.DONE, measurement.error
    queries = [r for r in measurement.results if r["metric"] == "db_queries"]
    items = next(r for r in queries if r["endpoint"] == "GET /items")
    assert items["verdict"] == "regressed", items["reason"]
    assert "GET /items" in items["label"]
    assert all(r["verdict"] != "regressed" for r in queries if r["endpoint"] != "GET /items")
    assert all(r.probe["reset"].startswith("ran ") for r in measurement.runs.all())
    blockers = release_evidence(change)
    assert any("DB queries per request" in b and "GET /items" in b for b in blockers), blockers
    assert servers() == []


@pytest.fixture
def staging(tmp_path, sample_project, environment):  # noqa: F811
    """A running sample service on a loopback port, registered as the environment's base URL;
    ``staging.deploy(name)`` replaces it by that revision on the same port."""
    from apps.measurements.http.serve import ServedProcess, free_port
    from apps.projects.services import environment_save

    from .http.sample import SERVE_ENV, worktree

    _project, shas = sample_project
    port = free_port()
    config = tmp_path / "staging.toml"
    environment.base_url = f"http://127.0.0.1:{port}"
    environment.config_files = [str(config)]
    environment_save(actor=None, environment=environment)

    class Staging:
        service = None

        def deploy(self, name: str) -> None:
            if self.service is not None:
                self.service.stop()
            config.write_text(f"revision = {name!r}\n")  # each deploy its own configuration
            tree = tmp_path / f"deployed-{name}"
            if not tree.exists():
                worktree(tmp_path / "sample", shas[name], tree)
            self.service = ServedProcess(
                [sys.executable, "server.py", str(port)], cwd=tree, env=SERVE_ENV
            )
            self.service.start()
            while self.service.get(f"http://127.0.0.1:{port}/items")[0] != 200:
                assert self.service.exit_code() is None, self.service.output_tail()

    running = Staging()
    yield running
    if running.service is not None:
        running.service.stop()


def test_live_staging_snapshots_before_and_after_a_deploy_are_compared(
    worker,
    as_user,
    engineer,
    sample_project,
    environment,  # noqa: F811
    staging,
):
    project, _shas = sample_project
    staging.deploy("base")
    plan = {**PLAN, "memory": {"source": "endpoint", "path": "/_fixledger/memory", "field": "rss"}}
    profile = http_profile(
        project, environment, http_target=HttpTarget.STAGING, argv=[], http_plan=plan
    )
    change = file_change(engineer, project, "main", "extra-query")

    worker(queues=(environment.queue,))
    before = measurement_request(actor=engineer, change=change, profile=profile)
    settled(before)
    assert before.status == MeasurementStatus.WAITING, before.error
    assert before.kind == "staging" and before.config_at_start
    assert {r.side for r in before.runs.all()} == {"before"}
    assert all(r.probe["reset"] == "GET /items answered 200" for r in before.runs.all())
    assert release_evidence(change) == [
        f"Not measured: measure the change at its current revisions "
        f"({change.base_sha[:10]} → {change.head_sha[:10]})."
    ]
    page = as_user(engineer).get(change.get_absolute_url()).content.decode()
    assert "Measure after" in page and "Before snapshot taken" in page

    staging.deploy("extra-query")
    after = measurement_snapshot_after(actor=engineer, measurement=before)
    settled(after)
    assert after.status == MeasurementStatus.DONE, after.error
    assert after.config_at_start == before.config_at_start
    assert after.config_at_end and after.config_at_end != after.config_at_start
    items = next(
        r for r in after.results if r["metric"] == "db_queries" and r["endpoint"] == "GET /items"
    )
    assert items["verdict"] == "regressed", items["reason"]
    assert after.http_report["sides"]["after"]["blocks"] == 5
    page = as_user(engineer).get(change.get_absolute_url()).content.decode()
    assert f"Live staging at {environment.base_url}" in page
    assert after.config_at_start[:12] in page and after.config_at_end[:12] in page
