"""Server time of the pages people open most, at scale: a script, not a test.

Fills a throw-away database with N synthetic changes (the search benchmark's generator,
`apps.search.synthetic`), files 50 edits on one change so its history has 50 rows, and times,
interleaved in one process on the same database:

- the change list, page 1 and page 2,000 (or the deepest page N allows), that page again as
  the *Older* link of the page before reaches it (seeking from the last id shown there), and a
  few filters;
- the API's change list, first page (`/api/changes/`, as JSON);
- the change detail page's history tab with those 50 rows;
- the search page (words, and words with filters);
- `/healthz`, as the floor.

Server time is measured in-process with Django's test client (`Client.get`), signed in as a
viewer: from the request entering Django's handler through every middleware, the view, its
queries and the template to the finished response. No network and no WSGI server are in it.
Printed per page: p50/p95/max over the timed requests, and the queries one request makes.

The database is created for the run and dropped at its end (PostgreSQL: a new database on the
server; SQLite: a file in a temporary folder); the dev database is never touched.

    nice .venv/bin/python tests/benchmarks/pages.py                       # SQLite, 100,000
    nice .venv/bin/python tests/benchmarks/pages.py --database postgres   # PostgreSQL, 1,000,000
    nice .venv/bin/python tests/benchmarks/pages.py --changes 5000 --requests 20

Environment: BENCH_DATABASE (sqlite|postgres), BENCH_CHANGES, BENCH_POSTGRES_URL (the server,
default postgres://postgres@127.0.0.1:5432/) stand in for the arguments.
"""

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CHANGES = {"sqlite": 100_000, "postgres": 1_000_000}
DEEP_PAGE = 2_000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgres"],
        default=os.environ.get("BENCH_DATABASE", "sqlite"),
    )
    parser.add_argument(
        "--changes",
        type=int,
        default=int(os.environ.get("BENCH_CHANGES", "0")) or None,
        help="default: 100,000 on SQLite, 1,000,000 on PostgreSQL",
    )
    parser.add_argument("--requests", type=int, default=100, help="timed requests per page")
    parser.add_argument(
        "--replicate",
        type=int,
        default=None,
        help="PostgreSQL: generate N/K through the services' code and copy it K-1 times in SQL "
        "(default 10 from 100,000 changes on)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/"),
    )
    args = parser.parse_args()
    args.changes = args.changes or DEFAULT_CHANGES[args.database]
    if args.replicate is None:
        args.replicate = 10 if args.database == "postgres" and args.changes >= 100_000 else 1
    return args


def create_postgres(server: str) -> str:
    import psycopg

    name = f"fixledger_bench_pages_{os.getpid()}"
    with psycopg.connect(
        urlparse(server)._replace(path="/postgres").geturl(), autocommit=True
    ) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return urlparse(server)._replace(path=f"/{name}").geturl()


