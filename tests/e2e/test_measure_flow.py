"""The heart of the product in a browser: measure a change, read the verdict, tick the list."""

import pytest
from playwright.sync_api import Page, expect

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
