"""The change page follows every action without a reload, in a real browser: ticking the last
item brings *Tag the release*, shipping flips the header, a verdict arriving flips it too, and
keyboard focus stays where the person was working. Screenshots of each state are kept in
test-results/ to be looked at."""

import pytest
from playwright.sync_api import Page, expect

from apps.checklists.ticks import checklist_item_tick
from apps.measurements.execution import execute
from apps.measurements.models import Measurement

from ..checklists.conftest import fix, repo_project, upstream  # noqa: F401
from ..checklists.test_checklist import finished_measurement, items
from ..factories import change_between_branches, project_not_synced
from ..measurements.conftest import demo_change, demo_project, environment, profile  # noqa: F401
from .test_browser import SCREENSHOTS, log_in

pytestmark = pytest.mark.browser


def mark_page(page: Page) -> None:
    """A flag that a reload would wipe: checked at the end, it proves nothing reloaded."""
    page.evaluate("window.__samePage = true")


def same_page(page: Page) -> bool:
    return page.evaluate("window.__samePage === true")


def focused_id(page: Page) -> str:
    return page.evaluate("document.activeElement && document.activeElement.id")


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    # caret="initial": hiding the caret leaves an empty style attribute on every input, which
    # htmx then copies onto the swapped-in input, and the page's CSP refuses that.
    page.screenshot(path=SCREENSHOTS / f"live-{name}.png", full_page=True, caret="initial")


# A verdict as a worker leaves it, with everything the page shows of it.
IMPROVED = {
    "metric": "peak_rss",
    "unit": "bytes",
    "lower_is_better": True,
    "role": "gating",
    "verdict": "improved",
    "median_before": 100_000_000,
    "median_after": 60_000_000,
    "change_pct": -40.0,
    "ci_low_pct": -45.0,
    "ci_high_pct": -35.0,
    "p_value": 0.0001,
    "noise": 70_000,
    "resolution": 80_000,
    "reason": "peak RSS fell 40 %",
}


def test_the_last_tick_brings_tag_the_release_and_shipping_flips_the_header(
    page: Page,
    reviewer,
    fix,  # noqa: F811
):
    finished_measurement(fix, results=[IMPROVED])
    *others, last, _tag = items(fix)
    for item in others:
        checklist_item_tick(actor=reviewer, item=item, state="done", version=item.version)

    log_in(page, reviewer)
    page.goto(fix.get_absolute_url())
    release = page.locator("#release")
    expect(release).to_contain_text(f"“{last.title}” is neither done nor skipped.")
    expect(release.get_by_role("button", name="Tag the release")).to_have_count(0)
    shot(page, "1-one-item-open")
    mark_page(page)

    row = page.locator(f"#item-{last.pk}")
    row.get_by_role("button", name="Done").click()
    expect(row).to_contain_text("done by rita")
    expect(release.get_by_role("button", name="Tag the release")).to_be_visible()
    expect(release).not_to_contain_text("neither done nor skipped")
    expect(page.locator("#release-summary")).to_have_text("Ready to tag the release.")
    # The keyboard stays on the row: the button that undoes the tick has the focus.
    assert focused_id(page) == f"item-{last.pk}-state"
    expect(page.locator(f"#item-{last.pk}-state")).to_have_text("Reopen")
    expect(page.locator(f"#item-{last.pk}-state")).to_be_focused()
    shot(page, "2-ready-to-tag")

    release.get_by_role("button", name="Tag the release").click()
    expect(page.locator("#change-status")).to_have_text("Shipped")
    expect(page.locator("#release-summary")).to_contain_text(f"as tag fixledger/{fix.number}")
    expect(page.locator("article.notes h3")).to_contain_text(fix.number)
    expect(page.locator("#checklist-items").get_by_role("button")).to_have_count(0)
    expect(release.get_by_role("button", name="Roll back…")).to_be_visible()
    assert same_page(page), "everything moved without a reload"
    shot(page, "3-shipped-with-notes")

    # Rolling back asks first, on a page that works without a script.
    release.get_by_role("button", name="Roll back…").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Roll back {fix.number}")
    shot(page, "4-rollback-confirm")
    page.get_by_label(f"I want to file the change that rolls back {fix.number}").check()
    page.get_by_role("button", name="File the rollback change").click()
    expect(page.locator("hgroup")).to_contain_text(f"rolls back {fix.number}")
    page.locator("hgroup").get_by_role("link", name=fix.number).click()
    expect(page.locator("hgroup")).to_contain_text("rolled back by FIX-")


def test_skipping_keeps_the_keyboard_on_the_row(page: Page, reviewer, fix):  # noqa: F811
    first = items(fix)[0]
    log_in(page, reviewer)
    page.goto(fix.get_absolute_url())
    mark_page(page)
    reason = page.get_by_label(f"Reason to skip {first.title}")
    reason.fill("linted in CI")
    reason.press("Tab")  # the keyboard path: from the reason to its Skip button
    expect(page.locator(f"#item-{first.pk}-skip")).to_be_focused()
    page.keyboard.press("Enter")
    row = page.locator(f"#item-{first.pk}")
    expect(row).to_contain_text("skipped by rita")
    expect(row).to_contain_text("linted in CI")
    # Skip is gone from the row; the focus moves to what replaced it, not the top of the page.
    expect(page.locator(f"#item-{first.pk}-state")).to_be_focused()
    page.keyboard.press("Enter")  # Reopen, from the keyboard
    expect(row.get_by_role("button", name="Done")).to_be_visible()
    expect(page.locator(f"#item-{first.pk}-state")).to_be_focused()
    assert same_page(page)


