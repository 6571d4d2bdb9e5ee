"""Personas (one user per role), clients logged in as them, and API clients with real tokens."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts.roles import Role
from apps.accounts.services import api_token_create

from .factories import ChangeFactory, ProjectFactory, UserFactory


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path_factory):
    # django-axes is exercised on purpose in its own test; elsewhere logins are not throttled.
    settings.AXES_ENABLED = False
    # Hashing strength is Django's business, not ours: a cheap hasher keeps personas fast.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Pages are rendered from the source static files; no collectstatic run is needed.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.WHITENOISE_USE_FINDERS = True
    settings.STATIC_ROOT.mkdir(parents=True, exist_ok=True)
    settings.WHITENOISE_AUTOREFRESH = True
    # Clones and worktrees are named by primary key, which a rolled-back test hands out again.
    settings.DATA_DIR = tmp_path_factory.mktemp("data")
    # Work run in-process runs inside the test's transaction, which a heartbeat thread's own
    # connection cannot see; the worker tests heart-beat in real worker processes.
    settings.WORK_HEARTBEAT_SECONDS = 3600
    # Throttle counts and cached answers (the workers view) are per test: a user id that a
    # rolled-back test hands out again must not find an earlier test's requests counted.
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def viewer(db):
    return UserFactory(username="vera", role=Role.VIEWER)


@pytest.fixture
def engineer(db):
    return UserFactory(username="erin", role=Role.ENGINEER)


@pytest.fixture
def other_engineer(db):
    return UserFactory(username="ed", role=Role.ENGINEER)


@pytest.fixture
def reviewer(db):
    return UserFactory(username="rita", role=Role.REVIEWER)


@pytest.fixture
def admin(db):
    return UserFactory(username="ada", role=Role.ADMIN)


@pytest.fixture
def project(db):
    return ProjectFactory(name="Billing API", slug="billing")


@pytest.fixture
def change(engineer, project):
    return ChangeFactory(owner=engineer, project=project)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def api_client_for(user) -> APIClient:
    _token, key = api_token_create(actor=user, user=user, name="tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def as_user():
    """as_user(user) -> a web client logged in as that user."""
    return client_for


@pytest.fixture
def api_as():
    """api_as(user) -> an API client authenticating with a fresh token of that user."""
    return api_client_for


@pytest.fixture
def worker(transactional_db, settings, tmp_path):
    """worker(include=(...)) -> a started real Celery worker on the test's database and broker."""
    from apps.celery_app import app

    from .workers import Worker, purge, use_worker_data_dir

    use_worker_data_dir()
    # Messages from earlier tests would run against rows that no longer exist.
    with app.connection_for_write() as conn:
        app.control.purge(connection=conn)
    started = []

    def start(include=(), queues=("default",), env=None, name="fixledger-test@%h") -> Worker:
        w = Worker(name, tmp_path / "worker.log", include, queues, env).start()
        started.append(w)
        return w

    yield start
    for w in started:
        w.kill9()
    # What the workers left unconsumed (beat's duplicates, work cut off by a kill).
    purge(q for w in started for q in w.queues)


@pytest.fixture
def beat(transactional_db, tmp_path):
    """beat(env=...) -> a started real Celery beat on the test's database and broker."""
    from .workers import Beat

    started = []

    def start(env=None) -> Beat:
        b = Beat(tmp_path / "beat.log", env).start()
        started.append(b)
        return b

    yield start
    for b in started:
        b.kill9()
