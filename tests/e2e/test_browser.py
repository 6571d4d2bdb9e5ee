"""The web UI in a real browser: filing a change, form errors, htmx filtering, escaping, CSP.

Every test also fails if the browser logged an error or a CSP violation (see conftest.py), which is
what shows that pico and htmx work under the strict policy.
"""

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from apps.changes.models import Change, ChangeStatus
from apps.changes.services import change_create

from ..factories import PASSWORD, ChangeFactory, ProjectFactory

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results"
XSS_TITLE = "<script>window.pwned=1</script>"


def log_in(page: Page, user) -> None:
    """Through the real login form, landing on the change list."""
    page.goto("/login/")
    page.get_by_label("Username").fill(user.get_username())
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/changes/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Changes")


def record_value(page: Page, term: str):
    """The <dd> that follows the <dt> `term` on a change's detail page."""
    return page.locator("dl.record > dt", has_text=re.compile(f"^{re.escape(term)}$")).locator(
        "xpath=following-sibling::dd[1]"
    )


def result_rows(page: Page):
    return page.locator("#change-results tbody tr")


def field(page: Page, label: str):
    """A form field by its label, which may carry the required marker '*'."""
    return page.get_by_label(re.compile(rf"^{re.escape(label)}( \*)?$"))


def fill_change_form(page: Page, **values: str) -> None:
    for label, value in values.items():
        field(page, label).fill(value)


def test_file_a_change_and_find_it_in_the_list(page: Page, engineer, project):
    ProjectFactory(name="Search", slug="search")  # so that picking the project matters
    log_in(page, engineer)

    page.get_by_role("button", name="File a change").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("File a change")
    field(page, "Project").select_option(label="Billing API")
    fill_change_form(
        page,
        **{
            "Title": "Bound the invoice cache",
            "Reason": "The invoice cache keeps every PDF.\nRSS grows 40 MB an hour.",
            "Expected result": "peak RSS -20 %",
            "Command": 'python -m bench.invoices --requests 10000 --label "a & b"',
            "Rollback note": "Revert the commit; the cache is unbounded again.",
            "Before revision": "main",
            "After revision": "fix/invoice-cache",
            "Files touched": "billing/cache.py\nbilling/settings.py",
            "Tags": "Memory, cache",
        },
    )
    page.get_by_role("button", name="File change").click()

    change = Change.objects.get()
    expect(page).to_have_url(re.compile(rf"/changes/FIX-{change.pk}/$"))
    expect(page.locator(".flash[role=status]")).to_have_text(f"FIX-{change.pk} filed.")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"FIX-{change.pk} Bound the invoice cache"
    )
    expect(page.locator("hgroup p")).to_contain_text("Billing API · owned by erin")
    expect(page.locator("hgroup .badge")).to_have_text("Draft")
    # linebreaksbr must keep the reason's two lines apart.
    expect(record_value(page, "Reason")).to_have_text(
        "The invoice cache keeps every PDF.\nRSS grows 40 MB an hour.", use_inner_text=True
    )
    expect(record_value(page, "Expected result")).to_have_text("peak RSS -20 %")
    expect(record_value(page, "Command").locator("pre code")).to_have_text(
        'python -m bench.invoices --requests 10000 --label "a & b"'
    )
    expect(record_value(page, "Rollback note")).to_have_text(
        "Revert the commit; the cache is unbounded again."
    )
    expect(record_value(page, "Revisions")).to_have_text("main → fix/invoice-cache")
    expect(record_value(page, "Files touched").locator("li")).to_have_text(
        ["billing/cache.py", "billing/settings.py"]
    )
    expect(record_value(page, "Tags").locator(".badge")).to_have_text(["memory", "cache"])
    expect(page.get_by_role("button", name="Edit")).to_be_visible()

    # The stylesheets and htmx really loaded under the CSP, not just their tags.
    assert page.evaluate("typeof window.htmx") == "object"
    assert page.evaluate(
        "getComputedStyle(document.documentElement).getPropertyValue('--pico-primary')"
    ).strip()
    expect(page.locator("hgroup .badge")).to_have_css("border-radius", "16px")
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "change-detail.png", full_page=True)

    page.get_by_role("link", name="Changes", exact=True).click()
    expect(page).to_have_url(re.compile(r"/changes/$"))
    expect(result_rows(page)).to_have_count(1)
    expect(result_rows(page).first.locator("td")).to_have_text(
        [
            f"FIX-{change.pk}",
            "Bound the invoice cache",
            "Billing API",
            "erin",
            "Draft",
            "not measured",
            re.compile("ago$"),
        ]
    )
    result_rows(page).first.get_by_role("link", name="Bound the invoice cache").click()
    expect(page).to_have_url(re.compile(rf"/changes/FIX-{change.pk}/$"))


def test_invalid_change_shows_errors_and_files_nothing(page: Page, engineer, project):
    log_in(page, engineer)
    page.goto("/changes/new/")
    fill_change_form(
        page,
        **{
            "Title": "",
            "Reason": "The cache grows without bound.",
            "Expected result": "peak RSS -20 %",
            "Files touched": "app/cache.py\n/etc/passwd",
        },
    )
    page.get_by_role("button", name="File change").click()

    expect(page).to_have_url(re.compile(r"/changes/new/$"))
    expect(page.locator("#id_title_error")).to_have_text("This field is required.")
    expect(page.locator("#id_files_touched_error")).to_have_text(
        "/etc/passwd: paths are relative to the repository root."
    )
    expect(page.get_by_role("alert")).to_have_count(2)
    # What the engineer typed survives the round trip.
    expect(field(page, "Reason")).to_have_value("The cache grows without bound.")
    expect(field(page, "Files touched")).to_have_value("app/cache.py\n/etc/passwd")
    assert not Change.objects.exists()

    fill_change_form(page, **{"Title": "Bound the cache", "Files touched": "app/cache.py"})
    page.get_by_role("button", name="File change").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Bound the cache")
    assert list(Change.objects.values_list("title", "files_touched")) == [
        ("Bound the cache", ["app/cache.py"])
    ]


