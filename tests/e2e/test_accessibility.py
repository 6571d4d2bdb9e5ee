"""Every page, checked by axe-core in a real Chromium: no serious or critical violation.

axe-core is vendored under tests/vendor/ (nothing is fetched at test time) and evaluated by the
test driver, so the page's CSP stays as strict as it is for people.
"""

import json
import math
from pathlib import Path

import pytest
from playwright.sync_api import Page

from apps.changes.services import change_create
from apps.measurements.models import Profile, Side
from apps.measurements.reports import measurement_finish
from apps.projects.models import Environment

from ..checklists.conftest import fix, repo_project, upstream  # noqa: F401
from ..factories import measurement_with_runs
from ..measurements.conftest import demo_change, demo_project, environment, profile  # noqa: F401
from .test_browser import SCREENSHOTS, log_in

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[1] / "vendor" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")
MiB = 1024 * 1024


def axe_violations(page: Page, browser_problems=None) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now."""
    before = len(browser_problems.items) if browser_problems else 0
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text())
    found = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    if browser_problems:
        # axe adds a <style> of its own on some pages, which the page's CSP rightly refuses:
        # the test's doing, not the page's.
        browser_problems.items[before:] = [
            p for p in browser_problems.items[before:] if not _axe_style(p)
        ]
    return [v for v in found if v["impact"] in BLOCKING]


def _axe_style(problem: str) -> bool:
    return "Applying inline style violates" in problem or "style-src-elem blocked inline" in problem


def describe(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"[{v['impact']}] {v['id']}: {v['help']} ({v['helpUrl']})")
        for node in v["nodes"][:8]:
            lines.append(f"    {' '.join(map(str, node['target']))}: {node['html'][:160]}")
            lines.append(f"      {node.get('failureSummary', '').replace(chr(10), ' ')[:300]}")
    return "\n".join(lines)


def check(page: Page, url: str, problems: dict[str, str], browser_problems, *, shot="") -> int:
    response = page.goto(url)
    assert response is not None
    page.wait_for_load_state("networkidle")
    # Folded sections too (every run, per metric charts), which axe would skip as hidden.
    page.evaluate(
        "document.querySelectorAll('main details:not(.dropdown)').forEach(d => d.open = true)"
    )
    violations = axe_violations(page, browser_problems)
    if violations:
        problems[url] = describe(violations)
    if shot:
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"a11y-{shot}.png"), full_page=True)
    return response.status


def sawtooth(seconds: float, start_mib: float, slope_mib: float) -> list[list[float]]:
    points = []
    for i in range(200):
        t = seconds * i / 199
        points.append([round(t, 4), int((start_mib + slope_mib * t + 6 * (t % 0.5)) * MiB)])
    return points


@pytest.fixture
def measured_change(engineer, project):
    """A change with a finished before/after measurement: verdicts, run table and charts."""
    change = change_create(
        actor=engineer,
        project=project,
        title="Bound the invoice cache",
        reason="The invoice cache keeps every PDF; RSS grows 40 MB an hour.",
        expected_result="peak RSS -20 %",
        files_touched=["billing/cache.py"],
        tags=["memory", "cache"],
    )
    staging = Environment.objects.create(name="staging-a11y")
    invoices = Profile.objects.create(
        project=project, name="render 1,000 invoices", environment=staging, argv=["true"]
    )

    def values(i, side):
        rss, slope, wall = (120, 30, 1.4) if side == Side.BEFORE else (95, 2, 1.1)
        wobble = math.sin(i) * 0.6
        return {
            "peak_rss_bytes": int((rss + wobble) * MiB),
            "wall_seconds": wall + wobble / 50,
            "user_seconds": 0.9 + wobble / 80,
            "rss_timeline": sawtooth(wall, rss - 40, slope),
        }

    measurement = measurement_with_runs(change, invoices, values, per_side=8)
    measurement_finish(measurement=measurement)
    return change, measurement


def test_every_page_has_no_serious_or_critical_violation(
    page: Page, browser_problems, admin, engineer, project, measured_change
):
    change, measurement = measured_change
    draft = change_create(
        actor=engineer,
        project=project,
        title="Pool the PDF renderers",
        reason="Each request starts a renderer.",
        expected_result="wall time -30 %",
    )
    problems: dict[str, str] = {}
    check(page, "/login/", problems, browser_problems, shot="login")
    log_in(page, admin)
    pages = [
        ("/changes/", "change-list"),
        (draft.get_absolute_url(), "change-draft"),
        (change.get_absolute_url(), "change-measured"),
        ("/changes/new/", "change-form"),
        (f"/changes/{change.number}/edit/", ""),
        ("/search/?q=cache&tag=memory&sort=date", "search"),
        ("/search/?gain_min=lots", ""),
        ("/projects/", ""),
        (f"/projects/{project.slug}/", "project"),
        ("/projects/new/", ""),
        (f"/projects/{project.slug}/edit/", ""),
        (f"/checklists/templates/{project.slug}/", "checklist-template"),
        (f"/measurements/{measurement.pk}/", "measurement"),
        ("/workers/", ""),
        ("/account/tokens/", ""),
        ("/no-such-page/", ""),
        ("/admin/", "admin"),
        ("/admin/changes/change/", "admin-changes"),
        (f"/admin/changes/change/{change.pk}/change/", "admin-change"),
    ]
    for url, shot in pages:
        status = check(page, url, problems, browser_problems, shot=shot)
        if status >= 400:
            # The browser logs the error status of a page shown on purpose; nothing else.
            assert [p for p in browser_problems.take() if f"status of {status}" not in p] == []
    # The dark scheme has colours of its own: the pages with the most of them, again.
    page.emulate_media(color_scheme="dark")
    dark: dict[str, str] = {}
    for url, shot in [*pages[:6], (f"/measurements/{measurement.pk}/", "measurement")]:
        check(page, url, dark, browser_problems, shot=shot and f"{shot}-dark")
    problems.update({f"{url} (dark scheme)": text for url, text in dark.items()})
    assert not problems, "axe-core found serious or critical violations:\n" + "\n\n".join(
        f"{url}\n{text}" for url, text in problems.items()
    )


def test_axe_reports_what_it_should(page: Page, live_server):
    """The check itself: a page with an unlabelled field and low contrast fails it."""
    page.goto("/login/")
    page.evaluate(
        """() => {
        const input = document.createElement("input");
        document.querySelector("main").append(input);
        const faint = document.createElement("p");
        faint.textContent = "barely there";
        faint.style.color = "#eeeeee";
        document.querySelector("main").append(faint);
    }"""
    )
    ids = {v["id"] for v in axe_violations(page)}
    assert {"label", "color-contrast"} <= ids, json.dumps(sorted(ids))


def test_the_api_docs_load_without_csp_errors_and_lead_back(page: Page, browser_problems, viewer):
    log_in(page, viewer)
    page.goto("/api/docs/")
    # Swagger UI has read the schema and drawn the operations.
    page.locator(".opblock").first.wait_for()
    page.wait_for_load_state("networkidle")
    assert browser_problems.take() == [], "console errors or CSP violations on the API docs"
    assert page.locator('link[rel="icon"]').get_attribute("href").endswith("favicon.svg")
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "api-docs.png"))
    page.get_by_role("link", name="Back to fixledger").click()
    page.wait_for_url("**/changes/")


# A control swapped in fades from the one it replaced: axe would judge a colour half-way.
TRANSITIONS_OVER = """() => document.getAnimations()
  .every((a) => !(a instanceof CSSTransition) || a.playState !== "running")"""


def test_the_newer_pages_and_states_have_no_serious_or_critical_violation(
    page: Page,
    browser_problems,
    admin,
    reviewer,
    fix,  # noqa: F811
    demo_change,  # noqa: F811
    profile,  # noqa: F811
):
    """Notification preferences, a shipped change with its final notes and its history, the
    rollback confirmation, and the change page after in-place swaps (axe after htmx)."""
    from apps.checklists.shipping import change_ship
    from apps.checklists.ticks import checklist_item_tick

    from ..checklists.test_checklist import finished_measurement, items
    from .test_live_browser import IMPROVED

    finished_measurement(fix, results=[IMPROVED])
    for item in items(fix)[:-1]:
        checklist_item_tick(actor=reviewer, item=item, state="done", version=item.version)
    change_ship(actor=reviewer, change=fix)
    problems: dict[str, str] = {}
    log_in(page, admin)
    pages = [
        ("/account/notifications/", "notification-preferences"),
        (fix.get_absolute_url(), "change-shipped-notes"),
        (f"{fix.get_absolute_url()}?tab=history", "change-history"),
        (f"/checklists/changes/{fix.pk}/rollback/", "rollback-confirm"),
    ]
    for url, shot in pages:
        assert check(page, url, problems, browser_problems, shot=shot) == 200
    page.emulate_media(color_scheme="dark")
    dark: dict[str, str] = {}
    for url, shot in pages:
        check(page, url, dark, browser_problems, shot=f"{shot}-dark")
    problems.update({f"{url} (dark scheme)": text for url, text in dark.items()})
    page.emulate_media(color_scheme="light")

    # In place: a tick and a measurement swap regions of the page; axe looks again after each.
    check(page, demo_change.get_absolute_url(), problems, browser_problems)
    first = items(demo_change)[0]
    page.locator(f"#item-{first.pk}").get_by_role("button", name="Done").click()
    page.locator(f"#item-{first.pk}").get_by_text("done by ada").wait_for()
    page.wait_for_function(TRANSITIONS_OVER)
    if violations := axe_violations(page, browser_problems):
        problems["after a tick"] = describe(violations)
    page.get_by_role("button", name="Measure", exact=True).click()
    page.locator("section.measurement progress").wait_for()
    page.locator("#change-status").get_by_text("Measuring").wait_for()
    page.wait_for_function(TRANSITIONS_OVER)
    if violations := axe_violations(page, browser_problems):
        problems["after Measure"] = describe(violations)
    page.screenshot(path=str(SCREENSHOTS / "a11y-change-after-swaps.png"), full_page=True)
    assert not problems, "axe-core found serious or critical violations:\n" + "\n\n".join(
        f"{url}\n{text}" for url, text in problems.items()
    )