def test_a_verdict_arriving_flips_the_header_badge(
    page: Page,
    engineer,
    demo_change,  # noqa: F811
    profile,  # noqa: F811
):
    log_in(page, engineer)
    page.goto(demo_change.get_absolute_url())
    badge = page.locator("#change-status")
    expect(badge).to_have_text("Draft")
    expect(badge).to_have_attribute("aria-live", "polite")
    mark_page(page)
    page.get_by_role("button", name="Measure", exact=True).click()
    expect(page.locator("progress")).to_be_visible()
    expect(badge).to_have_text("Measuring")
    expect(page.locator("#release-summary")).to_contain_text("between this change and its release")
    expect(page.locator("#measure-button")).to_be_focused()
    shot(page, "5-measuring")

    # The service that finishes a measurement, as a worker runs it.
    execute(measurement_id=Measurement.objects.get().pk, worker="browser-test@host")

    expect(page.locator("section.measurement .verdict-improved").first).to_be_visible(
        timeout=30_000
    )
    expect(badge).to_have_text("Ready")
    release = page.locator("#release")
    expect(release).not_to_contain_text("still running")
    assert same_page(page), "the verdict and the badge arrived without a reload"
    shot(page, "6-measured")

    page.get_by_role("link", name="History").click()
    expect(page.locator("#history")).to_contain_text("Peak RSS")
    shot(page, "7-history")


def test_a_sync_resolving_the_revisions_fills_the_page(page: Page, admin, engineer, tmp_path):
    from apps.projects.models import JobStatus, RepositoryJob
    from apps.projects.tasks import sync_project

    project = project_not_synced(admin, tmp_path / "upstream")
    # As if its first sync had failed: this host has no clone, the change waits for one.
    RepositoryJob.objects.filter(project=project).update(status=JobStatus.FAILED)
    change = change_between_branches(engineer, project)
    log_in(page, engineer)
    page.goto(change.get_absolute_url())
    expect(page.locator("#change-record")).to_contain_text("Waiting for a worker to sync")
    expect(page.locator("#release")).to_have_count(1)
    # Four open items, not measured, no rollback note, no after commit to tag.
    expect(page.locator("#release-summary")).to_contain_text("7 things stand between")
    mark_page(page)

    sync_project(project.pk)

    expect(page.locator("#change-git")).to_contain_text("Commits 2", timeout=15_000)
    expect(page.locator("#change-record")).not_to_contain_text("Waiting for a worker")
    expect(page.locator("#change-record")).to_contain_text("app/cache.py")
    # The after revision resolved: one thing less stands between the change and its release.
    expect(page.locator("#release-summary")).to_contain_text("6 things stand between")
    assert same_page(page)


def test_files_that_disagree_with_git_and_a_readable_edit(
    page: Page,
    engineer,
    repo_project,  # noqa: F811
):
    from apps.changes.services import change_create, change_update

    change = change_create(
        actor=engineer,
        project=repo_project,
        title="Bound the response cache",
        reason="It never evicts.",
        expected_result="peak RSS -30 %",
        base_revision="main",
        head_revision="fix/cache",
        files_touched=["app/cache.py", "deploy/cache.conf"],
        tags=["memory", "cache"],
    )
    change_update(
        actor=engineer, change=change, tags=["memory", "leak"], expected_result="peak RSS -40 %"
    )
    log_in(page, engineer)
    page.goto(change.get_absolute_url())
    warning = page.locator(".files-check")
    expect(warning).to_contain_text("These files disagree with the git diff")
    expect(warning).to_contain_text("deploy/cache.conf")
    expect(warning).to_contain_text("app/helpers.py")
    shot(page, "8-files-disagree")

    page.get_by_role("link", name="History").click()
    update = page.locator("article.audit", has_text="updated").or_(
        page.locator("article.audit", has_text="update")
    )
    row = update.first.locator("tr", has=page.get_by_role("rowheader", name="Tags"))
    expect(row.locator("td.before li.removed")).to_have_text("removed: cache")
    expect(row.locator("td.after li.added")).to_have_text("added: leak")
    expect(update.first.get_by_role("rowheader", name="Expected result")).to_be_visible()
    shot(page, "9-history-edit")


def test_a_verification_refreshes_the_list_without_losing_what_is_typed(
    page: Page,
    reviewer,
    fix,  # noqa: F811
):
    from django.utils import timezone

    from apps.checklists.models import ChecklistItem, VerificationStatus

    lint, tests, *_rest = items(fix)
    # A worker has yet to take the verification of "Run linting": the list asks every 2 s.
    ChecklistItem.objects.filter(pk=lint.pk).update(
        argv=["ruff", "check", "."], verification=VerificationStatus.QUEUED
    )
    log_in(page, reviewer)
    page.goto(fix.get_absolute_url())
    expect(page.locator(f"#item-{lint.pk}")).to_contain_text("A worker is verifying it (queued)")
    mark_page(page)
    reason = page.get_by_label(f"Reason to skip {tests.title}")
    reason.fill("covered by the integration check")
    with page.expect_response(lambda r: f"/checklists/changes/{fix.pk}/" in r.url):
        pass  # at least one refresh while the text sits in the box
    expect(reason).to_have_value("covered by the integration check")
    expect(reason).to_be_focused()

    # The worker's verdict arrives: the row says so and the asking stops.
    ChecklistItem.objects.filter(pk=lint.pk).update(
        verification=VerificationStatus.IDLE,
        state="done",
        actor_name="worker",
        ticked_at=timezone.now(),
    )
    expect(page.locator(f"#item-{lint.pk}")).to_contain_text("done by worker", timeout=6_000)
    expect(page.locator("#checklist-poll")).not_to_have_attribute("hx-trigger", "every 2s")
    expect(reason).to_have_value("covered by the integration check")
    assert same_page(page)
