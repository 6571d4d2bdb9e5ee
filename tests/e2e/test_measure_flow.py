"""The heart of the product in a browser: measure a change, read the verdict, tick the list."""

import pytest
from playwright.sync_api import Page, expect

from apps.core.audit import audit_history
from apps.measurements.execution import execute
from apps.measurements.models import Measurement

from ..measurements.conftest import demo_change, demo_project, environment, profile  # noqa: F401
from .test_browser import log_in

pytestmark = pytest.mark.browser


def test_measure_watch_the_verdict_arrive_and_tick_the_checklist(
    page: Page,
    engineer,
    demo_change,  # noqa: F811
    profile,  # noqa: F811
):
    log_in(page, engineer)
    page.goto(demo_change.get_absolute_url())
    page.evaluate("window.__samePage = true")
    page.get_by_role("button", name="Measure", exact=True).click()
    expect(page.locator("progress")).to_be_visible()
    expect(page.get_by_text("0 of 10 runs")).to_be_visible()

    # A worker's work, done here so the test needs no broker round trip.
    execute(measurement_id=Measurement.objects.get().pk, worker="browser-test@host")

    # The section polls itself: the verdict replaces the progress bar without a reload.
    section = page.locator("section.measurement")
    expect(section.locator(".verdict-improved").first).to_be_visible(timeout=15_000)
    expect(section.locator("progress")).to_have_count(0)
    expect(section.locator("svg polyline")).to_have_count(2)
    expect(section).to_contain_text("met")

    lint = page.locator("li.check-item", has_text="Run linting")
    page.evaluate("window.__samePage = true")
    lint.get_by_role("button", name="Done").click()
    expect(lint).to_contain_text("done by erin")
    assert page.evaluate("window.__samePage") is True, "ticked in place, not by a reload"


def test_the_demo_is_measured_and_ships_without_an_override(page: Page, engineer, reviewer):
    """A fresh install's demo, as a new team first meets it: FIX-1 measures as a real memory
    fix, and the release gate lets it through on the evidence, with no override."""
    from apps.changes.models import Change
    from apps.measurements.demo import seed_demo
    from apps.projects.models import Project
    from apps.projects.tasks import sync_project

    seed_demo(owner=engineer)
    sync_project(Project.objects.get(slug="demo").pk)
    change = Change.objects.get(project__slug="demo")
    change.refresh_from_db()
    assert change.head_sha, "the demo's revisions resolve once the project is synced"

    log_in(page, reviewer)
    page.goto(change.get_absolute_url())
    checklist = page.locator("#checklist")
    expect(checklist).to_contain_text("Not measured: measure the change")
    expect(checklist.get_by_role("button", name="Tag the release")).to_have_count(0)
    page.get_by_role("button", name="Measure", exact=True).click()
    # Measuring answers in place: the card is there once the request was made.
    expect(page.locator("progress")).to_be_visible()
    execute(measurement_id=Measurement.objects.get().pk, worker="browser-test@host")

    section = page.locator("section.measurement")
    expect(section.locator(".verdict-improved").first).to_be_visible(timeout=30_000)
    peak = section.locator("tr", has=page.get_by_role("rowheader", name="peak RSS"))
    expect(peak).to_contain_text("improved")
    expect(peak).to_contain_text("\u2212")  # a signed change, with a true minus
    expect(peak).to_contain_text("MiB")
    expect(section.locator("tr.reason-row").first).to_contain_text("peak RSS fell \u2212")
    expect(section).to_contain_text("met")

    page.reload()
    # The demo's environment names no config files: the reviewer confirms the staging
    # config, which needs the measurement of the current revisions just made.
    for title in (
        "Run linting",
        "Run unit tests",
        "Run one integration check",
        "Verify staging config",
    ):
        item = page.locator("li.check-item", has_text=title)
        item.get_by_role("button", name="Done").click()
        expect(item).to_contain_text("done by rita")
    page.reload()
    expect(page.locator(".blockers")).to_have_count(0)
    page.get_by_role("button", name="Tag the release").click()
    # In place: the header and the release panel say so, no flash message after a reload.
    expect(page.locator("#change-status")).to_have_text("Shipped")
    expect(page.locator("#release-summary")).to_contain_text(f"fixledger/{change.number}")
    change.refresh_from_db()
    assert change.status == "shipped"
    assert not [e for e in audit_history(change) if e.action == "override"]
