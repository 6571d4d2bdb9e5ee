"""Synthetic past fixes for benchmarks: changes, measurements and search entries at any size.

Not for tests or real databases: it writes into whatever database is configured. The search
benchmark (`manage.py search_benchmark`) and the page benchmarks in tests/benchmarks/ fill their
throw-away databases with it.
"""

import random
import time
from collections.abc import Callable
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.accounts.services import user_set_role
from apps.changes.models import Change, ChangeStatus
from apps.measurements.models import (
    Measurement,
    MeasurementKind,
    MeasurementStatus,
    Profile,
)
from apps.measurements.reports import change_latest_verdict_record
from apps.projects.models import Environment, Project

from . import partitions
from .index import index_changes

VERBS = [
    "bound",
    "trim",
    "cap",
    "pool",
    "reuse",
    "stream",
    "batch",
    "cache",
    "drop",
    "close",
    "release",
    "shrink",
    "split",
]
THINGS = [
    "response",
    "cache",
    "session",
    "store",
    "connection",
    "pool",
    "query",
    "result",
    "buffer",
    "thumbnail",
    "queue",
    "serializer",
    "template",
    "report",
    "export",
    "parser",
    "tokenizer",
    "index",
    "worker",
    "logger",
    "metrics",
    "image",
    "resizer",
    "pdf",
    "renderer",
    "websocket",
    "handler",
    "upload",
    "stream",
    "json",
    "decoder",
    "orm",
    "queryset",
    "celery",
    "task",
    "redis",
    "client",
    "http",
    "client",
    "regex",
    "compiler",
    "lru",
    "dict",
    "memo",
    "table",
]
PROBLEMS = [
    "leak",
    "grows",
    "unbounded",
    "fragmentation",
    "spike",
    "retention",
    "churn",
    "thrash",
    "bloat",
    "copies",
    "quadratic",
    "stall",
    "contention",
    "timeout",
    "backlog",
    "overflow",
]
FILLER = [
    "under",
    "load",
    "after",
    "deploy",
    "at",
    "peak",
    "hours",
    "on",
    "large",
    "tenants",
    "when",
    "retries",
    "pile",
    "up",
    "during",
    "nightly",
    "exports",
    "since",
    "the",
    "upgrade",
    "with",
    "many",
    "small",
    "requests",
    "for",
    "big",
    "uploads",
]
PACKAGES = [
    "api",
    "billing",
    "search",
    "reports",
    "auth",
    "media",
    "sync",
    "notify",
    "admin",
    "core",
]
MODULES = [
    "cache",
    "views",
    "models",
    "serializers",
    "tasks",
    "utils",
    "client",
    "pool",
    "session",
    "handlers",
    "queries",
    "export",
    "parser",
    "render",
    "upload",
    "stream",
    "settings",
    "middleware",
    "signals",
    "storage",
]
TAGS = [
    "memory",
    "cpu",
    "latency",
    "cache",
    "db",
    "io",
    "gc",
    "leak",
    "regression",
    "hotfix",
    "infra",
]
VERDICTS = ["improved", "regressed", "no detectable change", "inconclusive"]
METRICS = [("peak_rss", True), ("wall", True), ("user_cpu", True), ("throughput", False)]


def change_fields(rng: random.Random, n: int) -> dict:
    """The text of synthetic change number n."""
    thing, problem = rng.choice(THINGS), rng.choice(PROBLEMS)
    pkg = rng.choice(PACKAGES)
    files = [
        f"apps/{pkg}/{rng.choice(MODULES)}{rng.randint(0, 40)}.py" for _ in range(rng.randint(1, 4))
    ]
    return {
        "title": f"{rng.choice(VERBS).capitalize()} the {thing} {problem} in {pkg} #{n}",
        "reason": (
            f"The {thing} shows {problem} {rng.choice(FILLER)}; "
            f"{rng.choice(THINGS)} {rng.choice(PROBLEMS)} follows {rng.choice(FILLER)}. "
            f"Seen by {rng.choice(['ops', 'support', 'alerts', 'a customer'])} on ticket {n}."
        ),
        "expected_result": f"peak RSS -{rng.randint(5, 40)} %",
        "command": f"python -m bench.{pkg} --requests {rng.randint(1, 100) * 100}",
        "rollback_note": f"Revert; set {pkg.upper()}_{thing.upper()}_LIMIT=0.",
        "files_touched": files,
        "tags": rng.sample(TAGS, rng.randint(0, 3)),
    }


