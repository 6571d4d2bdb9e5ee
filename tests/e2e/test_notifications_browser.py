"""Notifications in a real browser: the account menu, the choices grid, a change's deliveries."""

import re

import pytest
from playwright.sync_api import Page, expect

from apps.accounts.roles import Role
from apps.notifications.models import Delivery, DeliveryStatus, Endpoint, EventKind
from apps.notifications.selectors import wanted
from apps.notifications.services import endpoint_save

from ..factories import ChangeFactory, UserFactory
from .test_browser import SCREENSHOTS, log_in

pytestmark = pytest.mark.browser


def test_choose_notifications_and_see_a_changes_deliveries(page: Page, engineer, project):
    admin = UserFactory(username="ada", role=Role.ADMIN)
    hook = Endpoint(name="perf-alerts", kind="slack", url="http://127.0.0.1:9/slack", secret="")
    endpoint_save(actor=admin, endpoint=hook)
    change = ChangeFactory(owner=engineer, project=project)
    for status, error, channel in [
        (DeliveryStatus.SENT, "", "email"),
        (
            DeliveryStatus.FAILED,
            "the receiver answered 500 Internal Server Error (after 5 attempts)",
            "slack",
        ),
    ]:
        Delivery.objects.create(
            dedupe_key=f"test|{channel}",
            event=EventKind.MEASUREMENT_FINISHED,
            change=change,
            recipient=engineer,
            recipient_name=engineer.username,
            channel=channel,
            endpoint=hook if channel == "slack" else None,
            subject=f"{change.number}: measurement done",
            text="Measurement 1 ended: done.",
            status=status,
            attempts=5 if error else 1,
            error=error,
        )

    log_in(page, engineer)
    page.locator("summary", has_text="erin").click()
    page.get_by_role("link", name="Notifications").click()
    expect(page).to_have_url(re.compile(r"/account/notifications/$"))
    email_box = page.get_by_label("A measurement of my change finished by Email")
    expect(email_box).to_be_checked()
    slack_box = page.get_by_label(
        "A measurement of my change found a regression by Slack: perf-alerts"
    )
    expect(slack_box).not_to_be_checked()
    slack_box.check()
    page.screenshot(path=SCREENSHOTS / "notification-preferences.png", full_page=True)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Notification choices saved.")
    assert [d.key for d in wanted(engineer, EventKind.REGRESSION_FOUND)] == [
        "email",
        f"endpoint-{hook.pk}",
    ]

    page.goto(change.get_absolute_url())
    section = page.locator("table.deliveries")
    expect(section.locator("tbody tr")).to_have_count(2)
    expect(section).to_contain_text("Slack: perf-alerts")
    expect(section).to_contain_text("500 Internal Server Error (after 5 attempts)")
    page.locator("#deliveries").scroll_into_view_if_needed()
    page.screenshot(path=SCREENSHOTS / "change-deliveries.png", full_page=True)
