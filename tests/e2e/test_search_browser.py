"""Searching past fixes in a real browser: live results, the URL, paths, facets, errors, pages.

Changes are filed through the service (or indexed in bulk), so search sees them as it would in
use. Every test also fails on a console error or CSP violation (see conftest.py).
"""

import re

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import Page, expect

from apps.changes.services import change_create
from apps.search.index import index_changes

from ..factories import ChangeFactory, ProjectFactory
from .test_browser import log_in

pytestmark = pytest.mark.browser


def file_change(actor, project, title, reason, files=("app/settings.py",), tags=("memory",)):
    return change_create(
        actor=actor,
        project=project,
        title=title,
        reason=reason,
        expected_result="peak RSS -20 %",
        files_touched=list(files),
        tags=list(tags),
    )


@pytest.fixture
def sign_in(page: Page, live_server):
    """sign_in(user): a session cookie straight from Django; the login form has its own tests."""

    def sign(user) -> None:
        client = Client()
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME]
        page.context.add_cookies(
            [{"name": cookie.key, "value": cookie.value, "url": live_server.url}]
        )

    return sign


def search_box(page: Page):
    return page.get_by_role("searchbox", name="Search", exact=True)


def hits(page: Page):
    return page.locator("#search-results article.hit")


def hit_titles(page: Page):
    return hits(page).locator("header > a")


def count_line(page: Page):
    return page.locator("#search-results section > p.muted").first


def mark_document(page: Page) -> None:
    """A full page load starts a new window object and loses this."""
    page.evaluate("window.__sameDocument = true")


def same_document(page: Page) -> bool:
    return page.evaluate("window.__sameDocument === true")


