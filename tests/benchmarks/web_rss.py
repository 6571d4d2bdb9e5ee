"""What a gunicorn web worker holds in memory, with numpy and scipy loaded at start (as before)
and loaded lazily (now): a script, not a test.

A throw-away SQLite database gets 500 synthetic changes; gunicorn runs with the production
config (2 workers) once with each application module. Printed per variant: each worker's RSS
after start, and after 1,000 mixed API requests (change list and detail, search, projects,
/healthz), in the same run.

    .venv/bin/python tests/benchmarks/web_rss.py
"""

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_memory import PYTHON, ROOT, SETUP, free_port, run, workers_rss

REQUESTS = 1000
VARIANTS = {
    "numpy and scipy at start (before)": "tests.benchmarks.eager_wsgi:application",
    "lazy imports (now)": "apps.wsgi:application",
}


def serve(app: str, env: dict, log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [str(Path(PYTHON).parent / "gunicorn"), app, "--config", "deploy/gunicorn.conf.py"],
            cwd=ROOT,
            env={**env, "PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(f"{base}/healthz", timeout=2).raise_for_status()
            return server, base
        except requests.RequestException:
            if time.monotonic() > deadline:
                sys.exit(f"gunicorn did not start:\n{log_path.read_text()}")
            time.sleep(0.3)


def main() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="fixledger-web-rss-"))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(
        FIXLEDGER_DATA_DIR=str(data_dir),
        DJANGO_SETTINGS_MODULE="apps.settings",
        WEB_WORKERS="2",
        LOG_LEVEL="WARNING",
        THROTTLE_SEARCH_RATE="100000/minute",
    )
    try:
        run([PYTHON, "manage.py", "migrate", "--noinput"], env)
        out = run([PYTHON, "-c", SETUP.format(n=500)], env)
        token = next(line.split()[1] for line in out.splitlines() if line.startswith("TOKEN"))
        headers = {"Authorization": f"Token {token}"}
        paths = [
            "/healthz",
            "/api/changes/",
            "/api/changes/?page_size=100",
            "/api/changes/FIX-7/",
            "/api/search/?q=cache",
            "/api/projects/",
        ]
        for label, app in VARIANTS.items():
            server, base = serve(app, env, data_dir / "gunicorn.log")
            try:
                master = psutil.Process(server.pid)
                time.sleep(1)
                at_start = workers_rss(master)
                session = requests.Session()
                for path in itertools.islice(itertools.cycle(paths), REQUESTS):
                    response = session.get(base + path, headers=headers, timeout=30)
                    response.raise_for_status()
                after = workers_rss(master)
            finally:
                server.terminate()
                server.wait()
            print(
                f"{label:36s} RSS per worker after start "
                f"{', '.join(f'{mb:.0f}' for mb in at_start)} MB; after {REQUESTS} requests "
                f"{', '.join(f'{mb:.0f}' for mb in after)} MB"
            )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
