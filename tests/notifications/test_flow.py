"""The team's loop end to end: measurements, reviews, shipping and rollbacks, driven through the
API, the pages and the services a worker calls, tell the right people once, by email or by
a signed webhook, and each change shows what was sent about it."""

import re
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail

from apps.measurements.demo import _git
from apps.measurements.models import Measurement
from apps.measurements.reports import measurement_finish
from apps.notifications.models import Delivery, DeliveryStatus
from apps.projects.tasks import sync_project

from ..measurements.test_verdicts import finish_runs, start
from .conftest import make_endpoint
from .helpers import send_all

pytestmark = pytest.mark.django_db

STEADY = [1.0, 1.01, 0.99, 1.0, 1.02]
FASTER = [0.5, 0.51, 0.49, 0.5, 0.5]
SLOWER = [2.0, 2.01, 1.99, 2.0, 2.02]
# What no message should show: metric keys, event kinds, status values, dedupe keys.
INTERNAL = re.compile(
    r"peak_rss|\bwall\b(?! time)|\bcpu\b|_finished|_found|ready_for_review|\bdone\b|\|"
)


def measure(api, change, profile, after: list[float]) -> Measurement:
    """Ask for a measurement through the API, then do what a worker does with it: run it
    (these wall times after, steady before) and report it finished. Sends what it queued."""
    response = api.post("/api/measurements/", {"change": change.number, "profile": profile.pk})
    assert response.status_code == 201, response.content
    measurement = start(Measurement.objects.get(pk=response.json()["id"]))
    finish_runs(measurement, {"before": STEADY, "after": after})
    measurement_finish(measurement=measurement)
    send_all()
    measurement.refresh_from_db()
    return measurement


def inbox() -> dict[str, list]:
    """Each recipient's messages so far, by address; the outbox emptied."""
    told: dict[str, list] = {}
    for message in mail.outbox:
        for address in message.to:
            told.setdefault(address, []).append(message)
    mail.outbox.clear()
    return told


def change_url(change) -> str:
    return settings.SITE_URL.rstrip("/") + change.get_absolute_url()


@pytest.fixture
def team(engineer, other_engineer, reviewer, admin, viewer):
    return {"erin": engineer, "ed": other_engineer, "rita": reviewer, "ada": admin, "vera": viewer}


def test_measuring_tells_the_owner_then_reviewers_once_per_state(
    settings, team, engineer, api_as, demo_change, demo_project, profile
):
    settings.SITE_URL = "https://fixledger.example.com/"
    api = api_as(engineer)
    first = measure(api, demo_change, profile, FASTER)

    told = inbox()
    # The owner hears how it came out; reviewers and admins that it waits for them; nobody else.
    assert sorted(told) == ["ada@example.com", "erin@example.com", "rita@example.com"]
    [finished] = told["erin@example.com"]
    number = demo_change.number
    assert finished.subject.startswith(f"[fixledger] {number} ")
    # The subject gives the verdict of the metric the change expected to move.
    assert "Bound the response cache: measured, no detectable change peak RSS" in finished.subject
    body = finished.body
    assert "Demo" in body, "the project"
    assert re.search(r"wall time: improved \u2212\d+\.\d %", body), body
    assert re.search(r"peak RSS: no detectable change [+\u2212]?\d", body), body
    assert "Expected peak RSS -30 %: not met." in body
    assert "https://fixledger.example.com" + demo_change.get_absolute_url() in body
    assert not INTERNAL.search(finished.subject + body), finished.subject + body
    [ready] = told["rita@example.com"]
    assert ready.subject == told["ada@example.com"][0].subject
    assert "ready for review" in ready.subject and number in ready.subject
    assert "Latest verdict: no detectable change peak RSS" in ready.body
    assert "https://fixledger.example.com" + demo_change.get_absolute_url() in ready.body
    assert not INTERNAL.search(ready.subject + ready.body), ready.subject + ready.body

    # The worker's report delivered again: nothing new happened, nobody hears of it.
    first.status, first.worker = "running", "w@test"
    Measurement.objects.filter(pk=first.pk).update(status="running")
    measurement_finish(measurement=first)
    send_all()
    assert inbox() == {}

    # Measured again at the same revision: the owner hears of the new measurement, but the
    # change is ready at the revision reviewers were already told about.
    measure(api, demo_change, profile, FASTER)
    assert sorted(inbox()) == ["erin@example.com"]

    # A new commit on the fix: ready again at another revision is news to reviewers.
    head = demo_change.head_sha
    moved = commit_on_fix(demo_project)
    response = api.patch(f"/api/changes/{demo_change.pk}/", {"head_revision": moved}, format="json")
    assert response.status_code == 200, response.content
    measure(api, demo_change, profile, FASTER)
    demo_change.refresh_from_db()
    assert demo_change.head_sha == moved != head
    told = inbox()
    assert sorted(told) == ["ada@example.com", "erin@example.com", "rita@example.com"]
    assert moved[:8] in told["rita@example.com"][0].body


