"""A real Chromium against the live server, with every console error and CSP violation kept.

Debian's chromium is used as installed: nothing here downloads a browser.
"""

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Failures show up within seconds on a local server; Playwright's 30 s default only slows them.
TIMEOUT_MS = 10_000
expect.set_options(timeout=TIMEOUT_MS)

# The page reports each violation through a binding, which survives navigations and is not
# subject to the page's CSP, unlike anything the page itself could run.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolation(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`
    + ` at ${e.sourceFile || e.documentURI}:${e.lineNumber}`);
});
"""


@dataclass
class BrowserProblems:
    """What went wrong in the browser during one test: console errors, uncaught exceptions and
    CSP violations. Any left at the end of the test fail it."""

    items: list[str] = field(default_factory=list)

    def add(self, kind: str, text: str) -> None:
        self.items.append(f"{kind}: {text}")

    def take(self) -> list[str]:
        """Hand over the problems so far; a test that provokes one on purpose claims it here."""
        taken, self.items = self.items, []
        return taken


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"browser tests need Debian's chromium at {CHROMIUM}: apt-get install chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    with pytest.MonkeyPatch.context() as mp:
        # Playwright's sync API keeps an asyncio loop marked running on this thread, so Django's
        # guard takes every ORM call from a test or fixture for async code. None is: the live
        # server answers the browser on its own thread.
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            yield browser
            browser.close()


@pytest.fixture
def browser_problems() -> BrowserProblems:
    return BrowserProblems()


@pytest.fixture
def page(chromium, live_server, browser_problems) -> Iterator[Page]:
    """A fresh context (no cookies) per test, so that no login leaks from one test to the next."""
    context: BrowserContext = chromium.new_context(base_url=live_server.url)
    context.set_default_timeout(TIMEOUT_MS)
    context.expose_function("__cspViolation", lambda text: browser_problems.add("csp", text))
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    # Errors only: Chromium's warnings change wording and number from one release to the next.
    page.on(
        "console",
        lambda msg: (
            msg.type == "error"
            and browser_problems.add("console error", f"{msg.text} ({msg.location['url']})")
        ),
    )
    page.on("pageerror", lambda exc: browser_problems.add("uncaught", str(exc)))
    yield page
    context.close()
    problems = browser_problems.take()
    assert problems == [], "the browser reported problems:\n" + "\n".join(problems)
