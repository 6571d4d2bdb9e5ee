"""A project whose real repository has a leaking `main` and a fixed branch, ready to measure."""

import sys

import pytest

from apps.changes.services import change_create
from apps.measurements.demo import make_demo_repository
from apps.measurements.models import Profile
from apps.measurements.profiles import profile_save
from apps.projects.models import Environment
from apps.projects.services import environment_save, project_create
from apps.projects.tasks import sync_project


@pytest.fixture
def environment(db):
    return environment_save(actor=None, environment=Environment(name="local"))


@pytest.fixture
def demo_project(admin, tmp_path, environment):
    make_demo_repository(tmp_path / "service")
    project = project_create(
        actor=admin, name="Demo", slug="demo", repository_url=str(tmp_path / "service")
    )
    sync_project(project.pk)
    return project


def make_profile(project, environment, **values) -> Profile:
    defaults = {
        "name": "handle 20k requests",
        "argv": [sys.executable, "service.py"],
        "runs_per_side": 5,
        # Adaptive runs off unless a test asks for them: each extension is real processes.
        "max_runs_per_side": 5,
        "warmups": 0,
        "timeout_seconds": 30,
    }
    return profile_save(
        actor=None,
        profile=Profile(project=project, environment=environment, **{**defaults, **values}),
    )


@pytest.fixture
def profile(demo_project, environment):
    return make_profile(demo_project, environment)


@pytest.fixture
def demo_change(engineer, demo_project):
    return change_create(
        actor=engineer,
        project=demo_project,
        title="Bound the response cache",
        reason="It never evicts.",
        expected_result="peak RSS -30 %",
        base_revision="main",
        head_revision="fix/bounded-cache",
    )


def measure(actor, change, profile, *, worker: str = "w@test"):
    """Request a measurement and run it here, as a worker would; returns it refreshed."""
    from apps.measurements.execution import execute
    from apps.measurements.lifecycle import measurement_request

    measurement = measurement_request(actor=actor, change=change, profile=profile)
    execute(measurement_id=measurement.pk, worker=worker)
    measurement.refresh_from_db()
    return measurement
