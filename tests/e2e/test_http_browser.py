"""An HTTP measurement in a browser: per-side and per-endpoint results and their charts."""

import pytest
from playwright.sync_api import Page, expect

from apps.measurements.execution import execute
from apps.measurements.models import Measurement

from ..measurements.conftest import environment  # noqa: F401
from ..measurements.test_http_execution import file_change, http_profile, sample_project  # noqa: F401
from .test_browser import log_in

pytestmark = pytest.mark.browser


def test_an_http_measurement_shows_endpoints_verdicts_the_cache_warning_and_charts(
    page: Page,
    engineer,
    sample_project,  # noqa: F811
    environment,  # noqa: F811
):
    project, _shas = sample_project
    http_profile(project, environment)
    change = file_change(engineer, project, "main", "cached")
    log_in(page, engineer)
    page.goto(change.get_absolute_url())
    page.get_by_role("button", name="Measure", exact=True).click()
    expect(page.locator("progress")).to_be_visible()
    execute(measurement_id=Measurement.objects.get().pk, worker="browser-test@host")

    section = page.locator("section.measurement")
    hits = section.locator(
        "tr", has=page.get_by_role("rowheader", name="cache hit ratio", exact=True)
    )
    expect(hits).to_contain_text("improved", timeout=30_000)
    warning = section.locator(".cache-warning").first
    expect(warning).to_contain_text("from cache, before 0 %: the latency")
    expect(section.locator("table.http-endpoints")).to_have_count(2)
    expect(section.locator("table.http-endpoints").first).to_contain_text("GET /cached")
    expect(section.locator('svg[aria-label^="Latency percentiles"] rect')).to_have_count(6)
    expect(section.locator('svg[aria-label^="RSS over requests"] polyline')).to_have_count(2)
    expect(section).to_contain_text("generator lag p99")
    expect(section.locator("details.http-blocks")).to_contain_text("GET /items answered 200")