def test_filters_update_the_table_in_place_and_the_url(
    page: Page, engineer, other_engineer, project
):
    ChangeFactory(
        title="Bound the response cache", reason="RSS grows.", owner=engineer, project=project
    )
    ChangeFactory(
        title="Stream the CSV export",
        reason="The export is built in memory.",
        status=ChangeStatus.SHIPPED,
        owner=engineer,
        project=project,
    )
    ChangeFactory(
        title="Drop N+1 queries on invoices",
        reason="One query per line item.",
        status=ChangeStatus.READY,
        owner=engineer,
        project=project,
    )
    log_in(page, engineer)
    expect(result_rows(page)).to_have_count(3)
    # A full page load would start a new window object and lose this.
    page.evaluate("window.__sameDocument = true")

    page.locator("select[name=status]").select_option("ready")
    expect(result_rows(page)).to_have_count(1)
    expect(result_rows(page)).to_contain_text("Drop N+1 queries on invoices")
    expect(page).to_have_url(re.compile(r"[?&]status=ready(&|$)"))
    assert page.evaluate("window.__sameDocument") is True
    # The partial, not a whole page, went into #change-results.
    expect(page.get_by_role("heading", level=1)).to_have_count(1)
    expect(page.locator("form.filters")).to_have_count(1)

    page.locator("select[name=owner]").select_option("ed")
    expect(page.locator("#change-results")).to_contain_text("No changes match.")

    # The pushed URL is a real address: loading it afresh filters on the server.
    page.reload()
    assert page.evaluate("window.__sameDocument") is None
    expect(page.locator("select[name=status]")).to_have_value("ready")
    expect(page.locator("select[name=owner]")).to_have_value("ed")
    expect(page.locator("#change-results")).to_contain_text("No changes match.")

    # Words are searched in the search index, with the same filters.
    page.get_by_role("searchbox", name="Words").fill("csv")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"/search/\?(.*&)?q=csv(&|$)"))


def test_markup_in_text_fields_is_shown_as_text(page: Page, engineer, project):
    change = change_create(
        actor=engineer,
        project=project,
        title=XSS_TITLE,
        reason='<img src=x onerror="window.pwned=2">',
        expected_result="<b>faster</b>",
        command="</code></pre><script>window.pwned=3</script>",
        rollback_note="<a href='javascript:window.pwned=4'>undo</a>",
        files_touched=["app/<i>cache</i>.py"],
    )
    log_in(page, engineer)

    page.goto(change.get_absolute_url())
    expect(page.get_by_role("heading", level=1)).to_have_text(f"FIX-{change.pk} {XSS_TITLE}")
    expect(page).to_have_title(f"FIX-{change.pk} {XSS_TITLE} · fixledger")
    expect(record_value(page, "Reason")).to_have_text('<img src=x onerror="window.pwned=2">')
    expect(record_value(page, "Expected result")).to_have_text("<b>faster</b>")
    expect(record_value(page, "Command")).to_have_text(
        "</code></pre><script>window.pwned=3</script>"
    )
    expect(record_value(page, "Rollback note")).to_have_text(
        "<a href='javascript:window.pwned=4'>undo</a>"
    )
    expect(record_value(page, "Files touched")).to_have_text("app/<i>cache</i>.py")
    expect(page.locator("main").locator("script, img, b, i, dd a")).to_have_count(0)
    assert page.evaluate("typeof window.pwned") == "undefined"

    page.get_by_role("link", name="History").click()
    expect(page.locator("#history td.after").first).to_be_visible()
    expect(page.locator("#history")).to_contain_text(XSS_TITLE)
    expect(page.locator("#history").locator("script, img, b, i")).to_have_count(0)

    # htmx runs <script> tags it swaps in, so its partial must escape too.
    page.get_by_role("link", name="Changes", exact=True).click()
    page.locator("select[name=status]").select_option("draft")
    expect(page).to_have_url(re.compile(r"status=draft"))
    expect(result_rows(page)).to_have_count(1)
    expect(result_rows(page).locator("td").nth(1)).to_have_text(XSS_TITLE)
    expect(page.locator("#change-results script")).to_have_count(0)
    assert page.evaluate("typeof window.pwned") == "undefined"


def test_csp_violations_are_caught(page: Page, browser_problems):
    """The check every other test relies on: the CSP is enforced and its violations reach us."""
    page.goto("/login/")
    page.evaluate(
        """() => {
          const s = document.createElement("script");
          s.textContent = "window.inlineRan = true";
          document.head.append(s);
        }"""
    )
    assert page.evaluate("typeof window.inlineRan") == "undefined"
    # Both channels report asynchronously.
    for _ in range(40):
        if len(browser_problems.items) >= 2:
            break
        page.wait_for_timeout(50)
    problems = browser_problems.take()
    assert any(p.startswith("csp: script-src-elem blocked inline") for p in problems), problems
    # Older Chromium words this "Refused to execute inline script ...".
    assert any(
        p.startswith("console error:") and "Content Security Policy" in p for p in problems
    ), problems
