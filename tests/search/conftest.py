import pytest

from apps.changes.services import change_create
from apps.search.selectors import SearchParams, search


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
