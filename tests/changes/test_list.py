"""The change list: the latest verdict per change, filters and pages that return the right rows
from an index, and a page's cost that does not grow with the number of changes."""

import importlib
import itertools
import re
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts.roles import Role
from apps.changes import selectors
from apps.changes.models import Change, ChangeStatus
from apps.measurements.models import (
    Measurement,
    MeasurementKind,
    MeasurementStatus,
    Profile,
    Side,
)
from apps.measurements.reports import measurement_finish
from apps.projects.models import Environment

from ..factories import ChangeFactory, ProjectFactory, UserFactory, measurement_with_runs

MINUS = "\u2212"
ROW = re.compile(r"<tr>\s*<td class=\"mono\"><a href=\"[^\"]+\">FIX-(\d+)</a>.*?</tr>", re.S)


def rows(page: str) -> dict[int, str]:
    """FIX number -> the row's text (tags removed), in the order shown."""
    found = {}
    for match in ROW.finditer(page):
        found[int(match.group(1))] = " ".join(re.sub(r"<[^>]+>", " ", match.group(0)).split())
    return found


def shown(client, url: str) -> list[int]:
    response = client.get(url)
    assert response.status_code == 200
    return list(rows(response.content.decode()))


@pytest.fixture
def profile(project):
    environment = Environment.objects.create(name="staging-list")
    return Profile.objects.create(
        project=project, name="bench", environment=environment, argv=["true"]
    )


def finished_measurement(change, profile, *, rss_after: int, wall_after: float) -> Measurement:
    """A finished measurement: 10 runs a side, these values after (100 MB and 1 s before)."""

    def values(i, side):
        rss, wall = (100_000_000, 1.0) if side == Side.BEFORE else (rss_after, wall_after)
        return {"peak_rss_bytes": rss + i * 1000, "wall_seconds": wall + i * 0.001}

    measurement = measurement_with_runs(change, profile, values)
    measurement_finish(measurement=measurement)
    return measurement


def test_each_row_shows_the_latest_verdict_and_its_gain(
    as_user, viewer, engineer, project, profile
):
    measured = ChangeFactory(owner=engineer, project=project, expected_result="peak RSS -20 %")
    unmeasured = ChangeFactory(owner=engineer, project=project)
    finished_measurement(measured, profile, rss_after=80_000_000, wall_after=1.0)

    listed = rows(as_user(viewer).get("/changes/").content.decode())
    assert f"improved peak RSS {MINUS}20.0 %" in listed[measured.pk]
    assert "not measured" in listed[unmeasured.pk]
    assert "improved" not in listed[unmeasured.pk]

    # The next measurement is the latest: a gating regression is what the list says, with
    # the metric that regressed, whatever improved beside it.
    finished_measurement(measured, profile, rss_after=80_000_000, wall_after=1.5)
    listed = rows(as_user(viewer).get("/changes/").content.decode())
    assert re.search(r"regressed wall time \+49\.\d %", listed[measured.pk]), listed[measured.pk]
    measured.refresh_from_db()
    assert measured.latest_verdict["measurement"] == measured.measurements.first().pk


@pytest.fixture
def many(project, engineer, other_engineer):
    """37 changes over two projects, two owners and three statuses, in filing order."""
    other_project = ProjectFactory(name="Reports", slug="reports")
    statuses = [ChangeStatus.DRAFT, ChangeStatus.READY, ChangeStatus.SHIPPED]
    made = []
    for i in range(37):
        made.append(
            ChangeFactory(
                project=(project, other_project)[i % 2],
                owner=(engineer, other_engineer)[i % 3 == 0],
                status=statuses[i % 5 % 3],
            )
        )
    return made


FILTERS = {
    "project": lambda c: c.project.slug,
    "owner": lambda c: c.owner.username,
    "status": lambda c: c.status,
}


def test_every_filter_combination_and_every_page_returns_the_right_rows(
    as_user, viewer, many, monkeypatch
):
    # Small pages and a small cap, so a few dozen changes reach deep pages and a capped count.
    monkeypatch.setattr(selectors, "PAGE_SIZE", 4)
    monkeypatch.setattr(selectors, "COUNT_CAP", 10)
    client = as_user(viewer)
    values = {name: sorted({get(c) for c in many}) for name, get in FILTERS.items()}
    combinations = 0
    for size in range(len(FILTERS) + 1):
        for names in itertools.combinations(FILTERS, size):
            for chosen in itertools.product(*(values[n] for n in names)):
                query = dict(zip(names, chosen, strict=True))
                expected = [
                    c.pk
                    for c in sorted(many, key=lambda c: -c.pk)
                    if all(FILTERS[n](c) == v for n, v in query.items())
                ]
                pages = [expected[i : i + 4] for i in range(0, len(expected), 4)] or [[]]
                for number, page in enumerate(pages, start=1):
                    url = "/changes/?" + "&".join(
                        [*(f"{n}={v}" for n, v in query.items()), f"page={number}"]
                    )
                    assert shown(client, url) == page, url
                combinations += 1
    assert combinations == 1 + 2 + 2 + 3 + 2 * 2 + 2 * 3 + 2 * 3 + 2 * 2 * 3


