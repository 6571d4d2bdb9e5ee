"""Every action on the change page, in a real browser, moves every region it affects without a
reload: the badge, the release panel and ship button, the notices and the measurements section.
The measurement's progress is said once per stage from a status region outside the card that
polls, and the keyboard stays on the card's Cancel button while the card refreshes. A change
waiting for a sync says when no worker took it, as the project page does."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from apps.measurements.models import Measurement, MeasurementStatus

from ..checklists.conftest import fix, repo_project, upstream  # noqa: F401
from ..checklists.test_checklist import finished_measurement, items
from ..factories import change_between_branches, project_not_synced
from ..measurements.conftest import demo_change, demo_project, environment, profile  # noqa: F401
from .test_browser import log_in
from .test_live_browser import IMPROVED, mark_page, same_page, shot

pytestmark = pytest.mark.browser

# Counts every change under the status region: each one would be read out again.
COUNT_ANNOUNCEMENTS = """
window.__announced = 0;
new MutationObserver((records) => { window.__announced += records.length; })
  .observe(document.getElementById("measurement-status"),
           {childList: true, characterData: true, subtree: true});
"""


def announced(page: Page) -> int:
    return page.evaluate("window.__announced")


def polls(page: Page, measurement: Measurement, count: int) -> None:
    """Wait for `count` answers to the card's poll."""
    for _ in range(count):
        with page.expect_response(lambda r: f"/measurements/{measurement.pk}/?" in r.url):
            pass


def test_every_action_moves_the_whole_page_and_shipping_takes_measure_away(
    page: Page,
    admin,
    fix,  # noqa: F811
):
    finished_measurement(fix, results=[IMPROVED])
    lint, tests, *_middle, last, _tag = items(fix)
    log_in(page, admin)
    page.goto(fix.get_absolute_url())
    badge, release = page.locator("#change-status"), page.locator("#release")
    status = page.locator("#measurement-status")
    mark_page(page)

    # Measure, then cancel: the badge, the summary and the announcement follow each.
    page.get_by_role("button", name="Measure", exact=True).click()
    expect(badge).to_have_text("Measuring")
    expect(status).to_have_text("Measurement queued: waiting for a worker.")
    measurement = Measurement.objects.filter(status=MeasurementStatus.QUEUED).get()
    page.locator(f"#measurement-{measurement.pk}-cancel").click()
    expect(page.locator(f"#measurement-{measurement.pk}")).to_contain_text("Cancelled after")
    expect(status).to_have_text("Measurement cancelled.")
    expect(badge).not_to_have_text("Measuring")

    # Tick, skip, reopen and verify, each in place.
    page.locator(f"#item-{tests.pk}").get_by_role("button", name="Done").click()
    expect(page.locator(f"#item-{tests.pk}")).to_contain_text("done by ada")
    expect(release).not_to_contain_text(f"“{tests.title}” is neither")
    page.get_by_label(f"Reason to skip {last.title}").fill("not this time")
    page.locator(f"#item-{last.pk}-skip").click()
    expect(page.locator(f"#item-{last.pk}")).to_contain_text("skipped by ada")
    expect(release).not_to_contain_text(f"“{last.title}” is neither")
    page.locator(f"#item-{last.pk}-state").click()  # Reopen
    expect(page.locator(f"#item-{last.pk}").get_by_role("button", name="Done")).to_be_visible()
    expect(release).to_contain_text(f"“{last.title}” is neither")
    lint.argv, lint.kind = ["ruff", "check", "."], "verify"
    lint.save(update_fields=["argv", "kind"])
    page.reload()  # the command is an admin's edit elsewhere; the page learns it on load
    mark_page(page)
    page.locator(f"#item-{lint.pk}-verify").click()
    expect(page.locator(f"#item-{lint.pk}")).to_contain_text("A worker is verifying it")
    expect(page.locator("#checklist-poll")).to_have_attribute("hx-trigger", "every 2s")

    # Blockers left: an admin overrides; shipping closes the change everywhere at once.
    expect(release).to_contain_text("Cannot tag the release yet")
    expect(page.locator("#measure-button")).to_be_visible()
    release.get_by_label("Override reason (admins; audited)").fill("hotfix night")
    release.get_by_role("button", name="Override and tag the release").click()
    expect(badge).to_have_text("Shipped")
    expect(page.locator("#release-summary")).to_contain_text("as tag")
    expect(release.get_by_role("button", name="Roll back…")).to_be_visible()
    expect(page.locator("#measurements")).to_be_visible()
    expect(page.locator("#measure-button")).to_have_count(0)
    expect(page.locator("#measurements form")).to_have_count(0)
    assert same_page(page), "every action moved the page without a reload"
    shot(page, "10-overridden-no-measure")


def test_tagging_the_release_takes_the_measure_form_away(
    page: Page,
    reviewer,
    fix,  # noqa: F811
):
    from apps.checklists.ticks import checklist_item_tick

    finished_measurement(fix, results=[IMPROVED])
    for item in items(fix)[:-1]:
        checklist_item_tick(actor=reviewer, item=item, state="done", version=item.version)
    log_in(page, reviewer)
    page.goto(fix.get_absolute_url())
    mark_page(page)
    expect(page.locator("#measure-button")).to_be_visible()
    page.locator("#release").get_by_role("button", name="Tag the release").click()
    expect(page.locator("#change-status")).to_have_text("Shipped")
    expect(page.locator("#measure-button")).to_have_count(0)
    # The section itself stays, with the measurement that judged the change.
    expect(page.locator("#measurements .verdict-improved").first).to_be_visible()
    assert same_page(page)


