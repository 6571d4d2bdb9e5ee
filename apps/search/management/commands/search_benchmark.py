"""Fills the database with synthetic past fixes and times search against a naive baseline.

Not a test: it writes N changes into whatever database is configured. Use a throw-away one.
"""

import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.models import Q

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.accounts.services import user_set_role
from apps.changes.models import Change, ChangeStatus
from apps.projects.models import Project
from apps.search import synthetic
from apps.search.selectors import WINDOW, SearchParams, search
from apps.search.synthetic import MODULES, PACKAGES, PROBLEMS, THINGS


def _pcts(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        v = values[0] if values else float("nan")
        return v, v, v
    q = statistics.quantiles(values, n=100, method="inclusive")
    return statistics.median(values), q[94], q[98]


class Command(BaseCommand):
    help = "Generate N synthetic changes and time 200 searches (p50/p95/p99 per kind)."

    def add_arguments(self, parser):
        parser.add_argument("--changes", type=int, default=10_000)
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--baseline-per-kind", type=int, default=5)
        parser.add_argument("--skip-generate", action="store_true")
        parser.add_argument(
            "--replicate",
            type=int,
            default=1,
            help="PostgreSQL: generate changes/K through the index code, then copy them K-1 "
            "more times in SQL (vectors included) to reach N quickly.",
        )
        parser.add_argument(
            "--import-changes", type=int, default=0, help="Also time importing this many."
        )

    def handle(
        self, *args, changes, seed, baseline_per_kind, skip_generate, import_changes, replicate, **o
    ):
        rng = random.Random(seed)  # noqa: S311 - synthetic data, repeatable by seed
        if not skip_generate:
            if Change.objects.exists():
                raise CommandError("The database already has changes: use an empty one.")
            if replicate > 1 and connection.vendor != "postgresql":
                raise CommandError("--replicate is for PostgreSQL.")
            synthetic.generate(rng, changes // replicate, out=self.stdout.write)
            if replicate > 1:
                synthetic.replicate(replicate, out=self.stdout.write)
        self._queries(rng, baseline_per_kind)
        if import_changes:
            self._import(rng, import_changes)

    # --- queries ----------------------------------------------------------------------------

    def _mix(self, rng: random.Random) -> list[tuple[str, dict, dict | None]]:
        """(kind, search params, naive baseline filter) x 200, always the same for one seed."""
        projects = list(Project.objects.filter(slug__startswith="bench-"))
        owners = list(User.objects.filter(username__startswith="bench"))

        def words(k: int) -> str:
            return " ".join(rng.choice(THINGS + PROBLEMS) for _ in range(k))

        def text_q(term: str) -> Q:
            return (
                Q(title__icontains=term)
                | Q(reason__icontains=term)
                | Q(command__icontains=term)
                | Q(rollback_note__icontains=term)
                | Q(expected_result__icontains=term)
            )

        mix = []
        for _ in range(20):
            w = rng.choice(THINGS + PROBLEMS)
            mix.append(("word", {"q": w}, text_q(w)))
            two = words(2)
            a, b = two.split()
            mix.append(("two words", {"q": two}, text_q(a) & text_q(b)))
            phrase = f"{rng.choice(THINGS)} {rng.choice(PROBLEMS)}"
            mix.append(("phrase", {"q": f'"{phrase}"'}, text_q(phrase)))
            a, b = rng.choice(PROBLEMS), rng.choice(PROBLEMS)
            mix.append(
                ("or / -word", {"q": f"{a} or {b} -{rng.choice(THINGS)}"}, text_q(a) | text_q(b))
            )
            module = f"{rng.choice(MODULES)}{rng.randint(0, 40)}.py"
            mix.append(("path: file name", {"q": module}, Q(files_touched__icontains=module)))
            folder = f"apps/{rng.choice(PACKAGES)}/{rng.choice(MODULES)[:4]}"
            mix.append(("path: partial", {"q": folder}, Q(files_touched__icontains=folder)))
            project, owner = rng.choice(projects), rng.choice(owners)
            mix.append(
                (
                    "filters only",
                    {"project": project, "owner": owner, "status": ChangeStatus.READY},
                    Q(project=project, owner=owner, status=ChangeStatus.READY),
                )
            )
            w = rng.choice(THINGS)
            mix.append(
                (
                    "words + filters",
                    {"q": w, "project": project, "verdict": "improved"},
                    text_q(w) & Q(project=project),
                )
            )
            mix.append(
                (
                    "gain >= X %",
                    {
                        "gain_metric": "peak_rss",
                        "gain_min": rng.choice([10, 20, 30]),
                        "q": rng.choice(PROBLEMS),
                    },
                    None,
                )
            )
            mix.append(
                (
                    "sort by gain",
                    {"q": rng.choice(THINGS), "sort": "gain", "gain_metric": "wall"},
                    None,
                )
            )
        return mix

    def _queries(self, rng: random.Random, baseline_per_kind: int) -> None:
        mix = self._mix(rng)
        times: dict[str, list[float]] = {}
        capped: dict[str, int] = {}
        # Untimed: a new connection's first search loads the database's catalogue caches.
        search(SearchParams(**mix[0][1]))
        for kind, params, _ in mix:
            # What the search page and the API do: a page of 20, the count and the facets.
            started = time.perf_counter()
            results = search(SearchParams(**params))
            times.setdefault(kind, []).append((time.perf_counter() - started) * 1000)
            capped[kind] = capped.get(kind, 0) + results.capped
        baseline: dict[str, list[float]] = {}
        for kind, _, condition in mix:
            if condition is None or len(baseline.get(kind, [])) >= baseline_per_kind:
                continue
            started = time.perf_counter()
            qs = Change.objects.filter(condition).select_related("project", "owner")
            qs.count()
            list(qs.order_by("-created")[:20])
            baseline.setdefault(kind, []).append((time.perf_counter() - started) * 1000)
        total = Change.objects.count()
        self.stdout.write(
            f"\n{connection.vendor}, {total:,} changes, {len(mix)} queries "
            f"(page of 20, count and facets; baseline: {baseline_per_kind} per kind)"
        )
        header = (
            f"{'kind':<18} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'capped':>7}"
            f"   {'icontains p50':>13} {'p95':>8}"
        )
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        for kind, values in times.items():
            p50, p95, p99 = _pcts(values)
            base = baseline.get(kind)
            b50, b95, _ = _pcts(base) if base else (None, None, None)
            base_text = f"{b50:>13.1f} {b95:>8.1f}" if base else f"{'n/a':>13} {'':>8}"
            self.stdout.write(
                f"{kind:<18} {len(values):>4} {p50:>8.1f} {p95:>8.1f} {p99:>8.1f}"
                f" {capped[kind]:>7}   {base_text}"
            )
        self.stdout.write(
            f"capped: searches with more matches than the {WINDOW:,} they count and rank."
        )

    # --- import -----------------------------------------------------------------------------

    def _import(self, rng: random.Random, n: int) -> None:
        from django.contrib.contenttypes.models import ContentType

        from apps.changes.import_formats import parse_json
        from apps.changes.imports import changes_import
        from apps.checklists.models import ChecklistItem
        from apps.core.models import AuditEntry
        from apps.search.models import SearchEntry

        owners = list(
            User.objects.filter(username__startswith="bench").values_list("username", flat=True)
        )
        admin = User.objects.create(username=f"bench-admin-{rng.randint(0, 10**9)}")
        user_set_role(actor=None, user=admin, role=Role.ADMIN)
        records = [
            {
                **synthetic.change_fields(rng, i),
                "project": f"bench-{rng.choice(PACKAGES)}",
                "owner": rng.choice(owners),
            }
            for i in range(n)
        ]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "changes.json"
            path.write_text(json.dumps(records))
            del records  # an import starts from the file, as the command and the admin page do
            size = path.stat().st_size
            started = time.perf_counter()
            parsed = parse_json(path.read_text())
            read = time.perf_counter() - started
            created = changes_import(actor=admin, records=parsed)
            elapsed = time.perf_counter() - started
        self.stdout.write(
            f"\nImported {len(created):,} changes from a {size / 1e6:.0f} MB JSON file in "
            f"{elapsed:.1f} s ({read:.1f} s reading it, the rest checking and writing, one "
            f"transaction): {len(created) / elapsed:,.0f} changes/s"
        )
        # Everything filing a change leaves, for every imported change.
        ids = [c.pk for c in created]
        first, last = min(ids), max(ids)
        audited = AuditEntry.objects.filter(
            action="create",
            content_type=ContentType.objects.get_for_model(Change),
            actor=admin,
        ).count()
        items = ChecklistItem.objects.filter(change__gte=first, change__lte=last).count()
        indexed = SearchEntry.objects.filter(pk__gte=first, pk__lte=last).count()
        self.stdout.write(
            f"  with {audited:,} audit entries, {items:,} checklist items, "
            f"{indexed:,} search entries"
        )
