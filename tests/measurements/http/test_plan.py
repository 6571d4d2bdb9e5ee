"""The request plan: defaults, validation, and every way a path could try to change the host."""

import pytest

from apps.measurements.http.plan import (
    DEFAULT_CACHE_HEADERS,
    DEFAULT_REQUESTS,
    MIN_REQUESTS_FOR_P99,
    PlanError,
    is_loopback,
    loopback_base_url,
    parse_plan,
    target_url,
    validate_base_url,
    validate_path,
)

pytestmark = pytest.mark.config_independent


def test_defaults_are_the_documented_ones():
    plan = parse_plan({"entries": [{"path": "/"}]})
    assert plan.requests == DEFAULT_REQUESTS == 2_000
    assert MIN_REQUESTS_FOR_P99 == 1_000
    assert plan.mode == "rate"
    assert plan.cache_headers == DEFAULT_CACHE_HEADERS == ("Cache-Status", "X-Cache", "Age")
    assert plan.db_header == "X-DB-Queries"
    assert plan.memory.source == "none"
    assert plan.entries[0].endpoint == "GET /"


def test_a_full_plan_round_trips_through_its_dict():
    plan = parse_plan(
        {
            "entries": [
                {
                    "method": "post",
                    "path": "/api/items?x=1",
                    "weight": 3,
                    "body": "{}",
                    "headers": {"Content-Type": "application/json"},
                    "name": "create",
                },
                {"path": "/health"},
            ],
            "requests": 1500,
            "warmup": 50,
            "mode": "concurrency",
            "concurrency": 4,
            "wrong_statuses": [404, 429],
            "db_header": "",
            "server_timing_db": "db",
            "memory": {"source": "endpoint", "path": "/_fixledger/memory", "field": "rss"},
        }
    )
    assert plan.entries[0].method == "POST"
    assert plan.entries[0].endpoint == "create"
    assert plan.entries[0].headers == (("Content-Type", "application/json"),)
    assert plan.wrong_statuses == (404, 429)
    assert parse_plan(plan.to_dict()) == plan


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({}, "entries"),
        ({"entries": []}, "entries"),
        ({"entries": [{"path": "/"}], "bogus": 1}, "Unknown plan field"),
        ({"entries": [{"path": "/", "method": "TRACE"}]}, "method"),
        ({"entries": [{"path": "/", "weight": 0}]}, "weight"),
        ({"entries": [{"path": "/"}, {"path": "/"}]}, "share a name"),
        ({"entries": [{"path": "/"}], "requests": 0}, "requests"),
        ({"entries": [{"path": "/"}], "rate": 1e9}, "rate"),
        ({"entries": [{"path": "/"}], "mode": "burst"}, "mode"),
        ({"entries": [{"path": "/"}], "wrong_statuses": [99]}, "wrong_statuses"),
        ({"entries": [{"path": "/"}], "memory": {"source": "endpoint", "path": "/m"}}, "field"),
        ({"entries": [{"path": "/"}], "memory": {"source": "process", "path": "/m"}}, "endpoint"),
        (
            {
                "entries": [{"path": "/"}],
                "memory": {"source": "endpoint", "path": "//evil/m", "field": "rss"},
            },
            "single /",
        ),
    ],
)
def test_bad_plans_name_the_field(data, words):
    with pytest.raises(PlanError, match=words):
        parse_plan(data)


@pytest.mark.parametrize(
    "path",
    [
        "http://evil.example/",
        "https://evil.example",
        "evil.example/x",
        "//evil.example/x",
        "///evil.example",
        "/@evil.example",
        "/x@evil.example/",
        "\\\\evil.example\\x",
        "/\\evil.example",
        "/%2f%2fevil.example",
        "/%2F/evil.example",
        "/a%40evil.example",
        "/%5cevil.example",
        "/%252f%252fevil.example",  # decoded twice by two proxies
        "/%2e%2e/admin",
        "/a/%2E./b",
        "/a/../admin",
        "/a/..;/admin",
        "/./a",
        "/a%0d%0aHost:%20evil.example",
        "/a\r\nHost: evil.example",
        "/a\x00",
        "/a b",
        "/a#frag",
        "/caf\u00e9",
        "/%",
        "/%zz",
        "/%ff",
        "",
        None,
        "/" + "a" * 3000,
    ],
)
def test_paths_that_could_leave_the_host_are_refused(path):
    with pytest.raises(PlanError):
        validate_path(path)
    with pytest.raises(PlanError):
        parse_plan({"entries": [{"path": path}]})


@pytest.mark.parametrize(
    "path", ["/", "/a/b", "/search?q=a%20b&page=2", "/items/42;v=1", "/x?next=%2Fhome", "/a%20b"]
)
def test_ordinary_paths_pass(path):
    assert validate_path(path) == path
    assert target_url("http://127.0.0.1:8080", path) == "http://127.0.0.1:8080" + path


@pytest.mark.parametrize(
    "headers",
    [
        {"X-A": "1\r\nHost: evil.example"},
        {"X-A": "1\nX-B: 2"},
        {"X-A": "1\x00"},
        {"Bad Name": "1"},
        {"X-A:": "1"},
        {"Host": "evil.example"},
        {"Transfer-Encoding": "chunked"},
        {"Content-Length": "0"},
        {"X-A": 1},
    ],
)
def test_header_injection_is_refused(headers):
    with pytest.raises(PlanError, match="headers"):
        parse_plan({"entries": [{"path": "/", "headers": headers}]})


@pytest.mark.parametrize(
    "url",
    [
        "ftp://staging.example",
        "file:///etc/passwd",
        "http://user:pw@staging.example",
        "http://@staging.example",
        "http://staging.example/?q=1",
        "http://staging.example/#x",
        "http://staging.example:99999",
        "http://staging .example",
        "http:\\\\staging.example",
        "http://staging.example//evil.example",
        "staging.example",
        "http://",
    ],
)
def test_bad_base_urls_are_refused(url):
    with pytest.raises(PlanError):
        validate_base_url(url)


def test_base_url_and_join():
    assert validate_base_url("https://staging.example/app/") == "https://staging.example/app"
    assert (
        target_url("https://staging.example/app/", "/x?y=1") == "https://staging.example/app/x?y=1"
    )
    assert loopback_base_url(8123) == "http://127.0.0.1:8123"
    assert is_loopback("http://127.0.0.1:1") and is_loopback("http://[::1]:1")
    assert not is_loopback("http://staging.example")
    with pytest.raises(PlanError):
        loopback_base_url(70000)


def test_connections_are_bounded():
    assert parse_plan({"entries": [{"path": "/"}]}).connections == 32
    assert parse_plan({"entries": [{"path": "/"}], "connections": 4}).connections == 4
    with pytest.raises(PlanError, match="connections"):
        parse_plan({"entries": [{"path": "/"}], "connections": 0})