def drop_postgres(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    with psycopg.connect(parsed._replace(path="/postgres").geturl(), autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{parsed.path.lstrip("/")}" WITH (FORCE)')


def percentiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=100, method="inclusive")
    return statistics.median(values), q[94], max(values)


def fill(args) -> dict:
    """The data, and the pages to time with what they show."""
    from django.core.management import call_command

    from apps.accounts.models import User
    from apps.accounts.roles import Role
    from apps.accounts.services import user_set_role
    from apps.changes.models import Change, ChangeStatus
    from apps.changes.selectors import PAGE_SIZE
    from apps.changes.services import change_update
    from apps.search import synthetic

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    call_command("collectstatic", "--noinput", verbosity=0)
    synthetic.generate(random.Random(42), args.changes // args.replicate)  # noqa: S311
    if args.replicate > 1:
        synthetic.replicate(args.replicate)
    total = Change.objects.count()
    print(f"{total:,} changes in {time.perf_counter() - started:.0f} s", flush=True)

    viewer = User.objects.create(username="bench-viewer")
    user_set_role(actor=None, user=viewer, role=Role.VIEWER)
    reviewer = User.objects.create(username="bench-reviewer")
    user_set_role(actor=None, user=reviewer, role=Role.REVIEWER)
    change = Change.objects.exclude(status=ChangeStatus.SHIPPED).order_by("-pk").first()
    title = change.title
    for i in range(50):
        change = change_update(actor=reviewer, change=change, title=f"{title} (edit {i + 1})")

    deep = min(DEEP_PAGE, max(1, total // PAGE_SIZE))
    owner = User.objects.filter(username__startswith="bench").order_by("pk").first()
    # Where the "Older" link of the page before `deep` seeks from: that page's last row.
    boundary = Change.objects.order_by("-pk").values_list("pk", flat=True)[
        max(1, deep - 1) * PAGE_SIZE - 1
    ]
    return {
        "viewer": viewer,
        "pages": [
            ("change list, page 1", "/changes/"),
            (f"change list, page {deep:,}", f"/changes/?page={deep}"),
            (f"list, page {deep:,} by link", f"/changes/?page={deep}&before={boundary}"),
            ("list: project, page 1", "/changes/?project=bench-api"),
            (
                f"list: project, page {deep // 10:,}",
                f"/changes/?project=bench-api&page={max(1, deep // 10)}",
            ),
            (
                "list: owner+status",
                f"/changes/?owner={owner.username}&status=ready",
            ),
            ("API list, page 1", "/api/changes/?format=json"),
            ("change, 50 history rows", f"/changes/FIX-{change.pk}/?tab=history"),
            ("search: words", "/search/?q=cache+leak"),
            ("search: words+filters", "/search/?q=session&project=bench-api&status=ready"),
            ("/healthz", "/healthz"),
        ],
    }


def measure(viewer, pages, requests: int) -> None:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(viewer)
    queries = {}
    for name, url in pages:
        for _ in range(3):  # warm-up: imports, template loading, the database's caches
            response = client.get(url)
            if response.status_code != 200:
                sys.exit(f"{url} answered {response.status_code}")
        with CaptureQueriesContext(connection) as ctx:
            client.get(url)
        queries[name] = len(ctx.captured_queries)
    times: dict[str, list[float]] = {name: [] for name, _ in pages}
    cpu: dict[str, list[float]] = {name: [] for name, _ in pages}
    db: dict[str, list[float]] = {name: [] for name, _ in pages}
    in_queries = [0.0]

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            in_queries[0] += time.perf_counter() - started

    # Interleaved, so whatever else the machine does hits every page alike.
    with connection.execute_wrapper(timed):
        for _ in range(requests):
            for name, url in pages:
                in_queries[0] = 0.0
                started, started_cpu = time.perf_counter(), time.process_time()
                client.get(url)
                times[name].append((time.perf_counter() - started) * 1000)
                cpu[name].append((time.process_time() - started_cpu) * 1000)
                db[name].append(in_queries[0] * 1000)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"\nserver time, in-process (Django test client), {requests} requests a page, "
        f"load average {load} on {os.cpu_count()} cores"
    )
    print("time: wall clock in Django; cpu: this process's CPU in it; db: waiting on queries")
    header = (
        f"{'page':<26} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} {'cpu p50':>8} {'db p50':>7}"
        f" {'db p95':>7} {'queries':>7}"
    )
    print(header)
    print("-" * len(header))
    for name, url in pages:
        p50, p95, top = percentiles(times[name])
        db50, db95, _ = percentiles(db[name])
        print(
            f"{name:<26} {p50:>7.1f} {p95:>7.1f} {top:>7.1f} {statistics.median(cpu[name]):>8.1f}"
            f" {db50:>7.1f} {db95:>7.1f} {queries[name]:>7}   {url}"
        )


def main() -> None:
    args = parse_args()
    os.nice(10)  # a shared machine: the fill and the timing yield to others
    data_dir = Path(tempfile.mkdtemp(prefix="fixledger-pages-bench-"))
    database_url = create_postgres(args.postgres_url) if args.database == "postgres" else ""
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="apps.settings",
        FIXLEDGER_DATA_DIR=str(data_dir),
        DATABASE_URL=database_url,
        ALLOWED_HOSTS="testserver",
        DEBUG="false",
        LOG_LEVEL="WARNING",
    )
    sys.path.insert(0, str(ROOT))
    try:
        import django

        django.setup()
        from django.db import connection

        print(
            f"{connection.vendor}: {args.changes:,} changes"
            + (f" ({args.replicate} copies)" if args.replicate > 1 else ""),
            flush=True,
        )
        filled = fill(args)
        measure(filled["viewer"], filled["pages"], args.requests)
    finally:
        if database_url:
            from django.db import connections

            connections.close_all()
            drop_postgres(database_url)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
