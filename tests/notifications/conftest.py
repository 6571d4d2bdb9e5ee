"""A real HTTP receiver on 127.0.0.1 for webhooks and Slack messages, and endpoints at it."""

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.accounts.roles import Role
from apps.notifications.channels.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER
from apps.notifications.models import Endpoint
from apps.notifications.services import endpoint_save
from tests.factories import UserFactory

# A demo project whose real repository has a leak and its fix, a profile, a change to measure.
from ..measurements.conftest import demo_change, demo_project, environment, profile  # noqa: F401

HANG = 0


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    at: float

    def json(self):
        return json.loads(self.body)

    def signed_with(self, secret: str) -> bool:
        """Whether the signature headers check out with `secret`, as a receiver checks them."""
        timestamp = self.headers[TIMESTAMP_HEADER]
        signed = timestamp.encode() + b"." + self.body
        expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        return hmac.compare_digest(self.headers[SIGNATURE_HEADER], expected)


@dataclass
class Receiver:
    """Answers each POST with the next of `statuses` (the last one repeats); `HANG` answers
    nothing for a few seconds."""

    statuses: list[int] = field(default_factory=lambda: [204])
    received: list[Received] = field(default_factory=list)
    url: str = ""

    def next_status(self) -> int:
        index = min(len(self.received), len(self.statuses)) - 1
        return self.statuses[max(index, 0)]


@pytest.fixture
def receiver():
    state = Receiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock:
                state.received.append(
                    Received(self.path, dict(self.headers), body, time.monotonic())
                )
                status = state.next_status()
            if status == HANG:
                time.sleep(3)
                return
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"nope" if status >= 300 else b"okay")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def make_endpoint(kind: str, url: str, name: str | None = None) -> tuple[Endpoint, str]:
    admin = UserFactory(username="endpoint-admin", role=Role.ADMIN)
    endpoint = Endpoint(name=name or f"{kind} receiver", kind=kind, url=url, secret="")
    secret = endpoint_save(actor=admin, endpoint=endpoint)
    return endpoint, secret


@pytest.fixture
def webhook(receiver):
    return make_endpoint("webhook", receiver.url + "/hook")


@pytest.fixture
def slack(receiver):
    endpoint, _secret = make_endpoint("slack", receiver.url + "/slack")
    return endpoint
