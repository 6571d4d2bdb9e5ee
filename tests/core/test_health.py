from django.db import OperationalError, connection


def test_healthz_needs_no_database_or_login(client, db, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_checks_the_real_database_and_broker(client, db):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_readyz_is_503_when_the_broker_is_unreachable(client, db, settings):
    # A port nothing listens on: the check must fail fast and say which dependency is down.
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"].startswith("broker unreachable")
    assert response.json()["checks"]["database"] == "ok"


def test_readyz_is_503_when_the_database_fails(client, db, monkeypatch):
    def broken_cursor(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    # Stopping the shared database server is not an option in a test run; fail its cursor.
    with monkeypatch.context() as patched:
        patched.setattr(connection, "cursor", broken_cursor)
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "database unreachable: OperationalError"
    assert response.json()["checks"]["broker"] == "ok"


def test_probes_answer_on_the_host_without_nginx(client, db, settings):
    # Production settings: one host name, https only. A probe on the host asks gunicorn over
    # http at 127.0.0.1, which is neither.
    settings.ALLOWED_HOSTS = ["fixledger.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    for path in ("/healthz", "/readyz"):
        response = client.get(path, HTTP_HOST="127.0.0.1:8000")
        assert response.status_code == 200, (path, response.status_code)
    # Everything else still refuses an unknown host name.
    assert client.get("/changes/", HTTP_HOST="127.0.0.1:8000").status_code == 400
    assert client.get("/healthz/extra", HTTP_HOST="127.0.0.1:8000").status_code == 400
