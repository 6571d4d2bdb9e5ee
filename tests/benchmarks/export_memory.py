"""What concurrent exports cost the web server: a script, not a test.

Fills a throw-away database with N synthetic changes (the search benchmark's generator), starts
gunicorn with the production config (2 workers, 4 threads each) on a free local port, and has a
viewer run CONCURRENCY unfiltered exports at once. Printed:

1. The gunicorn workers' RSS before the exports (after a warm-up), at its peak during them and
   after them: the baseline is the same workers before, measured in the same run.
2. Each export's time and size, and whether it said it was cut; exports beyond a process's
   EXPORT_CONCURRENCY are refused at once with 429 (that is the point: threads stay free).
3. The latency of /healthz requests made one after another while the exports run, against
   the same requests before them.

    .venv/bin/python tests/benchmarks/export_memory.py              # SQLite
    .venv/bin/python tests/benchmarks/export_memory.py --export-concurrency 4   # all 8 stream
    .venv/bin/python tests/benchmarks/export_memory.py \\
        --database postgres://postgres@127.0.0.1:5432/fixledger_bench   # dropped and re-created
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import psutil
import requests

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable

SETUP = """
import random, django
django.setup()
from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.accounts.services import api_token_create, user_set_role
from apps.search import synthetic
synthetic.generate(random.Random(42), {n})
viewer = User.objects.create(username="bench-viewer")
user_set_role(actor=None, user=viewer, role=Role.VIEWER)
print("TOKEN", api_token_create(actor=viewer, user=viewer, name="bench")[1])
"""


def run(argv: list[str], env: dict) -> str:
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"{' '.join(argv[:3])} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def recreate_postgres(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def workers_rss(master: psutil.Process) -> list[float]:
    """RSS of each gunicorn worker, in MB."""
    return sorted(p.memory_info().rss / 2**20 for p in master.children())


def healthz_latencies(base: str, stop: threading.Event, out: list[float]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        requests.get(f"{base}/healthz", timeout=120).raise_for_status()
        out.append(time.perf_counter() - started)
        time.sleep(0.05)


def export(base: str, token: str, out: list) -> None:
    started, size, tail = time.perf_counter(), 0, b""
    with requests.get(
        f"{base}/api/search/export/",
        headers={"Authorization": f"Token {token}"},
        stream=True,
        timeout=600,
    ) as response:
        if response.status_code == 429:
            out.append((429, 0.0, 0, False, response.headers.get("Retry-After")))
            return
        response.raise_for_status()
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
            tail = (tail + chunk)[-200:]
    out.append((200, time.perf_counter() - started, size, b'"truncated": true' in tail, None))


def describe(values: list[float]) -> str:
    return (
        f"n={len(values)} median {statistics.median(values) * 1000:.0f} ms, "
        f"max {max(values) * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--database", default="", help="A PostgreSQL URL (else SQLite).")
    parser.add_argument(
        "--export-concurrency",
        type=int,
        default=None,
        help="EXPORT_CONCURRENCY for the server (default: the setting's default); 4 lets all "
        "8 exports stream at once, 4 per worker, to see memory with every thread exporting.",
    )
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="fixledger-export-bench-"))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(
        FIXLEDGER_DATA_DIR=str(data_dir),
        DJANGO_SETTINGS_MODULE="apps.settings",
        # The benchmark's own viewer must not be throttled: the exports are the load.
        THROTTLE_EXPORT_RATE="1000/hour",
        WEB_WORKERS="2",
        WEB_TIMEOUT="600",
        LOG_LEVEL="WARNING",
    )
    if args.export_concurrency is not None:
        env["EXPORT_CONCURRENCY"] = str(args.export_concurrency)
    if args.database:
        recreate_postgres(args.database)
        env["DATABASE_URL"] = args.database
    engine = "PostgreSQL" if args.database else "SQLite"

    started = time.perf_counter()
    run([PYTHON, "manage.py", "migrate", "--noinput"], env)
    out = run([PYTHON, "-c", SETUP.format(n=args.changes)], env)
    token = next(line.split()[1] for line in out.splitlines() if line.startswith("TOKEN"))
    print(f"{engine}: {args.changes:,} changes generated in {time.perf_counter() - started:.0f} s")

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(data_dir / "gunicorn.log", "w")  # noqa: SIM115 - open for the server's lifetime
    server = subprocess.Popen(
        [
            str(Path(PYTHON).parent / "gunicorn"),
            "apps.wsgi",
            "--config",
            str(ROOT / "deploy" / "gunicorn.conf.py"),
        ],
        cwd=ROOT,
        env={**env, "PORT": str(port)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{base}/healthz", timeout=2).raise_for_status()
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    sys.exit("gunicorn did not start")
                time.sleep(0.3)
        master = psutil.Process(server.pid)
        # Warm-up: every worker imports the API and answers a small export once.
        headers = {"Authorization": f"Token {token}"}
        for _ in range(8):
            requests.get(
                f"{base}/api/search/export/", params={"q": "zzzz"}, headers=headers, timeout=60
            ).raise_for_status()
        idle: list[float] = []
        stop = threading.Event()
        probe = threading.Thread(target=healthz_latencies, args=(base, stop, idle))
        probe.start()
        time.sleep(3)
        stop.set()
        probe.join()
        before = workers_rss(master)

        results: list = []
        busy: list[float] = []
        stop = threading.Event()
        probe = threading.Thread(target=healthz_latencies, args=(base, stop, busy))
        exports = [
            threading.Thread(target=export, args=(base, token, results))
            for _ in range(args.concurrency)
        ]
        peak = list(before)
        probe.start()
        for thread in exports:
            thread.start()
        while any(t.is_alive() for t in exports):
            peak = [max(a, b) for a, b in zip(peak, workers_rss(master), strict=True)]
            time.sleep(0.2)
        stop.set()
        probe.join()
        time.sleep(1)
        after = workers_rss(master)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
        shutil.rmtree(data_dir, ignore_errors=True)

    def mb(values: list[float]) -> str:
        return ", ".join(f"{v:.0f}" for v in values) + " MB"

    cap = env.get("EXPORT_CONCURRENCY", "default")
    print(
        f"gunicorn workers' RSS (2 workers x 4 threads), {args.concurrency} concurrent exports, "
        f"EXPORT_CONCURRENCY={cap}:"
    )
    print(f"  before (baseline)  {mb(before)}")
    print(f"  peak during        {mb(peak)}")
    print(f"  after              {mb(after)}")
    print(
        "  growth after       "
        + ", ".join(f"{a - b:+.0f}" for a, b in zip(after, before, strict=True))
        + " MB"
    )
    done = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 429]
    print(
        f"exports: {len(done)} streamed, {describe([r[1] for r in done])}, "
        f"{max(r[2] for r in done) / 2**20:.1f} MB each, truncated: "
        f"{sorted({r[3] for r in done})}; {len(refused)} refused at once with 429 "
        f"(Retry-After {sorted({r[4] for r in refused})} s)"
    )
    print(f"/healthz before the exports: {describe(idle)}")
    print(f"/healthz during the exports: {describe(busy)}")
    print(json.dumps({"before": before, "peak": peak, "after": after, "engine": engine}))


if __name__ == "__main__":
    main()
