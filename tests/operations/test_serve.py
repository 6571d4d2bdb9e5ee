"""The run command: serves pages with a worker beside it, and Ctrl-C leaves nothing behind."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest
from django.conf import settings

pytestmark = pytest.mark.config_independent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback only)
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


@pytest.fixture
def embedded_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env["FIXLEDGER_DATA_DIR"] = str(tmp_path)
    manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], env=env, check=True)
    subprocess.run([*manage, "collectstatic", "--noinput", "-v0"], env=env, check=True)
    return env, manage


def test_serve_runs_web_and_worker_and_stops_cleanly(embedded_env, tmp_path):
    env, manage = embedded_env
    port = _free_port()
    log = (tmp_path / "serve.log").open("w+")
    proc = subprocess.Popen(
        [*manage, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while _get(f"http://127.0.0.1:{port}/readyz") != 200:
            assert proc.poll() is None, "serve exited early"
            assert time.monotonic() < deadline, "not ready within 60 s"
            time.sleep(0.3)
        assert _get(f"http://127.0.0.1:{port}/login/") == 200
        while "ready." not in (tmp_path / "serve.log").read_text():
            assert time.monotonic() < deadline, "the Celery worker never became ready"
            time.sleep(0.3)
        family = psutil.Process(proc.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in family)
        assert "gunicorn" in names
        assert "celery" in names
        # Beat rides along with the one worker: the embedded default reconciles its work too.
        assert "--beat" in names
        # Mail is not sent anywhere by default, and the command says where it goes instead.
        said = (tmp_path / "serve.log").read_text()
        assert f"Mail is written to files in {tmp_path / 'mail'}" in said
        # Links in messages lead where it serves, and its processes know it.
        assert f"Links in notifications lead to http://127.0.0.1:{port}/." in said
        web = next(p for p in family if "gunicorn" in " ".join(p.cmdline()))
        assert web.environ()["SITE_URL"] == f"http://127.0.0.1:{port}"

        # What a terminal's Ctrl-C does: SIGINT to the foreground process.
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        _gone, alive = psutil.wait_procs(family, timeout=5)
        assert alive == [], f"left behind: {alive}"
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
