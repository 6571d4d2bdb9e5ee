import pytest

from apps.changes.services import change_create
from apps.measurements.models import Profile, Side
from apps.projects.models import Environment
from apps.search.selectors import SearchParams, search

from ..factories import measurement_with_runs


@pytest.fixture
def file_change(engineer, project):
    """file_change(**fields) -> a change filed through the service (so it is indexed)."""

    def make(actor=None, **fields):
        values = {
            "project": project,
            "title": "Bound the response cache",
            "reason": "The LRU cache keeps every body; RSS grows 40 MB an hour.",
            "expected_result": "peak RSS -20 %",
            "files_touched": ["app/cache.py"],
            "tags": ["memory"],
        }
        values.update(fields)
        return change_create(actor=actor or engineer, **values)

    return make


@pytest.fixture
def found():
    """found(q="...", **params) -> the numbers of the changes a search returns, in order."""

    def run(**params):
        return [h.change.pk for h in search(SearchParams(page_size=100, **params)).hits]

    return run


@pytest.fixture
def running_measurement(file_change, project):
    change = file_change(title="Shrink the walrus cache")
    environment = Environment.objects.create(name="staging-search")
    profile = Profile.objects.create(
        project=project, name="p", environment=environment, argv=["true"]
    )

    def values(i, side):
        rss = (100_000_000 if side == Side.BEFORE else 80_000_000) + i * 1000
        return {"peak_rss_bytes": rss, "wall_seconds": 1.0 + i * 0.01}

    measurement = measurement_with_runs(change, profile, values)
    return change, measurement
