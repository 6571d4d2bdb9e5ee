import pytest

from apps.changes.services import change_create
from apps.projects.services import project_create
from apps.projects.tasks import sync_project

from ..repos import make_service_repo


@pytest.fixture
def upstream(tmp_path):
    path = tmp_path / "upstream"
    return path, make_service_repo(path)


@pytest.fixture
def repo_project(admin, upstream):
    project = project_create(
        actor=admin, name="Billing API", slug="billing", repository_url=str(upstream[0])
    )
    sync_project(project.pk)
    project.refresh_from_db()
    return project


@pytest.fixture
def fix(engineer, repo_project):
    """A change ready for review: resolved revisions, a rollback note, its checklist."""
    return change_create(
        actor=engineer,
        project=repo_project,
        title="Bound the response cache",
        reason="It never evicts.",
        expected_result="peak RSS -30 %",
        command="python -m bench.cache",
        rollback_note="Revert; the cache is unbounded again.",
        base_revision="main",
        head_revision="fix/cache",
    )