def test_progress_is_said_once_per_stage_and_the_keyboard_stays_on_cancel(
    page: Page,
    engineer,
    demo_change,  # noqa: F811
    profile,  # noqa: F811
):
    log_in(page, engineer)
    page.goto(demo_change.get_absolute_url())
    status = page.locator("#measurement-status")
    expect(status).to_have_attribute("role", "status")
    expect(status).to_have_text("")
    mark_page(page)
    page.get_by_role("button", name="Measure", exact=True).click()
    expect(status).to_have_text("Measurement queued: waiting for a worker.")
    measurement = Measurement.objects.get()
    card = page.locator(f"#measurement-{measurement.pk}")
    # The region sits outside the card that the poll replaces.
    expect(card.locator("#measurement-status")).to_have_count(0)
    cancel = page.locator(f"#measurement-{measurement.pk}-cancel")
    cancel.focus()
    page.evaluate(COUNT_ANNOUNCEMENTS)

    polls(page, measurement, 3)
    expect(cancel).to_be_focused()
    assert announced(page) == 0, "the same sentence is not said again on every poll"

    # A worker starts: one new sentence; the next runs of the same side say nothing new.
    Measurement.objects.filter(pk=measurement.pk).update(
        status=MeasurementStatus.RUNNING, phase="run 1 (before)", runs_planned=10
    )
    expect(status).to_have_text("Measurement running: measuring the before side.")
    changes = announced(page)
    assert changes > 0
    Measurement.objects.filter(pk=measurement.pk).update(phase="run 2 (before)", runs_done=1)
    expect(card).to_contain_text("1 of 10 runs")
    polls(page, measurement, 2)
    assert announced(page) == changes, "a run of the same side is not news"
    expect(cancel).to_be_focused()
    shot(page, "11-running-focus-on-cancel")

    # Cancelled from the keyboard: said once, the card stops polling.
    page.keyboard.press("Enter")
    expect(status).to_have_text("Measurement cancelled.")
    expect(card).to_contain_text("Cancelled after 1 of 10 runs")
    expect(page.locator("#change-status")).not_to_have_text("Measuring")
    assert same_page(page)


def test_a_change_waiting_for_a_sync_says_no_worker_took_it(page: Page, admin, engineer, tmp_path):
    from apps.projects.models import JobKind, RepositoryJob
    from apps.projects.tasks import sync_project

    project = project_not_synced(admin, tmp_path / "upstream")
    change = change_between_branches(engineer, project)
    # Its sync was queued an hour ago and no worker has taken it since.
    RepositoryJob.objects.filter(project=project, kind=JobKind.SYNC).update(
        updated=timezone.now() - timedelta(hours=1)
    )
    log_in(page, engineer)
    page.goto(project.get_absolute_url())
    expect(page.locator(".queue-warning")).to_contain_text("No worker has taken this for 1")
    page.goto(change.get_absolute_url())
    record = page.locator("#change-record")
    expect(record).to_contain_text("Waiting for a worker to sync")
    warning = record.locator(".queue-warning")
    expect(warning).to_contain_text("No worker has taken this for 1")
    expect(warning).to_contain_text("hour")
    expect(warning.get_by_role("link", name="workers")).to_be_visible()
    shot(page, "12-sync-no-worker")
    mark_page(page)

    sync_project(project.pk)

    expect(page.locator("#change-git")).to_contain_text("Commits 2", timeout=15_000)
    expect(record).not_to_contain_text("Waiting for a worker")
    expect(page.locator(".queue-warning")).to_have_count(0)
    assert same_page(page)


def test_measure_after_keeps_the_keyboard_on_the_card_and_flips_the_badge(
    page: Page,
    engineer,
    demo_change,  # noqa: F811
    profile,  # noqa: F811
):
    from apps.changes.models import ChangeStatus
    from apps.measurements.models import MeasurementKind, Run, RunStatus, Side

    # Live staging, as a worker leaves it after the before snapshot.
    waiting = Measurement.objects.create(
        change=demo_change,
        profile=profile,
        kind=MeasurementKind.STAGING,
        status=MeasurementStatus.WAITING,
        phase="before snapshot taken: measure after once the fix is deployed",
        base_sha=demo_change.base_sha,
        head_sha=demo_change.head_sha,
        runs_planned=2,
        runs_done=2,
    )
    for sequence in range(2):
        Run.objects.create(
            measurement=waiting, sequence=sequence, side=Side.BEFORE, status=RunStatus.DONE
        )
    log_in(page, engineer)
    page.goto(demo_change.get_absolute_url())
    status = page.locator("#measurement-status")
    expect(status).to_have_text(
        "Measurement waiting: before snapshot taken: measure after once the fix is deployed."
    )
    expect(page.locator("#change-status")).to_have_text("Draft")
    mark_page(page)
    after = page.get_by_role("button", name="Measure after")
    after.focus()
    page.keyboard.press("Enter")
    expect(status).to_have_text("Measurement queued: waiting for a worker.")
    expect(page.locator("#change-status")).to_have_text("Measuring")
    # The button is gone with the step it took; the keyboard lands on the card's Cancel.
    expect(after).to_have_count(0)
    expect(page.locator(f"#measurement-{waiting.pk}-cancel")).to_be_focused()
    expect(page.locator(f"#measurement-{waiting.pk} progress")).to_be_visible()
    assert Measurement.objects.get(pk=waiting.pk).status == MeasurementStatus.QUEUED
    assert demo_change.__class__.objects.get(pk=demo_change.pk).status == ChangeStatus.MEASURING
    assert same_page(page)
    shot(page, "13-measure-after")
