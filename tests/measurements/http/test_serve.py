"""Serving a revision and probing it, against real processes on loopback: faults and cleanup."""

import socket
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psutil
import pytest

from apps.measurements.http.generator import decode_histogram
from apps.measurements.http.plan import PlanError, loopback_base_url, parse_plan
from apps.measurements.http.serve import (
    ServedProcess,
    free_port,
    probe_url,
    run_generator,
    serve_and_probe,
)

from .sample import SERVE_ARGV, SERVE_ENV

pytestmark = pytest.mark.config_independent

PY = sys.executable
SMALL = parse_plan({"entries": [{"path": "/ok"}], "requests": 100, "warmup": 0, "rate": 100})


class Answering(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def gone(pid: int, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)
    return False


def script(code: str) -> list[str]:
    return [PY, "-c", textwrap.dedent(code), "{port}"]


def test_a_port_already_taken_is_named(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        outcome = serve_and_probe(argv=SERVE_ARGV, cwd=tmp_path, plan=SMALL, port=port)
    assert outcome.failure == f"port {port} on 127.0.0.1 is already taken"


def test_a_service_that_cannot_bind_says_the_port_was_taken(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        code = f"import socket; socket.socket().bind(('127.0.0.1', {taken}))"
        outcome = serve_and_probe(argv=script(code), cwd=tmp_path, plan=SMALL, port=free_port())
    assert "is already taken (the service could not bind it)" in outcome.failure


def test_a_service_that_exits_before_ready_shows_its_output(tmp_path):
    code = "import sys; print('boom: no settings'); sys.exit(3)"
    outcome = serve_and_probe(argv=script(code), cwd=tmp_path, plan=SMALL)
    assert outcome.failure == "the service exited with code 3 before it was ready"
    assert "boom: no settings" in outcome.service_output


def test_a_service_that_never_becomes_ready_is_stopped(tmp_path):
    pids = []
    code = "import os, time; open('pid', 'w').write(str(os.getpid())); time.sleep(60)"
    started = time.monotonic()
    outcome = serve_and_probe(
        argv=script(code), cwd=tmp_path, plan=SMALL, ready_path="/health", startup_timeout=1.0
    )
    pids.append(int((tmp_path / "pid").read_text()))
    assert outcome.failure.startswith("the service did not answer /health within 1 s")
    assert time.monotonic() - started < 10
    assert gone(pids[0])


def test_a_stranger_on_the_port_does_not_pass_for_our_service(tmp_path):
    """Another process takes the port between the check and the start (a race): it answers
    the readiness path, but only a listener in the service's own tree counts."""
    port = free_port()
    stranger = ThreadingHTTPServer(("127.0.0.1", port), Answering, bind_and_activate=False)

    class Raced(ServedProcess):
        def start(self):
            stranger.server_bind()
            stranger.server_activate()
            threading.Thread(target=stranger.serve_forever, daemon=True).start()
            super().start()

    try:
        outcome = serve_and_probe(
            argv=script("import time; time.sleep(60)"),
            cwd=tmp_path,
            plan=SMALL,
            port=port,
            startup_timeout=0.5,
            service_factory=Raced,
        )
    finally:
        stranger.shutdown()
        stranger.server_close()
    assert outcome.failure.startswith("the service did not answer / within 0.5 s")


def test_every_process_of_the_service_is_stopped(tmp_path):
    code = """
        import subprocess, sys
        from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
        sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
        subprocess.Popen(sleep)
        subprocess.Popen(sleep, start_new_session=True)  # leaves the process group
        address = ("127.0.0.1", int(sys.argv[1]))
        ThreadingHTTPServer(address, SimpleHTTPRequestHandler).serve_forever()
    """
    seen = []

    def remember(service):
        deadline = time.monotonic() + 5
        while len(service.tree()) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        seen.extend(p.pid for p in service.tree())

    outcome = serve_and_probe(
        argv=script(code),
        cwd=tmp_path,
        plan=parse_plan({"entries": [{"path": "/"}], "requests": 20, "warmup": 0, "rate": 50}),
        on_ready=remember,
    )
    assert outcome.ok, outcome.failure
    assert len(seen) == 3
    assert all(gone(pid) for pid in seen)


def test_a_service_that_dies_mid_run_ends_the_run_with_that_reason(tmp_path, checkout):
    def kill_soon(service):
        threading.Timer(1.0, lambda: psutil.Process(service.pid).kill()).start()

    plan = parse_plan({"entries": [{"path": "/ok"}], "requests": 1000, "warmup": 0, "rate": 100})
    started = time.monotonic()
    outcome = serve_and_probe(
        argv=SERVE_ARGV, cwd=checkout("base"), plan=plan, env=SERVE_ENV, on_ready=kill_soon
    )
    assert outcome.failure == "the service exited with signal SIGKILL during the run"
    # The generator gave up after 20 refused requests instead of trying all 1,000.
    assert time.monotonic() - started < 6
    assert 0 < outcome.result["requests_done"] < 1000


def test_connection_refused_is_a_reason():
    outcome = run_generator(loopback_base_url(free_port()), SMALL)
    assert outcome.failure.startswith("20 requests in a row could not reach http://127.0.0.1:")
    assert "Connect" in outcome.failure


def test_timeouts_are_a_reason():
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(128)
        port = silent.getsockname()[1]
        plan = parse_plan(
            {"entries": [{"path": "/"}], "requests": 200, "warmup": 0, "rate": 100, "timeout": 0.2}
        )
        outcome = run_generator(loopback_base_url(port), plan)
    assert outcome.failure == "20 requests in a row timed out after 0.2 s"


def test_redirects_are_not_followed():
    visits = []

    class Elsewhere(BaseHTTPRequestHandler):
        def do_GET(self):
            visits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    other = ThreadingHTTPServer(("127.0.0.2", 0), Elsewhere)
    target = f"http://127.0.0.2:{other.server_address[1]}/stolen"

    class Redirecting(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    origin = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    for server in (other, origin):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        plan = parse_plan({"entries": [{"path": "/"}], "requests": 30, "warmup": 0, "rate": 100})
        outcome = run_generator(loopback_base_url(origin.server_address[1]), plan)
    finally:
        for server in (other, origin):
            server.shutdown()
            server.server_close()
    assert outcome.ok, outcome.failure
    assert outcome.result["total"]["statuses"] == {"302": 30}
    assert visits == []


def test_only_registered_base_urls_are_probed():
    refused = probe_url(
        base_url="http://127.0.0.1:9/", registered=["https://staging.example"], plan=SMALL
    )
    assert refused.failure == "http://127.0.0.1:9 is not a base URL registered for this environment"
    bad = probe_url(base_url="http://user@staging.example", registered=[], plan=SMALL)
    assert "user:password" in bad.failure
    process = parse_plan({"entries": [{"path": "/"}], "memory": {"source": "process"}})
    url = "https://staging.example"
    assert "endpoint" in probe_url(base_url=url, registered=[url], plan=process).failure


def test_the_serve_command_must_take_the_port(tmp_path):
    with pytest.raises(PlanError, match=r"\{port\}"):
        serve_and_probe(argv=[PY, "server.py"], cwd=tmp_path, plan=SMALL)


def test_a_rate_the_generator_cannot_keep_makes_the_run_inconclusive(checkout):
    plan = parse_plan({"entries": [{"path": "/ok"}], "requests": 3000, "warmup": 0, "rate": 50_000})
    outcome = serve_and_probe(argv=SERVE_ARGV, cwd=checkout("base"), plan=plan, env=SERVE_ENV)
    assert outcome.ok, outcome.failure
    assert outcome.result["inconclusive"].startswith("the generator could not keep 50,000 req/s: ")
    assert outcome.result["lag"]["late_fraction"] > 0.01


def test_closed_loop_and_wrong_statuses(checkout):
    plan = parse_plan(
        {
            "entries": [{"path": "/ok"}, {"path": "/missing"}],
            "requests": 200,
            "warmup": 10,
            "mode": "concurrency",
            "concurrency": 2,
            "wrong_statuses": [404],
        }
    )
    outcome = serve_and_probe(argv=SERVE_ARGV, cwd=checkout("base"), plan=plan, env=SERVE_ENV)
    assert outcome.ok, outcome.failure
    result = outcome.result
    assert result["requests_done"] == 200
    assert result["lag"]["late"] == 0 and result["inconclusive"] == ""
    missing = result["endpoints"]["GET /missing"]
    assert missing["errors"] == {"wrong_status": missing["count"]} and missing["count"] > 50
    assert result["endpoints"]["GET /ok"]["errors"] == {}


def test_memory_from_the_services_own_endpoint(checkout):
    plan = parse_plan(
        {
            "entries": [{"path": "/ok"}],
            "requests": 300,
            "warmup": 10,
            "rate": 200,
            "memory": {
                "source": "endpoint",
                "path": "/_fixledger/memory",
                "field": "rss",
                "samples": 20,
            },
        }
    )
    outcome = serve_and_probe(argv=SERVE_ARGV, cwd=checkout("base"), plan=plan, env=SERVE_ENV)
    assert outcome.ok, outcome.failure
    memory = outcome.result["memory"]
    assert memory["errors"] == 0
    assert len(memory["samples"]) >= 15
    assert all(rss > 5_000_000 for _done, rss in memory["samples"])
    assert memory["peak_rss"] == max(rss for _done, rss in memory["samples"])
    # The memory requests are the probe's own, not part of the measured load.
    assert outcome.result["total"]["count"] == 300


def test_the_probe_opens_its_connections_first_and_never_more():
    ports = set()

    class Slow(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            ports.add(self.client_address[1])
            time.sleep(0.03)  # six requests in flight at 200 req/s: more than the pool
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        plan = parse_plan(
            {
                "entries": [{"path": "/"}],
                "requests": 200,
                "warmup": 5,
                "rate": 200,
                "connections": 3,
            }
        )
        outcome = run_generator(loopback_base_url(server.server_address[1]), plan)
    finally:
        server.shutdown()
        server.server_close()
    assert outcome.ok, outcome.failure
    assert len(ports) == 3
    # Requests that waited for a connection count that wait: about 2x the 30 ms service time.
    assert outcome.result["requests_done"] == 200
    assert decode_histogram(outcome.result["total"]["histogram"]).get_max_value() > 40_000
