"""Exports stream, stop at a bound and say so; expensive endpoints are throttled per user."""

import json
import os

import pytest

from apps.changes.models import Change
from tests.factories import UserFactory


def read(response) -> dict:
    assert response.streaming, "an export must stream, not build its body in memory"
    return json.loads(b"".join(response.streaming_content))


def file_many(project, owner, n: int) -> list[int]:
    """n indexed changes, oldest first (bulk: this test is about exports, not filing)."""
    from apps.search.index import index_changes

    made = Change.objects.bulk_create(
        Change(project=project, owner=owner, title=f"Export walrus {i}", reason="r")
        for i in range(n)
    )
    index_changes([c.pk for c in made])
    return [c.pk for c in made]


def test_an_export_streams_every_match_newest_first(api_as, viewer, engineer, project):
    ids = file_many(project, engineer, 1_203)

    response = api_as(viewer).get("/api/search/export/", {"q": "walrus"})

    assert response.status_code == 200
    assert response["X-Export-Limit"] == "100000"
    body = read(response)
    assert [c["id"] for c in body["results"]] == ids[::-1]
    assert (body["truncated"], body["limit"]) == (False, 100_000)


def test_an_export_stops_at_the_limit_and_says_so(api_as, viewer, engineer, project, settings):
    settings.EXPORT_MAX_CHANGES = 450
    ids = file_many(project, engineer, 451)

    body = read(api_as(viewer).get("/api/search/export/"))

    assert [c["id"] for c in body["results"]] == ids[::-1][:450]
    assert (body["truncated"], body["limit"]) == (True, 450)
    # Exactly at the limit, nothing was left out.
    Change.objects.filter(pk=ids[0]).delete()
    assert read(api_as(viewer).get("/api/search/export/"))["truncated"] is False


def status_of(response) -> int:
    # A streamed body is read to its end, so the export's slot is given back.
    if response.streaming:
        read(response)
    return response.status_code


def test_a_query_error_is_a_400_before_anything_streams(api_as, viewer):
    response = api_as(viewer).get("/api/search/export/", {"q": '"unclosed'})

    assert response.status_code == 400
    assert response.json()["q"][0]["message"] == 'A quote is not closed: phrases go between two ".'


def test_exports_past_the_concurrency_cap_wait_their_turn(api_as, viewer, settings):
    settings.EXPORT_CONCURRENCY = 1
    api = api_as(viewer)

    running = api.get("/api/search/export/")
    refused = api.get("/api/search/export/")
    assert (running.status_code, refused.status_code) == (200, 429)
    assert refused["Retry-After"] == "30"
    assert refused.json() == {
        "detail": "Other exports are running on this server. Expected available in 30 seconds."
    }

    read(running)  # sent to the end: the slot is free again
    assert status_of(api.get("/api/search/export/")) == 200


def test_an_empty_export_is_valid_json(api_as, viewer):
    assert read(api_as(viewer).get("/api/search/export/", {"q": "nothing"})) == {
        "results": [],
        "truncated": False,
        "limit": 100_000,
    }


@pytest.fixture
def shared_cache(settings):
    """The production cache when the broker is Redis (its own key prefix), else local memory."""
    from django.core.cache import cache

    broker = os.environ.get("CELERY_BROKER_URL", "")
    if broker.startswith("redis://"):
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": broker,
                "KEY_PREFIX": "fixledger-test-throttle",
            }
        }
    cache.clear()
    yield cache
    cache.clear()


def test_exports_are_throttled_per_user_with_retry_after(api_as, viewer, settings, shared_cache):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "export": "2/hour",
        },
    }
    vera, other = api_as(viewer), api_as(UserFactory(username="otto", role="viewer"))

    answers = [status_of(vera.get("/api/search/export/")) for _ in range(3)]
    refused = vera.get("/api/search/export/")

    assert answers == [200, 200, 429]
    assert refused.status_code == 429
    assert 3500 <= int(refused["Retry-After"]) <= 3600
    assert "throttled" in refused.json()["detail"].lower()
    # Another user has an allowance of their own, and cheap reads are not throttled at all.
    assert status_of(other.get("/api/search/export/")) == 200
    assert all(vera.get("/api/changes/").status_code == 200 for _ in range(5))


def test_measure_requests_are_throttled_but_listing_is_not(
    api_as, engineer, settings, shared_cache
):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "measure": "1/minute",
        },
    }
    api = api_as(engineer)
    # Refused by validation, but it still counts: a request costs the server either way.
    first = api.post("/api/measurements/", {"change": "FIX-0", "profile": 1}, format="json")
    second = api.post("/api/measurements/", {"change": "FIX-0", "profile": 1}, format="json")

    assert (first.status_code, second.status_code) == (400, 429)
    assert 1 <= int(second["Retry-After"]) <= 60
    assert api.get("/api/measurements/").status_code == 200
