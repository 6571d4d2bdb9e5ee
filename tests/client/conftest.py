"""The `fixledger` command run as a CI job runs it: a subprocess, against a live server."""

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

CLIENT = Path(__file__).resolve().parents[2] / "client"


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


def _environment(url: str, token: str) -> dict[str, str]:
    # Only the client on the path and the server's address, as in a CI job.
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(CLIENT),
        "FIXLEDGER_URL": url,
        "FIXLEDGER_TOKEN": token,
    }


def run_fixledger(*args: str, url: str, token: str, timeout: float = 120) -> Ran:
    """`python -m fixledger_client ARGS` to its end."""
    done = subprocess.run(
        [sys.executable, "-m", "fixledger_client", *args],
        capture_output=True,
        text=True,
        env=_environment(url, token),
        timeout=timeout,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def start_fixledger(*args: str, url: str, token: str) -> subprocess.Popen:
    """The same, left running."""
    return subprocess.Popen(
        [sys.executable, "-m", "fixledger_client", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(url, token),
    )


@pytest.fixture
def closed_port_url() -> str:
    """The URL of a port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
