"""A real sample web service in a generated git repository, one branch per behaviour.

The service is a small stdlib WSGI gateway (http.server, threading, keep-alive) wrapped in the
reporting package's middleware; what it does differs per revision only in ``behaviour.py``:

    base         /sleep sleeps 20 ms, /items runs one query, nothing cached, no errors, no leak
    leak         /leak keeps LEAK_BYTES per request forever
    extra-query  /items runs two queries
    cached       /cached answers from a cache (Cache-Status: sample; hit) after the first call
    errors       /flaky answers 500 to every 20th request (5 %)
    bounded      /leak keeps its bytes in a cache of BOUNDED_LIMIT entries, oldest evicted
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tests.repos import commit_all, git

REPO_ROOT = Path(__file__).resolve().parents[3]
REPORTING = REPO_ROOT / "reporting"

SERVER = '''\
"""Sample service for the HTTP probe's tests."""

import collections
import io
import itertools
import sqlite3
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fixledger_report import WSGIMiddleware, trace_sqlite3

import behaviour

KEPT = []
BOUNDED = collections.OrderedDict()
CACHE = {}
LOCK = threading.Lock()
FLAKY = itertools.count(1)
LEAKS = itertools.count()
_local = threading.local()


def db():
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = trace_sqlite3(sqlite3.connect(":memory:"))
    return conn


def respond(start_response, body, status="200 OK", headers=()):
    start_response(status, [("Content-Type", "text/plain"), *headers])
    return [body]


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path in ("/", "/ok"):
        return respond(start_response, b"ok")
    if path == "/sleep":
        time.sleep(behaviour.SLEEP)
        return respond(start_response, b"slept")
    if path == "/items":
        for _ in range(behaviour.QUERIES):
            db().execute("SELECT 1").fetchall()
        return respond(start_response, b"items")
    if path == "/cached":
        if behaviour.CACHE and "page" in CACHE:
            return respond(start_response, CACHE["page"], headers=[("Cache-Status", "sample; hit")])
        time.sleep(0.005)
        page = b"page"
        if behaviour.CACHE:
            CACHE["page"] = page
        return respond(start_response, page, headers=[("Cache-Status", "sample; fwd=miss")])
    if path == "/flaky":
        if behaviour.ERROR_EVERY and next(FLAKY) % behaviour.ERROR_EVERY == 0:
            return respond(start_response, b"boom", "500 Internal Server Error")
        return respond(start_response, b"fine")
    if path == "/leak":
        # b"x" * n writes every byte, so the pages are really resident (calloc'd ones may not be).
        chunk = b"x" * behaviour.LEAK_BYTES
        with LOCK:
            if behaviour.BOUNDED_LIMIT:
                BOUNDED[next(LEAKS)] = chunk
                while len(BOUNDED) > behaviour.BOUNDED_LIMIT:
                    BOUNDED.popitem(last=False)
            elif behaviour.LEAK_BYTES:
                KEPT.append(chunk)
        return respond(start_response, b"stored")
    return respond(start_response, b"not found", "404 Not Found")


class Handler(BaseHTTPRequestHandler):
    """A keep-alive WSGI gateway: wsgiref closes every connection, which would add a TCP
    handshake and a thread start to each measured request."""

    protocol_version = "HTTP/1.1"
    wsgi_app = None
    # Headers and body go out in two writes; Nagle would hold the body for the client's ACK.
    disable_nagle_algorithm = True

    def handle_one_request(self):
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline:
            self.close_connection = True
            return
        if not self.parse_request():
            return
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        environ = {
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": str(self.server.server_address[1]),
            "SERVER_PROTOCOL": self.request_version,
            "wsgi.input": io.BytesIO(self.rfile.read(length)),
            "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "http",
            "wsgi.version": (1, 0),
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        started = []

        def start_response(status, headers, exc_info=None):
            started[:] = [status, headers]

        body = b"".join(self.wsgi_app(environ, start_response))
        status, headers = started
        code, _, reason = status.partition(" ")
        self.send_response_only(int(code), reason)
        for name, value in headers:
            if name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        pass  # a client hanging up mid-answer is the load tool's business, not a failure


if __name__ == "__main__":
    Handler.wsgi_app = staticmethod(WSGIMiddleware(app))
    server = Server(("127.0.0.1", int(sys.argv[1])), Handler)
    print("serving", flush=True)
    server.serve_forever()
'''

BASE = {
    "SLEEP": 0.020,
    "QUERIES": 1,
    "CACHE": False,
    "ERROR_EVERY": 0,
    "LEAK_BYTES": 0,
    "BOUNDED_LIMIT": 0,
}
REVISIONS = {
    "leak": {"LEAK_BYTES": 4096},
    "extra-query": {"QUERIES": 2},
    "cached": {"CACHE": True},
    "errors": {"ERROR_EVERY": 20},
    "bounded": {"LEAK_BYTES": 16384, "BOUNDED_LIMIT": 60},
}


def _behaviour(settings: dict) -> str:
    return "".join(f"{name} = {value!r}\n" for name, value in settings.items())


def make_sample_repo(
    path: Path, revisions: dict[str, dict] | None = None, *, vendor_reporting: bool = False
) -> dict[str, str]:
    """The repository at ``path``; returns the SHA of ``base`` and of each revision's branch.

    ``vendor_reporting`` commits the reporting package next to server.py, for a service served
    where the host's checkout of this repository is not (a worker's sandbox)."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    if vendor_reporting:
        shutil.copytree(
            REPORTING / "fixledger_report",
            path / "fixledger_report",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    (path / "server.py").write_text(SERVER)
    (path / "behaviour.py").write_text(_behaviour(BASE))
    shas = {"base": commit_all(path, "Serve the sample endpoints", 1)}
    for day, (name, changes) in enumerate((revisions or REVISIONS).items(), start=2):
        git(path, "checkout", "-q", "-b", name, shas["base"])
        (path / "behaviour.py").write_text(_behaviour({**BASE, **changes}))
        shas[name] = commit_all(path, f"Behave as {name}", day)
    git(path, "checkout", "-q", "main")
    return shas


def worktree(repo: Path, sha: str, where: Path) -> Path:
    git(repo, "worktree", "add", "-q", "--detach", str(where), sha)
    return where


SERVE_ARGV = [sys.executable, "server.py", "{port}"]
SERVE_ENV = {
    "PYTHONPATH": str(REPORTING),
    "PYTHONDONTWRITEBYTECODE": "1",
    # One malloc arena: with glibc's default of one per thread, chunks the bounded cache frees in
    # one handler thread are not reused by the next, and its RSS keeps creeping for thousands of
    # requests after the cache is full. The tests are about the cache, not about glibc.
    "MALLOC_ARENA_MAX": "1",
}
