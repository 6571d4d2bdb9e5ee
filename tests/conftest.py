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


@pytest.fixture(autouse=True)
def _events_delivered_on_service_commit(monkeypatch):
    """Deliver domain events when a service's own outermost atomic block exits.

    A test runs inside pytest-django's transaction, which is rolled back and never commits, so
    events (delivered on commit) would never reach their subscribers: a filed change would get
    no checklist and no search entry. Here the outermost atomic block a test enters inside its
    own transaction stands for the commit a request or a task would make: when it exits without
    error, the events published in it are delivered. A block that rolls back delivers nothing;
    other on-commit work (publishing tasks to the broker) is left alone, as before. Tests on a
    transactional database commit for real and need none of this.
    """
    from django.db import transaction

    from apps.core.events import Delivery

    enter, leave = transaction.Atomic.__enter__, transaction.Atomic.__exit__
    # Per connection (threads have their own): where each open block's callbacks begin, or
    # None for a block that is not the outermost inside the test's transaction.
    starts: dict[int, list[int | None]] = {}

    def __enter__(self):
        connection = transaction.get_connection(self.using)
        blocks = connection.atomic_blocks
        outermost = (
            not self._from_testcase
            and bool(blocks)
            and all(block._from_testcase for block in blocks)
        )
        enter(self)
        starts.setdefault(id(connection), []).append(
            len(connection.run_on_commit) if outermost else None
        )

    def __exit__(self, exc_type, exc_value, traceback):
        connection = transaction.get_connection(self.using)
        stack = starts.get(id(connection))
        start = stack.pop() if stack else None
        commits = start is not None and exc_type is None and not connection.needs_rollback
        result = leave(self, exc_type, exc_value, traceback)
        if not commits:
            return result
        pending = connection.run_on_commit[start:]
        connection.run_on_commit[start:] = [c for c in pending if not isinstance(c[1], Delivery)]
        for _savepoints, callback, _robust in pending:
            if isinstance(callback, Delivery):
                callback()
        return result

    monkeypatch.setattr(transaction.Atomic, "__enter__", __enter__)
    monkeypatch.setattr(transaction.Atomic, "__exit__", __exit__)


@pytest.fixture
def delivered():
    """`delivered(EventType, ...)` returns a list that every event of those types delivered from
    then on is appended to (a real subscriber, unsubscribed after the test)."""
    from apps.core import events

    recorders = []

    def record(*event_types):
        seen: list = []
        for event_type in event_types:
            events.subscribe(event_type, seen.append)
            recorders.append((event_type, seen.append))
        return seen

    yield record
    for event_type, recorder in recorders:
        events.unsubscribe(event_type, recorder)


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