def test_a_deep_page_is_reachable_by_its_link_when_the_count_is_capped(
    as_user, viewer, many, monkeypatch
):
    monkeypatch.setattr(selectors, "PAGE_SIZE", 4)
    monkeypatch.setattr(selectors, "COUNT_CAP", 10)
    client = as_user(viewer)
    newest_first = sorted(c.pk for c in many)[::-1]

    first = client.get("/changes/").content.decode()
    assert re.search(r"10\+ changes · page 1\s*</span>", first), "capped: no last page"
    assert f'href="?page=2&amp;before={newest_first[3]}" rel="next"' in first

    seventh = client.get("/changes/?page=7").content.decode()
    assert list(rows(seventh)) == newest_first[24:28]
    assert "28+ changes · page 7" in seventh
    assert 'href="?page=6" rel="prev"' in seventh
    assert f'href="?page=8&amp;before={newest_first[27]}" rel="next"' in seventh
    assert 'href="?page=1"' in seventh

    last = client.get("/changes/?page=10").content.decode()
    assert list(rows(last)) == newest_first[36:]
    assert 'rel="next"' not in last
    # Past the end of a list longer than the cap: counted then, and its last page shown.
    past = client.get("/changes/?page=50").content.decode()
    assert list(rows(past)) == newest_first[36:]
    assert "37 changes · page 10 of 10" in past


NEXT = re.compile(r'href="\?([^"]*)" rel="next"')


def test_older_links_seek_from_the_last_row_shown_instead_of_walking_past_every_row(
    as_user, viewer, many, project, monkeypatch
):
    monkeypatch.setattr(selectors, "PAGE_SIZE", 4)
    monkeypatch.setattr(selectors, "COUNT_CAP", 10)
    client = as_user(viewer)
    newest_first = sorted(c.pk for c in many)[::-1]
    url, seen, number = "/changes/", [], 1
    while True:
        with CaptureQueriesContext(connection) as ctx:
            page = client.get(url).content.decode()
        shown_here = list(rows(page))
        assert shown_here == shown(client, f"/changes/?page={number}"), url
        if number > 1:
            assert not any("OFFSET" in q["sql"] for q in ctx.captured_queries), url
        seen += shown_here
        link = NEXT.search(page)
        if not link:
            break
        url, number = "/changes/?" + link.group(1).replace("&amp;", "&"), number + 1
    assert seen == newest_first
    assert number == 10

    # A change filed meanwhile does not shift the next page under the reader.
    third = "/changes/?" + NEXT.search(client.get("/changes/?page=2").content.decode()).group(1)
    ChangeFactory(project=project)
    assert shown(client, third.replace("&amp;", "&")) == newest_first[8:12]
    # Filters stay in the link; a boundary naming no row of the list any more, or no number
    # at all, walks to the page as a bare number does.
    filtered = client.get(f"/changes/?project={project.slug}").content.decode()
    assert f"project={project.slug}&amp;page=2&amp;before=" in filtered
    assert shown(client, "/changes/?page=3&before=1") == shown(client, "/changes/?page=3")
    assert shown(client, "/changes/?page=3&before=x") == shown(client, "/changes/?page=3")


def test_a_page_past_the_end_of_a_counted_list_shows_the_last_page(as_user, viewer, many):
    client = as_user(viewer)
    assert shown(client, "/changes/?page=999") == sorted(c.pk for c in many)[::-1]
    assert "37 changes · page 1 of 1" in client.get("/changes/?page=x").content.decode()


def test_a_page_costs_the_same_queries_at_any_size(
    as_user, viewer, project, profile, django_assert_max_num_queries
):
    client = as_user(viewer)
    urls = ("/changes/", "/changes/?page=2", f"/changes/?project={project.slug}&status=draft")
    ChangeFactory.create_batch(3, project=project)
    few = {}
    for url in urls:
        with CaptureQueriesContext(connection) as ctx:
            client.get(url)
        few[url] = len(ctx.captured_queries)
    # Many rows with different owners, projects and verdicts: nothing is read per row.
    for change in ChangeFactory.create_batch(60, project=project):
        finished_measurement(change, profile, rss_after=90_000_000, wall_after=1.0)
    ChangeFactory.create_batch(10)
    for url in urls:
        with django_assert_max_num_queries(few[url]):
            assert len(rows(client.get(url).content.decode())) > 0


