"""The published schema documents the errors each operation really answers."""

import pytest

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
def operations(api_as, viewer) -> dict[tuple[str, str], dict]:
    schema = api_as(viewer).get("/api/schema/", {"format": "json"}).json()
    return {
        (method.upper(), path): operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def codes(operation) -> set[str]:
    return set(operation["responses"])


def test_every_operation_documents_its_errors(operations):
    assert len(operations) > 20
    for (method, path), operation in operations.items():
        expected = {"401"}
        if method != "GET":
            expected |= {"400", "403"}
        if "{" in path:
            expected.add("404")
        if "requestBody" in operation:
            expected |= {"413", "415"}
        assert expected <= codes(operation), (method, path)
        for code in codes(operation) - {"200", "201", "202", "204"}:
            body = operation["responses"][code]["content"]["application/json"]["schema"]
            assert body.get("$ref") == "#/components/schemas/Error" or code == "400", (code, path)


def test_conflicts_pages_and_throttles_are_documented_where_they_happen(operations):
    tick = operations["PATCH", "/api/changes/{key}/checklist/{id}/"]
    assert "409" in codes(tick)
    assert "409" not in codes(operations["PATCH", "/api/changes/{id}/"])
    # Paged lists and the search answer 404 past the last page; a list's filters 400.
    assert {"400", "404"} <= codes(operations["GET", "/api/changes/"])
    assert {"400", "404"} <= codes(operations["GET", "/api/search/"])
    for throttled in [("GET", "/api/search/export/"), ("POST", "/api/measurements/")]:
        retry = operations[throttled]["responses"]["429"]["headers"]["Retry-After"]
        assert retry["schema"] == {"type": "integer"}
    assert "429" not in codes(operations["GET", "/api/measurements/"])
    assert "429" not in codes(operations["GET", "/api/changes/"])


def test_the_export_documents_its_bound(operations):
    body = operations["GET", "/api/search/export/"]["responses"]["200"]["content"]
    assert body["application/json"]["schema"] == {"$ref": "#/components/schemas/ChangeExport"}