def generate(rng: random.Random, n: int, *, out: Callable[[str], None] = print) -> None:
    """N changes in 10 projects by 40 engineers, 60 % with a finished measurement, indexed
    for search, as if filed and measured over three years; then ANALYZE."""
    started = time.perf_counter()
    projects = [Project.objects.create(name=f"Bench {p}", slug=f"bench-{p}") for p in PACKAGES]
    environment = Environment.objects.create(name="bench")
    profiles = {
        p.pk: Profile.objects.create(
            project=p, name="bench", environment=environment, argv=["true"]
        )
        for p in projects
    }
    owners = []
    for i in range(40):
        user = User.objects.create(username=f"bench{i}")
        user_set_role(actor=None, user=user, role=Role.ENGINEER)
        owners.append(user)
    now = timezone.now()
    batch = 20_000
    statuses = [ChangeStatus.DRAFT, ChangeStatus.READY, ChangeStatus.SHIPPED]
    for start in range(0, n, batch):
        rows = []
        for i in range(start, min(n, start + batch)):
            project = rng.choice(projects)
            created = now - timedelta(minutes=rng.randint(0, 3 * 365 * 24 * 60))
            rows.append(
                Change(
                    project=project,
                    owner=rng.choice(owners),
                    status=rng.choice(statuses),
                    created=created,
                    updated=created,
                    **change_fields(rng, i + 1),
                )
            )
        with transaction.atomic():
            made = Change.objects.bulk_create(rows, batch_size=5000)
            measurements = []
            for change in made:
                if rng.random() < 0.6:
                    results = []
                    for metric, lower in rng.sample(METRICS, rng.randint(1, 3)):
                        pct = round(rng.gauss(-8 if lower else 8, 12), 2)
                        results.append(
                            {
                                "metric": metric,
                                "lower_is_better": lower,
                                "change_pct": pct,
                                "verdict": rng.choice(VERDICTS),
                            }
                        )
                    measurements.append(
                        Measurement(
                            change=change,
                            profile=profiles[change.project_id],
                            kind=MeasurementKind.COMPARE,
                            status=MeasurementStatus.DONE,
                            base_sha="a" * 40,
                            head_sha="b" * 40,
                            finished_at=change.created,
                            results=results,
                        )
                    )
            Measurement.objects.bulk_create(measurements, batch_size=5000)
            # The same functions finishing a measurement and every write path call, in bulk.
            change_latest_verdict_record(measurements=measurements)
            index_changes([c.pk for c in made])
        out(f"  {min(n, start + batch):>9,} changes ({time.perf_counter() - started:.0f} s)")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    else:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
            cursor.execute("INSERT INTO search_fts(search_fts) VALUES ('optimize')")
    elapsed = time.perf_counter() - started
    out(f"Generated and indexed {n:,} changes in {elapsed:.0f} s ({n / elapsed:,.0f}/s).")


def replicate(times: int, *, out: Callable[[str], None] = print) -> None:
    """PostgreSQL: copy every change (with its measurements and search entry) K-1 more times
    in SQL, vectors included, to reach millions quickly."""
    from .models import SearchEntry

    started = time.perf_counter()
    plan = [
        # (model, foreign keys that point at a change and move with it)
        (Change, []),
        (Measurement, ["change_id"]),
        (SearchEntry, []),
    ]
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(id) FROM changes_change")
        change_span = cursor.fetchone()[0]
        last = change_span * times
        partitions.ensure_for([*range(0, last, partitions.PARTITION_SIZE), last])
        cursor.execute("DROP INDEX IF EXISTS search_vector_gin")
        for model, fks in plan:
            table = model._meta.db_table
            pk = model._meta.pk.column
            cursor.execute(f"SELECT coalesce(max({pk}), 0) FROM {table}")  # noqa: S608
            span = change_span if model in (Change, SearchEntry) else cursor.fetchone()[0]
            columns = [f.column for f in model._meta.concrete_fields]
            select = []
            for column in columns:
                if column == pk:
                    select.append(f"{column} + k * {span}")
                elif column in fks:
                    select.append(f"{column} + k * {change_span}")
                else:
                    select.append(column)
            # Copy by copy, in key order: rows land in the order they would have been filed.
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(select)}"  # noqa: S608
                f" FROM {table}, generate_series(1, {times - 1}) AS k ORDER BY k, {pk}"
            )
            if model in (Change, Measurement):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', '{pk}'),"  # noqa: S608
                    f" (SELECT max({pk}) FROM {table}))"
                )
            out(f"  copied {table} ({time.perf_counter() - started:.0f} s)")
        cursor.execute("CREATE INDEX search_vector_gin ON search_searchentry USING gin (vector)")
        cursor.execute("VACUUM ANALYZE")
    out(f"Replicated x{times} in {time.perf_counter() - started:.0f} s.")