def test_type_in_the_nav_then_refine_as_you_type(page: Page, engineer, project):
    title_hit = file_change(
        engineer, project, "Bound the response cache", "RSS grows 40 MB an hour."
    )
    reason_hit = file_change(
        engineer, project, "Stream the CSV export", "The export cache holds every row."
    )
    file_change(engineer, project, "Drop N+1 queries on invoices", "One query per line item.")
    log_in(page, engineer)

    nav_box = page.get_by_role("searchbox", name="Search past fixes")
    nav_box.fill("cache")
    nav_box.press("Enter")
    expect(page).to_have_url(re.compile(r"/search/\?q=cache$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Search past fixes")
    expect(search_box(page)).to_have_value("cache")
    # The word in a title ranks above the word only in a reason.
    expect(hit_titles(page)).to_have_text(
        [f"{title_hit.number} {title_hit.title}", f"{reason_hit.number} {reason_hit.title}"]
    )
    expect(count_line(page)).to_have_text("2 changes · sorted by relevance")
    for i in range(2):
        expect(hits(page).nth(i).locator(".snippet mark").first).to_have_text(
            re.compile(r"^cache$", re.I)
        )

    mark_document(page)
    search_box(page).press("End")
    search_box(page).press_sequentially(" rows")
    expect(hit_titles(page)).to_have_text([f"{reason_hit.number} {reason_hit.title}"])
    expect(count_line(page)).to_have_text("1 change · sorted by relevance")
    # Both words are marked (the stemmer matches "rows" to "row").
    expect(hits(page).first.locator(".snippet mark")).to_have_text(
        [re.compile(r"^cache$", re.I), re.compile(r"^rows?$", re.I)]
    )
    expect(page).to_have_url(re.compile(r"[?&]q=cache(%20|\+)rows(&|$)"))
    assert same_document(page), "results were swapped in place, not by a page load"
    expect(page.get_by_role("heading", level=1)).to_have_count(1)
    expect(page.locator("#search-form")).to_have_count(1)


def test_the_nav_box_on_the_search_page_leaves_the_results_alone(
    page: Page, sign_in, engineer, project
):
    """The page has two search boxes; only its own one searches as you type."""
    file_change(engineer, project, "Bound the invoice cache", "RSS grows.")
    # Fake timers: the typing delay is passed by moving the clock, not by waiting.
    page.clock.install()
    sign_in(engineer)
    page.goto("/search/?q=invoice")
    expect(hits(page)).to_have_count(1)
    page.evaluate(
        "window.__searches = 0;"
        " document.addEventListener('htmx:beforeRequest', () => window.__searches++)"
    )

    page.get_by_role("searchbox", name="Search past fixes").fill("csv")
    page.clock.run_for(1000)
    assert page.evaluate("window.__searches") == 0, "typing in the nav box searched again"

    search_box(page).fill("cache")
    page.clock.run_for(1000)
    assert page.evaluate("window.__searches") == 1
    expect(page).to_have_url(re.compile(r"[?&]q=cache(&|$)"))


def test_the_url_holds_the_query_for_reload_new_page_and_back(
    page: Page, sign_in, engineer, project
):
    cache_fix = file_change(engineer, project, "Bound the response cache", "RSS grows.")
    csv_fix = file_change(engineer, project, "Stream the CSV export", "Built in memory.")
    sign_in(engineer)
    page.goto("/search/")
    expect(hits(page)).to_have_count(2)
    mark_document(page)

    search_box(page).fill("cache")
    expect(hit_titles(page)).to_have_text([f"{cache_fix.number} {cache_fix.title}"])
    expect(page).to_have_url(re.compile(r"[?&]q=cache(&|$)"))
    search_box(page).fill("csv")
    expect(hit_titles(page)).to_have_text([f"{csv_fix.number} {csv_fix.title}"])
    expect(page).to_have_url(re.compile(r"[?&]q=csv(&|$)"))
    assert same_document(page)

    page.reload()
    assert not same_document(page), "a real reload"
    expect(search_box(page)).to_have_value("csv")
    expect(hit_titles(page)).to_have_text([f"{csv_fix.number} {csv_fix.title}"])

    other = page.context.new_page()
    other.goto(page.url)
    expect(search_box(other)).to_have_value("csv")
    expect(hit_titles(other)).to_have_text([f"{csv_fix.number} {csv_fix.title}"])
    other.close()

    page.go_back()
    expect(page).to_have_url(re.compile(r"[?&]q=cache(&|$)"))
    expect(hit_titles(page)).to_have_text([f"{cache_fix.number} {cache_fix.title}"])
    expect(search_box(page)).to_have_value("cache")
    page.go_back()
    expect(page).to_have_url(re.compile(r"/search/$"))
    expect(hits(page)).to_have_count(2)
    expect(search_box(page)).to_have_value("")


def test_a_file_path_finds_the_change_that_touched_it(page: Page, sign_in, engineer, project):
    cache_fix = file_change(
        engineer, project, "Bound the invoice cache", "RSS grows.", files=["apps/billing/cache.py"]
    )
    invoice_fix = file_change(
        engineer,
        project,
        "Batch the invoice queries",
        "One query per line.",
        files=["apps/billing/invoices.py"],
    )
    # "cache" in its title and a cache module of its own, but not cache.py nor apps/billing/.
    file_change(
        engineer,
        project,
        "Cache the report totals",
        "Totals are summed per request.",
        files=["apps/reports/cache_py.txt", "apps/reports/billing/views.py"],
    )
    sign_in(engineer)
    page.goto("/search/")
    expect(hits(page)).to_have_count(3)

    search_box(page).fill("cache.py")
    expect(page).to_have_url(re.compile(r"[?&]q=cache\.py(&|$)"))
    expect(hit_titles(page)).to_have_text([f"{cache_fix.number} {cache_fix.title}"])
    expect(hits(page).first).to_contain_text("apps/billing/cache.py")

    search_box(page).fill("apps/billing/")
    expect(page).to_have_url(re.compile(r"[?&]q=apps%2Fbilling%2F(&|$)"))
    expect(hit_titles(page)).to_have_text(
        [
            f"{invoice_fix.number} {invoice_fix.title}",
            f"{cache_fix.number} {cache_fix.title}",
        ]
    )
    expect(count_line(page)).to_have_text("2 changes · sorted by date")


def test_a_facet_narrows_the_results_in_place(page: Page, sign_in, engineer, project):
    reports = ProjectFactory(name="Reports", slug="reports")
    file_change(engineer, project, "Bound the invoice cache", "RSS grows.", tags=["memory"])
    file_change(engineer, project, "Cache the tax rates", "A query per line.", tags=["latency"])
    totals = file_change(
        engineer, reports, "Cache the report totals", "Summed per request.", tags=["latency"]
    )
    file_change(engineer, reports, "Cache the report logo", "Read per page.", tags=["memory"])
    sign_in(engineer)
    page.goto("/search/?q=cache")
    expect(count_line(page)).to_have_text("4 changes · sorted by relevance")
    facets = page.get_by_role("complementary", name="Facets")
    expect(facets.locator("li", has_text="Reports")).to_have_text("Reports 2")
    mark_document(page)

    facets.get_by_role("link", name="Reports").click()
    expect(count_line(page)).to_have_text("2 changes · sorted by relevance")
    expect(page).to_have_url(re.compile(r"[?&]project=reports(&|$)"))
    expect(facets.locator("li", has_text="latency")).to_have_text("latency 1")
    # The form follows, so that the next words are searched within the facet.
    expect(page.locator("#search-form select[name=project]")).to_have_value("reports")

    facets.get_by_role("link", name="latency").click()
    expect(count_line(page)).to_have_text("1 change · sorted by relevance")
    expect(hit_titles(page)).to_have_text([f"{totals.number} {totals.title}"])
    expect(page).to_have_url(re.compile(r"[?&]tag=latency(&|$)"))
    assert same_document(page)

    # Without both facets, "cache report" would find the report logo too.
    search_box(page).press("End")
    search_box(page).press_sequentially(" report")
    expect(page).to_have_url(re.compile(r"[?&]q=cache(%20|\+)report(&|$)"))
    expect(page).to_have_url(re.compile(r"[?&]project=reports(&|$)"))
    expect(page).to_have_url(re.compile(r"[?&]tag=latency(&|$)"))
    expect(hit_titles(page)).to_have_text([f"{totals.number} {totals.title}"])
    expect(count_line(page)).to_have_text("1 change · sorted by relevance")
    assert same_document(page)

    page.reload()
    expect(hit_titles(page)).to_have_text([f"{totals.number} {totals.title}"])


def test_an_unclosed_quote_is_explained(page: Page, sign_in, engineer, project, browser_problems):
    file_change(engineer, project, "Bound the invoice cache", "RSS grows.")
    sign_in(engineer)
    page.goto("/search/?q=invoice")
    expect(hits(page)).to_have_count(1)

    with page.expect_response(lambda r: "q=%22cache&" in r.url) as answer:
        search_box(page).fill('"cache')
    assert answer.value.status < 500
    alert = page.locator("#search-results").get_by_role("alert")
    expect(alert).to_contain_text('A quote is not closed: phrases go between two ".')
    expect(hits(page)).to_have_count(0)

    search_box(page).fill('"cache"')
    expect(alert).to_have_count(0)
    expect(hits(page)).to_have_count(1)
    assert browser_problems.take() == []

    # Opened as an address, the page answers 400 with the same message; the browser logs the
    # status itself, and nothing else.
    with page.expect_console_message(lambda m: "400" in m.text):
        response = page.goto('/search/?q="cache')
    assert response.status == 400
    expect(page.get_by_role("heading", level=1)).to_have_text("Search past fixes")
    expect(page.get_by_role("alert")).to_contain_text("A quote is not closed")
    expect(search_box(page)).to_have_value('"cache')
    problems = browser_problems.take()
    assert len(problems) == 1, problems
    assert problems[0].startswith("console error: Failed to load resource: "), problems
    assert "status of 400" in problems[0], problems


def file_many(engineer, project, n: int):
    """n changes matching "cache", indexed in one go as a bulk import would."""
    changes = ChangeFactory.create_batch(
        n, owner=engineer, project=project, reason="The LRU cache keeps every body."
    )
    index_changes([c.pk for c in changes])
    return changes


def test_the_next_page_link_shows_the_rest(page: Page, sign_in, engineer, project):
    changes = file_many(engineer, project, 21)
    sign_in(engineer)
    page.goto("/search/?q=cache")
    expect(count_line(page)).to_have_text("21 changes · sorted by relevance")
    expect(hits(page)).to_have_count(20)
    pager = page.get_by_role("navigation", name="Pages")
    expect(pager).to_contain_text("page 1 of 2")
    expect(pager.get_by_role("link", name="← Previous")).to_have_count(0)
    first_page = hit_titles(page).all_inner_texts()

    pager.get_by_role("link", name="Next →").click()
    expect(pager).to_contain_text("page 2 of 2")
    expect(hits(page)).to_have_count(1)
    expect(page).to_have_url(re.compile(r"\?q=cache&page=2$"))
    expect(search_box(page)).to_have_value("cache")
    expect(pager.get_by_role("link", name="Next →")).to_have_count(0)
    assert sorted(first_page + hit_titles(page).all_inner_texts()) == sorted(
        f"{c.number} {c.title}" for c in changes
    )

    pager.get_by_role("link", name="← Previous").click()
    expect(pager).to_contain_text("page 1 of 2")
    expect(hit_titles(page)).to_have_text(first_page)


def test_the_next_page_link_stays_in_place(page: Page, sign_in, engineer, project):
    file_many(engineer, project, 21)
    sign_in(engineer)
    page.goto("/search/?q=cache")
    pager = page.get_by_role("navigation", name="Pages")
    expect(pager).to_contain_text("page 1 of 2")
    mark_document(page)

    pager.get_by_role("link", name="Next →").click()
    expect(pager).to_contain_text("page 2 of 2")
    expect(page).to_have_url(re.compile(r"[?&]page=2(&|$)"))
    assert same_document(page), "the next page was loaded, not swapped in place"