def commit_on_fix(project) -> str:
    """A second commit on the fix branch of the project's repository, synced; its SHA."""
    repo = Path(project.repository_url)
    _git(repo, "checkout", "-q", "fix/bounded-cache")
    (repo / "NOTES").write_text("a second look at the cache\n")
    _git(repo, "add", "NOTES")
    _git(repo, "commit", "-q", "-m", "Note the cache's bound")
    _git(repo, "checkout", "-q", "main")
    sync_project(project.pk)
    sha = subprocess.run(
        ["git", "rev-parse", "fix/bounded-cache"], cwd=repo, capture_output=True, text=True
    )
    return sha.stdout.strip()


def test_a_gating_regression_tells_the_owner_once_what_regressed(
    team, engineer, api_as, demo_change, profile
):
    measurement = measure(api_as(engineer), demo_change, profile, SLOWER)
    told = inbox()
    [message] = told["erin@example.com"]
    assert "regress" in message.subject and "wall time" in message.subject
    assert demo_change.number in message.subject
    assert re.search(r"wall time: regressed \+\d+\.\d %", message.body), message.body
    assert "- wall time: regressed +100.0 % (blocks shipping)" in message.body
    assert f"Measurement {measurement.pk} with “handle 20k requests”" in message.body
    assert not INTERNAL.search(message.subject + message.body), message.subject + message.body
    # Reviewers still hear the change waits for them (the regression is for them to weigh).
    assert "ready for review" in told["rita@example.com"][0].subject


def test_who_chose_a_webhook_over_email_gets_it_signed(
    team, engineer, as_user, api_as, receiver, demo_change, profile
):
    endpoint, secret = make_endpoint("webhook", receiver.url + "/hook", name="team hook")
    page = as_user(engineer)
    form = page.get("/account/notifications/").content.decode()
    checked = set(re.findall(r'name="([^"]+)" checked', form))
    assert "measurement_finished:email" in checked
    wanted = (checked - {"measurement_finished:email", "regression_found:email"}) | {
        f"measurement_finished:endpoint-{endpoint.pk}",
        f"regression_found:endpoint-{endpoint.pk}",
    }
    response = page.post("/account/notifications/", dict.fromkeys(wanted, "on"))
    assert response.status_code == 302

    measure(api_as(engineer), demo_change, profile, FASTER)
    assert "erin@example.com" not in inbox()
    [request] = receiver.received
    assert request.path == "/hook"
    assert request.signed_with(secret)
    body = request.json()
    assert body["event"] == "measurement_finished"
    assert body["change"]["number"] == demo_change.number
    assert body["change"]["url"] == change_url(demo_change)
    assert "measured" in body["summary"] and "wall time: improved" in body["text"]
    delivery = Delivery.objects.get(channel="webhook")
    assert (delivery.recipient, delivery.status) == (engineer, DeliveryStatus.SENT)


def test_shipping_and_rolling_back_tell_an_owner_who_asked(
    team, engineer, admin, as_user, api_as, demo_change, profile
):
    page = as_user(engineer)
    form = page.get("/account/notifications/").content.decode()
    checked = set(re.findall(r'name="([^"]+)" checked', form))
    chosen = checked | {"change_shipped:email", "change_rolled_back:email"}
    assert page.post("/account/notifications/", dict.fromkeys(chosen, "on")).status_code == 302
    measure(api_as(engineer), demo_change, profile, FASTER)
    inbox()

    api = api_as(admin)
    shipped = api.post(
        f"/api/changes/{demo_change.number}/ship/", {"override_reason": "the outage needs it"}
    )
    assert shipped.status_code == 200, shipped.content
    send_all()
    [message] = inbox()["erin@example.com"]
    demo_change.refresh_from_db()
    tag = demo_change.tag_name
    assert "shipped" in message.subject and tag in message.subject
    assert demo_change.number in message.subject
    assert "ada" in message.body and "override" in message.body

    reverse = api.post(f"/api/changes/{demo_change.number}/rollback/")
    assert reverse.status_code == 201, reverse.content
    rollback = reverse.json()["number"]
    assert (
        api.post(
            f"/api/changes/{rollback}/ship/", {"override_reason": "checkout broke"}
        ).status_code
        == 200
    )
    send_all()
    told = inbox()
    [message] = told["erin@example.com"]
    assert "rolled back" in message.subject and rollback in message.subject
    assert demo_change.number in message.subject
    # The reverse change is the admin's: its own shipping tells the admin nothing unasked.
    assert "ada@example.com" not in told


def test_the_change_page_and_the_api_list_what_was_sent(
    team, engineer, viewer, as_user, api_as, demo_change, profile
):
    measure(api_as(engineer), demo_change, profile, FASTER)
    html = as_user(viewer).get(demo_change.get_absolute_url()).content.decode()
    section = html[html.index('id="deliveries"') :]
    for name in ("erin", "rita", "ada"):
        assert name in section
    assert "vera" not in section and "Sent" in section
    rows = api_as(viewer).get(f"/api/changes/{demo_change.number}/deliveries/").json()["results"]
    assert sorted((r["recipient"], r["event"], r["status"]) for r in rows) == [
        ("ada", "ready_for_review", "sent"),
        ("erin", "measurement_finished", "sent"),
        ("rita", "ready_for_review", "sent"),
    ]
