"""Change list throughput under gunicorn (production config, 2 workers) with wrk, next to
/healthz on the same server in the same run: a script, not a test.

A throw-away SQLite database gets 2,000 synthetic changes; a signed-in viewer's session cookie
drives the change list page (50 a page, newest first). wrk (Debian's `wrk`) runs each URL for
10 s with 4 connections; printed are requests a second, p50/p99 latency and their ratio.

    .venv/bin/python tests/benchmarks/change_list_wrk.py
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_memory import PYTHON, SETUP, run
from web_rss import serve

SESSION = """
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
session = SessionStore()
session[SESSION_KEY] = str(viewer.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = viewer.get_session_auth_hash()
session.create()
print("SESSION", session.session_key)
"""


def wrk(url: str, cookie: str) -> tuple[float, str, str]:
    out = subprocess.run(
        ["wrk", "-t2", "-c4", "-d10s", "--latency", "-H", f"Cookie: sessionid={cookie}", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"50%\s+(\S+)", out).group(1)
    p99 = re.search(r"99%\s+(\S+)", out).group(1)
    if "Non-2xx" in out:
        sys.exit(f"{url} answered errors:\n{out}")
    return rate, p50, p99


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("needs Debian's wrk: apt-get install wrk")
    data_dir = Path(tempfile.mkdtemp(prefix="fixledger-wrk-"))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(
        FIXLEDGER_DATA_DIR=str(data_dir),
        DJANGO_SETTINGS_MODULE="apps.settings",
        WEB_WORKERS="2",
        LOG_LEVEL="WARNING",
    )
    server = None
    try:
        run([PYTHON, "manage.py", "migrate", "--noinput"], env)
        run([PYTHON, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"], env)
        out = run([PYTHON, "-c", SETUP.format(n=2000) + SESSION], env)
        cookie = next(line.split()[1] for line in out.splitlines() if line.startswith("SESSION"))
        server, base = serve("apps.wsgi:application", env, data_dir / "gunicorn.log")
        results = {path: wrk(base + path, cookie) for path in ("/healthz", "/changes/")}
    finally:
        if server is not None:
            server.terminate()
            server.wait()
        shutil.rmtree(data_dir, ignore_errors=True)
    for path, (rate, p50, p99) in results.items():
        print(f"{path:12s} {rate:8.1f} requests/s   p50 {p50:>8s}   p99 {p99:>8s}")
    ratio = results["/changes/"][0] / results["/healthz"][0]
    print(f"change list / healthz throughput: {ratio:.2f}")


if __name__ == "__main__":
    main()