def test_the_owner_filter_lists_who_may_own_changes_from_the_users_table(
    as_user, viewer, engineer, project
):
    former = UserFactory(username="fred", role=Role.ENGINEER)
    ChangeFactory(owner=former, project=project, title="Fred's fix")
    ChangeFactory(owner=engineer, project=project, title="Erin's fix")
    newcomer = UserFactory(username="nina", role=Role.REVIEWER)
    # Fred moved to a reading role: he owns changes but may own no new one.
    from apps.accounts.services import user_set_role

    user_set_role(actor=None, user=former, role=Role.VIEWER)

    with CaptureQueriesContext(connection) as ctx:
        page = as_user(viewer).get("/changes/").content.decode()
    owner_select = re.search(r'<select name="owner".*?</select>', page, re.S).group(0)
    assert ">erin<" in owner_select
    assert ">nina<" in owner_select, "an engineer or above with no change yet"
    assert ">fred<" not in owner_select
    assert ">vera<" not in owner_select, "viewers own no changes"
    # The choices come from the users table (and its groups) alone; no query lists distinct
    # owners of changes.
    from_users = [q["sql"] for q in ctx.captured_queries if 'FROM "accounts_user"' in q["sql"]]
    assert any("DISTINCT" in sql and "username" in sql for sql in from_users)
    assert not any("changes_change" in sql for sql in from_users), from_users
    assert not any(
        "DISTINCT" in q["sql"] and "changes_change" in q["sql"] for q in ctx.captured_queries
    )

    # A link to a former owner's changes still works, and the select says whose they are.
    page = as_user(viewer).get("/changes/?owner=fred").content.decode()
    assert next(iter(rows(page).values())).split(" ", 1)[1].startswith("Fred&#x27;s fix")
    assert "Erin's fix" not in page
    assert '<option value="fred" selected>fred</option>' in page
    assert newcomer.username in page


INDEX_OF = {
    (): "change_newest_idx",  # SQLite; PostgreSQL walks its primary key
    ("project",): "change_project_idx",
    ("owner",): "change_owner_idx",
    ("status",): "change_status_idx",
    ("project", "owner"): "change_project_owner_idx",
    ("project", "status"): "change_project_status_idx",
    ("owner", "status"): "change_owner_status_idx",
    ("project", "owner", "status"): "change_proj_owner_status_idx",
}


def test_every_filter_combination_has_an_index_that_lists_it_newest_first(many):
    with connection.cursor() as cursor:
        indexes = connection.introspection.get_constraints(cursor, Change._meta.db_table)
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE changes_change")
            # On a table this small a sequential scan and a sort would win: forbid them.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("SET LOCAL enable_sort = off")
    column = {"project": "project_id", "owner": "owner_id", "status": "status"}
    sample = many[0]
    values = {"project": sample.project_id, "owner": sample.owner_id, "status": sample.status}
    for names, name in INDEX_OF.items():
        # Equality on every filtered column, then the id descending: no sort, and a deep page
        # is a walk along the index.
        assert indexes[name]["columns"] == [*(column[n] for n in names), "id"], name
        assert indexes[name]["orders"][-1] == "DESC", name
        ids = (
            Change.objects.filter(**{n: values[n] for n in names})
            .order_by("-pk")
            .values_list("pk", flat=True)[100:151]
        )
        plan = ids.explain()
        assert "TEMP B-TREE" not in plan, (names, plan)  # SQLite: no sort
        assert "Sort" not in plan, (names, plan)  # PostgreSQL: no sort
        if connection.vendor == "sqlite":
            # Its planner, without statistics, takes the index matching the most columns.
            assert f"COVERING INDEX {name}" in plan, (names, plan)
        else:
            # PostgreSQL weighs this tiny table's statistics; at scale the benchmark shows it.
            assert "Index" in plan, (names, plan)


def test_the_backfill_fills_the_latest_verdict_from_the_latest_finished_measurement(
    engineer, project, profile
):
    measured, unmeasured = ChangeFactory.create_batch(2, owner=engineer, project=project)

    finished = itertools.count()

    def done(change, results, kind=MeasurementKind.COMPARE, status=MeasurementStatus.DONE):
        return Measurement.objects.create(
            finished_at=timezone.now() + timedelta(minutes=next(finished)),
            change=change,
            profile=profile,
            kind=kind,
            status=status,
            base_sha="a" * 40,
            head_sha="b" * 40,
            results=results,
        )

    rss = {"metric": "peak_rss", "lower_is_better": True, "change_pct": -30.0}
    done(measured, [rss | {"verdict": "regressed"}])
    latest = done(measured, [rss | {"verdict": "improved"}])
    done(measured, [], status=MeasurementStatus.FAILED)
    Change.objects.update(latest_verdict={})

    migration = importlib.import_module(
        "apps.measurements.migrations.0009_backfill_change_latest_verdict"
    )
    migration.backfill(django_apps, None)

    measured.refresh_from_db()
    unmeasured.refresh_from_db()
    assert measured.latest_verdict == {
        "verdict": "improved",
        "metric": "peak_rss",
        "label": "peak RSS",
        "change_pct": -30.0,
        "measurement": latest.pk,
    }
    assert unmeasured.latest_verdict == {}
