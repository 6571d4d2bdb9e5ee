"""Fuzz the REST API from its own OpenAPI schema with every check: no server error, every
answer (status, content type, headers, body) is one the schema documents, and invalid input is
refused."""

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import negative_data_rejection

from apps.accounts.roles import Role
from apps.accounts.services import api_token_create
from apps.wsgi import application
from tests.factories import ChangeFactory, ProjectFactory, UserFactory

# Every check schemathesis has runs on every response. One expectation is widened: the schema
# states types and formats, but whether a named change, profile or project exists, or a
# repository URL can be cloned, only the service knows; such schema-valid requests get a 400.
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "400", "401", "403", "404", "409", "429"]
            },
        }
    }
)

# The schema the API serves, fetched in-process; requests go straight to the WSGI app.
schema = schemathesis.openapi.from_wsgi("/api/schema/", application, config=CONFIG)

# Rows the running test seeded. Ids change from run to run (PostgreSQL sequences survive the
# rollback), so the hooks below read them here rather than having them baked into the schema.
_seeded: dict[str, list[str]] = {}


@pytest.fixture
def _keep_test_connection():
    # The WSGI handler closes "old" database connections around every request, and inside the
    # test's transaction that is the test's own connection. Django's test client unhooks the
    # same handler for the same reason.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def _token_for(user) -> str:
    _token, key = api_token_create(actor=user, user=user, name="fuzz")
    return f"Token {key}"


@pytest.fixture
def seeded(db, _keep_test_connection):
    engineer = UserFactory(username="erin", role=Role.ENGINEER)
    billing = ProjectFactory(name="Billing API", slug="billing")
    ProjectFactory(name="Search", slug="search")
    changes = [ChangeFactory(owner=engineer, project=billing) for _ in range(3)]
    _seeded.update(
        change=[str(c.pk) for c in changes] + [c.number for c in changes],
        project=["billing", "search"],
        owner=["erin"],
    )
    yield {
        role: _token_for(UserFactory(username=f"fuzz-{role}", role=role))
        for role in (Role.VIEWER, Role.REVIEWER, Role.ADMIN)
    }
    _seeded.clear()


def _pools(operation, location: str) -> dict[str, list[str]]:
    """Seeded values that may stand in for generated ones, by parameter name."""
    if not _seeded:
        return {}
    if operation.path.startswith("/api/changes/"):
        return {"id": _seeded["change"], "project": _seeded["project"], "owner": _seeded["owner"]}
    # A project body keeps its generated slug: a seeded one would only ever be a duplicate.
    if operation.path.startswith("/api/projects/") and location != "body":
        return {"slug": _seeded["project"]}
    return {}


def _seeded_or_generated(context, values, location: str) -> st.SearchStrategy:
    """`values` with each entry that has a pool either kept or swapped for a seeded value."""
    strategy = st.just(values)
    if not isinstance(values, dict):
        return strategy
    for name, pool in _pools(context.operation, location).items():
        if name in values:
            strategy = strategy.flatmap(
                lambda v, n=name, p=pool: st.sampled_from([v[n], *p]).map(
                    lambda real: {**v, n: real}
                )
            )
    return strategy


# Random ids, slugs and usernames almost never exist, so without these every read would be a
# 404 and every write a 400 before the serializer's save or the service ever ran.
@schema.hook
def flatmap_path_parameters(context, path_parameters):
    return _seeded_or_generated(context, path_parameters, "path")


@schema.hook
def flatmap_query(context, query):
    return _seeded_or_generated(context, query, "query")


@schema.hook
def flatmap_body(context, body):
    return _seeded_or_generated(context, body, "body")


def _is_body_coverage(case) -> bool:
    meta = case.meta
    return (
        meta is not None
        and meta.phase.name == "coverage"
        and meta.phase.data.parameter_location == "body"
    )


def _aim_coverage_case(case) -> None:
    """Point a coverage case that varies the body at a real change, project and owner.

    Coverage cases are built at collection time, before any row exists, and fill every value they
    are not varying with "0"; left alone, hundreds of body variants would stop at a 404 or at
    "project does not exist" instead of reaching the service's validation.
    """
    path = case.path_parameters or {}
    for name, pool in _pools(case.operation, "path").items():
        if path.get(name) == "0":
            path[name] = pool[0]
    if isinstance(case.body, dict):
        real = {name: pool[0] for name, pool in _pools(case.operation, "body").items()}
        # A project edit keeps its slug: renamed to "0", it would vanish from under later cases.
        if "slug" in path:
            real["slug"] = path["slug"]
        for field, value in real.items():
            if case.body.get(field) == "0":
                case.body[field] = value


# `seeded` is function-scoped, so Hypothesis warns that it is not reset between examples. That is
# intended: every example needs the same users, tokens and rows, and writes piling up across
# examples only lets later edits land on changes that earlier examples filed or edited.
# The coverage phase adds a hundred-odd deterministic cases per write operation on top of
# max_examples.
FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _holds_seeded_values(case) -> bool:
    seeded = {value for pool in _seeded.values() for value in pool}
    parts = [case.path_parameters, case.query, case.body]
    return any(
        isinstance(value, str) and value in seeded
        for part in parts
        if isinstance(part, dict)
        for value in part.values()
    )


def _call_as(role, case, tokens) -> None:
    if _is_body_coverage(case):
        _aim_coverage_case(case)
    excluded = []
    # The hooks above may have put a real (valid) value where the invalid one was generated;
    # such a case no longer violates the schema, so it need not be refused.
    negative = case.meta is not None and case.meta.generation.mode.is_negative
    if negative and _holds_seeded_values(case):
        excluded.append(negative_data_rejection)
    case.call_and_validate(headers={"Authorization": tokens[role]}, excluded_checks=excluded)


@FUZZ
@schema.parametrize()
def test_api_as_reviewer(case, seeded):
    _call_as(Role.REVIEWER, case, seeded)


@FUZZ
@schema.include(method="GET").parametrize()
def test_read_api_as_viewer(case, seeded):
    _call_as(Role.VIEWER, case, seeded)


# Registering, editing and syncing projects is for admins only; as a reviewer every such request
# stops at the role check, so only an admin gets through to the project service.
@FUZZ
@schema.include(path_regex="^/api/projects/").exclude(method="GET").parametrize()
def test_project_writes_as_admin(case, seeded):
    _call_as(Role.ADMIN, case, seeded)
