from apps.changes.models import Change
from apps.core.audit import audit_history


def test_every_response_carries_a_request_id(client):
    first = client.get("/healthz")["X-Request-ID"]
    second = client.get("/healthz")["X-Request-ID"]
    assert len(first) == 32
    assert first != second


def test_a_well_formed_incoming_id_is_kept(client):
    assert client.get("/healthz", HTTP_X_REQUEST_ID="ci-run-7.a")["X-Request-ID"] == "ci-run-7.a"


def test_a_malformed_incoming_id_is_replaced(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="evil\r\nSet-Cookie: x=1" + "a" * 80)
    assert "evil" not in response["X-Request-ID"]
    assert len(response["X-Request-ID"]) == 32


def test_audit_entries_carry_the_request_id(api_as, engineer, project):
    api = api_as(engineer)
    response = api.post(
        "/api/changes/",
        {
            "title": "t",
            "project": "billing",
            "reason": "r",
            "expected_result": "e",
        },
        format="json",
        HTTP_X_REQUEST_ID="trace-123",
    )
    assert response.status_code == 201
    assert audit_history(Change.objects.get()).get().request_id == "trace-123"
