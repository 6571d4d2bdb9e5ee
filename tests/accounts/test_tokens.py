import hashlib
import io
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken
from apps.accounts.services import api_token_create
from apps.changes.models import Change


def test_create_a_token_in_the_ui_and_use_it(as_user, engineer):
    client = as_user(engineer)
    response = client.post("/account/tokens/", {"name": "CI nightly"})
    assert response.status_code == 200
    key = response.context["new_key"]
    assert key in response.content.decode()
    token = ApiToken.objects.get(user=engineer)
    # Only the hash is kept; the key itself is nowhere in the database.
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in str(ApiToken.objects.values_list())
    # Shown once: the list page afterwards has only the prefix.
    assert key not in client.get("/account/tokens/").content.decode()

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/changes/").status_code == 200
    token.refresh_from_db()
    assert token.last_used is not None


def test_revoked_token_stops_working(as_user, engineer, api_as):
    api = api_as(engineer)
    token = ApiToken.objects.get(user=engineer)
    as_user(engineer).post(f"/account/tokens/{token.pk}/revoke/")
    assert not ApiToken.objects.exists()
    assert api.get("/api/changes/").status_code == 401


def test_cannot_revoke_someone_elses_token(as_user, engineer, other_engineer, api_as):
    api_as(engineer)
    token = ApiToken.objects.get(user=engineer)
    assert as_user(other_engineer).post(f"/account/tokens/{token.pk}/revoke/").status_code == 404
    assert ApiToken.objects.filter(pk=token.pk).exists()


def test_token_needs_a_name(as_user, engineer):
    response = as_user(engineer).post("/account/tokens/", {"name": "  "})
    assert "This field is required." in response.content.decode()
    assert not ApiToken.objects.exists()


def test_inactive_users_token_is_refused(engineer, api_as):
    api = api_as(engineer)
    engineer.is_active = False
    engineer.save()
    assert api.get("/api/changes/").status_code == 401


def test_management_command_prints_a_working_key(engineer):
    out = io.StringIO()
    call_command("create_api_token", "erin", "--name", "deploy bot", stdout=out)
    key = out.getvalue().strip()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/changes/").status_code == 200
    assert ApiToken.objects.get().name == "deploy bot"


def test_management_command_unknown_user(db):
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        call_command("create_api_token", "ghost")


def _api(key: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return api


def test_an_expired_token_is_refused(as_user, engineer):
    response = as_user(engineer).post(
        "/account/tokens/", {"name": "a month", "expires_in_days": "30"}
    )
    api = _api(response.context["new_key"])
    token = ApiToken.objects.get()
    assert 29 <= (token.expires_at - token.created).days <= 30
    assert api.get("/api/changes/").status_code == 200
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = api.get("/api/changes/")
    assert response.status_code == 401
    assert response.json()["detail"] == "Token expired."


def test_a_token_cannot_be_made_already_expired(engineer):
    with pytest.raises(ValidationError):
        api_token_create(
            actor=engineer, user=engineer, name="x", expires_at=timezone.now() - timedelta(days=1)
        )


def test_a_read_only_token_reads_and_cannot_write(as_user, engineer, project):
    response = as_user(engineer).post("/account/tokens/", {"name": "dash", "read_only": "on"})
    api = _api(response.context["new_key"])
    assert ApiToken.objects.get().read_only
    assert api.get("/api/changes/").status_code == 200
    filed = api.post(
        "/api/changes/",
        {"title": "t", "project": "billing", "reason": "r", "expected_result": "e"},
        format="json",
    )
    assert filed.status_code == 403
    assert filed.json()["detail"] == "This token is read-only."
    assert not Change.objects.exists()
    assert "read-only" in as_user(engineer).get("/account/tokens/").content.decode()


def test_the_command_makes_expiring_and_read_only_tokens(engineer):
    out = io.StringIO()
    call_command("create_api_token", "erin", "--expires-days", "7", "--read-only", stdout=out)
    token = ApiToken.objects.get()
    assert token.read_only
    assert 6 <= (token.expires_at - timezone.now()).days <= 7
    assert _api(out.getvalue().strip()).delete("/api/changes/1/").status_code == 403
