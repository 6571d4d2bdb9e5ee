"""Choosing what one hears: the account page and the API, each for oneself only."""

import pytest
from django.core.exceptions import PermissionDenied

from apps.core.models import AuditEntry
from apps.notifications.models import EventKind, Preference
from apps.notifications.selectors import EMAIL, wanted
from apps.notifications.services import preferences_set

pytestmark = pytest.mark.django_db

URL = "/account/notifications/"
API = "/api/notifications/preferences/"


def test_the_page_shows_the_defaults_and_saves_choices(as_user, engineer, webhook):
    endpoint, _secret = webhook
    client = as_user(engineer)
    page = client.get(URL)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="measurement_finished:email" checked' in html
    assert 'name="change_shipped:email" aria-label' in html  # off by default
    assert f'name="measurement_finished:endpoint-{endpoint.pk}" aria-label' in html
    assert "webhook receiver" in html
    # Turn the webhook on for shipped changes, and email for finished measurements off.
    response = client.post(
        URL,
        {
            f"change_shipped:endpoint-{endpoint.pk}": "on",
            "regression_found:email": "on",
            "ready_for_review:email": "on",
        },
    )
    assert response.status_code == 302
    assert [d.key for d in wanted(engineer, EventKind.CHANGE_SHIPPED)] == [
        f"endpoint-{endpoint.pk}"
    ]
    assert wanted(engineer, EventKind.MEASUREMENT_FINISHED) == []
    assert wanted(engineer, EventKind.REGRESSION_FOUND) == [EMAIL]
    # Only choices unlike the defaults are kept.
    assert Preference.objects.filter(user=engineer).count() == 2
    entry = AuditEntry.objects.filter(object_id=str(engineer.pk), actor=engineer).first()
    assert entry.after == {
        "change_shipped by Webhook: webhook receiver": True,
        "measurement_finished by Email": False,
    }


def test_the_account_menu_links_to_the_page(as_user, viewer):
    assert f'href="{URL}"' in as_user(viewer).get("/account/tokens/").content.decode()


def test_the_page_needs_a_login(client):
    assert client.get(URL).status_code == 302


def test_the_api_reads_and_writes_ones_own_choices(api_as, engineer, viewer, slack):
    api = api_as(engineer)
    body = api.get(API).json()
    assert [d["key"] for d in body["destinations"]] == ["email", f"endpoint-{slack.pk}"]
    assert {"event": "measurement_finished", "destination": "email", "enabled": True} in body[
        "preferences"
    ]
    response = api.patch(
        API,
        {
            "preferences": [
                {
                    "event": "regression_found",
                    "destination": f"endpoint-{slack.pk}",
                    "enabled": True,
                }
            ]
        },
    )
    assert response.status_code == 200, response.content
    assert {
        "event": "regression_found",
        "destination": f"endpoint-{slack.pk}",
        "enabled": True,
    } in response.json()["preferences"]
    assert [d.key for d in wanted(engineer, EventKind.REGRESSION_FOUND)] == [
        "email",
        f"endpoint-{slack.pk}",
    ]
    # Someone else's choices did not move.
    assert wanted(viewer, EventKind.REGRESSION_FOUND) == [EMAIL]


def test_nobody_points_a_webhook_at_a_url_of_their_own(api_as, engineer, webhook):
    api = api_as(engineer)
    for destination in ("http://127.0.0.1:9/steal", "endpoint-999999"):
        response = api.put(
            API,
            {
                "preferences": [
                    {"event": "change_shipped", "destination": destination, "enabled": True}
                ]
            },
        )
        assert response.status_code == 400
        assert "Not a registered destination" in str(response.json())
    response = api.put(API, {"preferences": [], "url": "http://127.0.0.1:9/steal"})
    assert response.status_code == 400
    assert "url" in response.json()
    assert not Preference.objects.exists()


def test_a_deactivated_endpoint_cannot_be_chosen(api_as, admin, engineer, webhook):
    from apps.notifications.services import endpoint_save

    endpoint, _secret = webhook
    endpoint.active = False
    endpoint_save(actor=admin, endpoint=endpoint)
    response = api_as(engineer).put(
        API,
        {
            "preferences": [
                {
                    "event": "change_shipped",
                    "destination": f"endpoint-{endpoint.pk}",
                    "enabled": True,
                }
            ]
        },
    )
    assert response.status_code == 400


def test_a_viewer_cannot_change_anothers_choices(viewer, engineer, admin):
    with pytest.raises(PermissionDenied):
        preferences_set(
            actor=viewer, user=engineer, choices=[(EventKind.MEASUREMENT_FINISHED, EMAIL, False)]
        )
    assert wanted(engineer, EventKind.MEASUREMENT_FINISHED) == [EMAIL]
    # An admin may (e.g. for someone who left), and it is audited as theirs.
    preferences_set(
        actor=admin, user=engineer, choices=[(EventKind.MEASUREMENT_FINISHED, EMAIL, False)]
    )
    assert wanted(engineer, EventKind.MEASUREMENT_FINISHED) == []
    assert AuditEntry.objects.filter(actor=admin, object_id=str(engineer.pk)).exists()


def test_the_api_acts_on_the_caller_only(api_as, viewer, engineer):
    # There is no way to name another user: a user field is refused, not obeyed.
    response = api_as(viewer).put(
        API,
        {
            "user": engineer.username,
            "preferences": [
                {"event": "measurement_finished", "destination": "email", "enabled": False}
            ],
        },
    )
    assert response.status_code == 400
    assert wanted(engineer, EventKind.MEASUREMENT_FINISHED) == [EMAIL]


def test_a_read_only_token_cannot_write(engineer):
    from rest_framework.test import APIClient

    from apps.accounts.services import api_token_create

    _token, key = api_token_create(actor=engineer, user=engineer, name="ro", read_only=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get(API).status_code == 200
    response = client.put(
        API,
        {
            "preferences": [
                {"event": "measurement_finished", "destination": "email", "enabled": False}
            ]
        },
    )
    assert response.status_code == 403
