"""fixledger-report: headers and the memory endpoint, through real WSGI, ASGI and Django calls."""

import asyncio
import io
import json
import shutil
import sqlite3
import subprocess
import sys
import threading

import pytest
from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.test import RequestFactory
from fixledger_report import ASGIMiddleware, WSGIMiddleware, count_query, trace_sqlite3
from fixledger_report.django import ReportMiddleware

from .conftest import REPORTING


def call_wsgi(app, path="/"):
    captured = {}

    def start_response(status, headers, exc_info=None):
        captured["status"] = status
        captured["headers"] = dict(headers)

    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "wsgi.input": io.BytesIO(),
        "wsgi.url_scheme": "http",
    }
    body = b"".join(app(environ, start_response))
    return captured["status"], captured["headers"], body


def queries_app(count):
    db = trace_sqlite3(sqlite3.connect(":memory:", check_same_thread=False))

    def app(environ, start_response):
        for _ in range(count):
            db.execute("SELECT 1").fetchall()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    return app


@pytest.mark.config_independent
def test_wsgi_counts_sqlite_queries_into_both_headers():
    status, headers, body = call_wsgi(WSGIMiddleware(queries_app(3)))
    assert (status, body) == ("200 OK", b"ok")
    assert headers["X-DB-Queries"] == "3"
    total, db = headers["Server-Timing"].split(", ")
    assert total.startswith("total;dur=")
    assert db.startswith("db;count=3;dur=")


@pytest.mark.config_independent
def test_each_thread_counts_its_own_request():
    barrier = threading.Barrier(2)
    seen = []

    def slow_app(count):
        def app(environ, start_response):
            for _ in range(count):
                count_query()
                barrier.wait(timeout=5)  # both requests are in flight at every query
            start_response("200 OK", [])
            return [b""]

        return WSGIMiddleware(app)

    def run(count):
        seen.append(call_wsgi(slow_app(count))[1]["X-DB-Queries"])

    threads = [threading.Thread(target=run, args=(n,)) for n in (2, 2)]
    # Two requests of two queries each, interleaved: each must report 2, not 4.
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == ["2", "2"]
    assert call_wsgi(WSGIMiddleware(queries_app(0)))[1]["X-DB-Queries"] == "0"
    count_query()  # outside a request: counted nowhere, and no error


@pytest.mark.config_independent
def test_wsgi_memory_endpoint_reports_this_process():
    _status, headers, body = call_wsgi(WSGIMiddleware(queries_app(5)), "/_fixledger/memory")
    figures = json.loads(body)
    assert headers["Content-Type"] == "application/json"
    assert 0 < figures["rss"] <= figures["peak_rss"]
    assert 0 < figures["anon_rss"] <= figures["rss"]
    assert "X-DB-Queries" not in headers


@pytest.mark.config_independent
def test_asgi_adds_the_headers_and_serves_memory():
    async def app(scope, receive, send):
        count_query(0.001)
        await asyncio.sleep(0)
        count_query(0.001)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"1")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def call(path):
        sent = []

        async def receive():
            return {"type": "http.request", "body": b""}

        async def send(message):
            sent.append(message)

        wrapped = ASGIMiddleware(app)
        await wrapped({"type": "http", "path": path}, receive, send)
        return sent

    async def both():
        return await asyncio.gather(call("/a"), call("/b"), call("/_fixledger/memory"))

    first, second, memory = asyncio.run(both())
    for sent in (first, second):
        headers = dict(sent[0]["headers"])
        assert headers[b"x-db-queries"] == b"2"
        assert b"db;count=2;dur=2." in headers[b"server-timing"]
        assert headers[b"x-a"] == b"1"
    assert json.loads(memory[1]["body"])["rss"] > 0


@pytest.mark.django_db
def test_django_counts_every_query_of_the_request():
    def view(request):
        get_user_model().objects.count()
        get_user_model().objects.filter(username="nobody").exists()
        return HttpResponse("ok")

    middleware = ReportMiddleware(view)
    response = middleware(RequestFactory().get("/anything"))
    assert response["X-DB-Queries"] == "2"
    assert "db;count=2;dur=" in response["Server-Timing"]
    memory = middleware(RequestFactory().get("/_fixledger/memory"))
    assert json.loads(memory.content)["peak_rss"] > 0
    # The wrappers are gone after the request: queries outside one are not counted anywhere.
    get_user_model().objects.count()


@pytest.mark.config_independent
def test_the_package_needs_neither_django_nor_fixledger():
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "import fixledger_report, fixledger_report.django; "
        "assert 'django' not in sys.modules and 'apps' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-I", "-c", code, str(REPORTING)], check=True)


@pytest.mark.config_independent
def test_the_package_builds_on_its_own(tmp_path):
    # Built from a copy: setuptools leaves build/ and egg-info folders where it builds.
    source = shutil.copytree(
        REPORTING, tmp_path / "src", ignore=shutil.ignore_patterns("build", "*.egg-info")
    )
    wheelhouse = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheelhouse),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    wheels = [p.name for p in wheelhouse.glob("*.whl")]
    assert len(wheels) == 1 and wheels[0].startswith("fixledger_report-0.1.0")
