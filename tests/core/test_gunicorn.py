"""gunicorn as deployed: several instances on one host each keep their own control socket; its
access log names the client behind nginx; probes reach it without nginx."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.config_independent

ROOT = Path(__file__).resolve().parents[2]


def control_socket(tmp_path, **env: str) -> str:
    """The control socket gunicorn reads from deploy/gunicorn.conf.py under `env`."""
    code = (
        "from gunicorn.config import Config; c = Config(); "
        "ns = {}; exec(open('deploy/gunicorn.conf.py').read(), ns); "
        "c.set('control_socket', ns['control_socket']); print(c.control_socket)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_two_instances_on_one_host_have_their_own_control_socket(tmp_path):
    one = control_socket(tmp_path, FIXLEDGER_DATA_DIR="/srv/one", PORT="8001")
    other = control_socket(tmp_path, FIXLEDGER_DATA_DIR="/srv/one", PORT="8002")
    elsewhere = control_socket(tmp_path, FIXLEDGER_DATA_DIR="/srv/two", PORT="8001")
    assert one == "/srv/one/gunicorn-8001.ctl"
    assert len({one, other, elsewhere}) == 3
    assert not one.startswith(str(tmp_path)), "not the per-user default that instances share"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_behind_nginx_the_access_log_names_the_client_and_probes_skip_nginx(tmp_path):
    """gunicorn as deploy/README.md runs it, with env.example's production settings: a probe on
    the host reaches it directly, and a proxied request's log line starts with the client."""
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "apps.settings",
        "FIXLEDGER_DATA_DIR": str(tmp_path),
        "SECRET_KEY": "a-test-key-" + "x" * 50,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "fixledger.example.com",
        "SECURE_SSL_REDIRECT": "true",
        "BEHIND_PROXY": "true",
        "PORT": str(port),
        "WEB_WORKERS": "1",
    }
    bindir = Path(sys.executable).parent
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(bindir / "gunicorn"), "apps.wsgi", "--config", "deploy/gunicorn.conf.py"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                probe = urllib.request.urlopen(f"{base}/healthz", timeout=2)  # noqa: S310
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(log.read_text()[-3000:]) from None
                time.sleep(0.3)
        assert probe.status == 200, "a probe on the host needs neither nginx nor a host name"
        # What nginx sends: the client's address in X-Forwarded-For, and the request id.
        proxied = urllib.request.Request(  # noqa: S310
            f"{base}/healthz",
            headers={"X-Forwarded-For": "203.0.113.7", "X-Request-ID": "trace-access-1"},
        )
        urllib.request.urlopen(proxied, timeout=5)  # noqa: S310
        deadline = time.monotonic() + 10
        while "trace-access-1" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        (line,) = [x for x in log.read_text().splitlines() if "trace-access-1" in x]
        assert line.startswith("203.0.113.7 127.0.0.1 "), line
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
