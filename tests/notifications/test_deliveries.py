"""Each change shows what was sent about it: on its page, in the API, in the admin."""

import pytest

from apps.notifications.models import Delivery, Destination, Endpoint, EventKind
from apps.notifications.services import preferences_set
from tests.factories import ChangeFactory

from .helpers import finished, measured, notify, send_all

pytestmark = pytest.mark.django_db


@pytest.fixture
def told(change, engineer, receiver, webhook, settings, django_capture_on_commit_callbacks):
    """One email sent and one webhook failed about `change`."""
    settings.NOTIFICATION_MAX_ATTEMPTS = 2
    receiver.statuses = [500]
    endpoint, _secret = webhook
    preferences_set(
        actor=engineer,
        user=engineer,
        choices=[(EventKind.MEASUREMENT_FINISHED, Destination("webhook", endpoint), True)],
    )
    notify(finished(measured(change)), django_capture_on_commit_callbacks)
    send_all()
    return change


def test_the_change_page_lists_its_deliveries(as_user, viewer, told):
    html = as_user(viewer).get(told.get_absolute_url()).content.decode()
    section = html[html.index('id="deliveries"') :]
    assert "Notifications <small" in html
    assert "erin" in section and "Email" in section and "webhook receiver" in section
    assert "Sent" in section and "Failed" in section
    assert "answered 500 Internal Server Error: nope (after 2 attempts)" in section
    # Only this change's: another change's page has none.
    other = ChangeFactory(project=told.project)
    assert "Nobody was notified" in as_user(viewer).get(other.get_absolute_url()).content.decode()


def test_the_api_lists_a_changes_deliveries(api_as, viewer, told):
    response = api_as(viewer).get(f"/api/changes/{told.number}/deliveries/")
    assert response.status_code == 200
    rows = response.json()["results"]
    assert sorted((r["channel"], r["status"]) for r in rows) == [
        ("email", "sent"),
        ("webhook", "failed"),
    ]
    failed = next(r for r in rows if r["status"] == "failed")
    assert failed["recipient"] == "erin" and failed["destination"] == "Webhook: webhook receiver"
    assert failed["attempts"] == 2 and "500" in failed["error"]
    # Neither the URL nor the secret of an endpoint shows.
    assert "127.0.0.1" not in response.content.decode()


def test_deliveries_need_a_login_and_a_real_change(client, api_as, viewer, told):
    assert client.get(f"/api/changes/{told.number}/deliveries/").status_code in (401, 403)
    assert api_as(viewer).get("/api/changes/FIX-999999/deliveries/").status_code == 404


def test_an_admin_registers_an_endpoint_and_sees_its_secret_once(as_user, admin, engineer):
    client = as_user(admin)
    response = client.post(
        "/admin/notifications/endpoint/add/",
        {
            "name": "ops",
            "kind": "webhook",
            "url": "https://hooks.example.com/fixledger",
            "active": "on",
        },
        follow=True,
    )
    assert response.status_code == 200
    endpoint = Endpoint.objects.get(name="ops")
    assert len(endpoint.secret) >= 32
    assert endpoint.secret in response.content.decode()
    assert (
        endpoint.secret
        not in client.get(f"/admin/notifications/endpoint/{endpoint.pk}/change/").content.decode()
    )
    # Only http(s), and only admins.
    bad = client.post(
        "/admin/notifications/endpoint/add/",
        {"name": "files", "kind": "webhook", "url": "file:///etc/passwd", "active": "on"},
    )
    assert bad.status_code == 200 and not Endpoint.objects.filter(name="files").exists()
    assert as_user(engineer).get("/admin/notifications/endpoint/add/").status_code == 302


def test_deliveries_are_read_only_in_the_admin(as_user, admin, told):
    client = as_user(admin)
    delivery = Delivery.objects.first()
    assert client.get("/admin/notifications/delivery/").status_code == 200
    page = client.get(f"/admin/notifications/delivery/{delivery.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert client.get("/admin/notifications/delivery/add/").status_code == 403
