"""The change page follows every action without a reload: checklist actions answer with every
region they move (out-of-band swaps); a measurement that moves the change raises an event the
checklist answers. Without htmx every form still posts and redirects."""

import json
from datetime import timedelta

from django.utils import timezone

from apps.checklists.models import ChecklistItem, ItemKind

from .test_checklist import finished_measurement, items

HX = {"HTTP_HX_REQUEST": "true"}


def oob(html: str, element_id: str) -> str:
    """The out-of-band fragment with this id in an htmx answer."""
    marker = f'id="{element_id}" hx-swap-oob='
    start = html.index(marker)
    end = html.find(' hx-swap-oob="', start + len(marker))
    return html[start : end if end != -1 else len(html)]


def test_ticking_the_last_item_brings_the_tag_button_at_once(as_user, reviewer, fix):
    finished_measurement(fix)
    client = as_user(reviewer)
    *others, last, _tag = items(fix)
    for item in others:
        client.post(f"/checklists/items/{item.pk}/", {"state": "done", "version": 1}, **HX)
    before = client.post(
        f"/checklists/items/{others[0].pk}/", {"state": "open", "version": 2}, **HX
    )
    assert "is neither done nor skipped" in oob(before.content.decode(), "release")
    client.post(f"/checklists/items/{others[0].pk}/", {"state": "done", "version": 3}, **HX)

    answer = client.post(f"/checklists/items/{last.pk}/", {"state": "done", "version": 1}, **HX)
    html = answer.content.decode()
    assert answer.status_code == 200
    release = oob(html, "release")
    assert "Cannot tag the release yet" not in release
    assert "neither done nor skipped" not in release
    assert '<button type="submit" id="ship-button">Tag the release</button>' in release
    assert "Ready to tag the release." in oob(html, "release-summary")
    assert "done by rita" in oob(html, "checklist-items")
    assert 'class="badge status-' in oob(html, "change-status")
    # The ticked row comes back with the control that undoes it, under the same id.
    assert f'id="item-{last.pk}-state" aria-label="Reopen: {last.title}"' in html


def test_a_conflict_is_said_on_its_item_and_changes_nothing(as_user, engineer, reviewer, fix):
    item = items(fix)[0]
    as_user(engineer).post(f"/checklists/items/{item.pk}/", {"state": "done", "version": 1}, **HX)
    stale = as_user(reviewer).post(
        f"/checklists/items/{item.pk}/", {"state": "skipped", "reason": "x", "version": 1}, **HX
    )
    assert stale.status_code == 409
    assert "changed by erin meanwhile" in stale.content.decode()
    assert ChecklistItem.objects.get(pk=item.pk).state == "done"


def test_without_htmx_forms_post_and_redirect(as_user, reviewer, fix):
    item = items(fix)[0]
    client = as_user(reviewer)
    done = client.post(f"/checklists/items/{item.pk}/", {"state": "done", "version": 1})
    assert done.status_code == 302 and done["Location"] == fix.get_absolute_url()
    refused = client.post(f"/checklists/items/{item.pk}/", {"state": "skipped", "version": 2})
    assert refused.status_code == 302
    page = client.get(fix.get_absolute_url()).content.decode()
    assert "Say why the item is skipped." in page
    assert client.get(f"/checklists/changes/{fix.pk}/")["Location"].endswith("#checklist")


def test_shipping_in_place_updates_badge_items_and_panel(as_user, admin, fix):
    answer = as_user(admin).post(
        f"/checklists/changes/{fix.pk}/ship/", {"override": "hotfix for the outage"}, **HX
    )
    html = answer.content.decode()
    assert answer.status_code == 200
    assert "Shipped" in oob(html, "change-status")
    assert "as tag <code>fixledger/" in oob(html, "release-summary")
    assert "Roll back…" in oob(html, "release")
    assert 'name="state"' not in oob(html, "checklist-items"), "a shipped checklist is closed"
    # The measurements section asks for itself again: no Measure on a shipped change.
    assert json.loads(answer["HX-Trigger-After-Settle"]) == {"change-closed": None}
    refused = as_user(admin).post(f"/checklists/changes/{fix.pk}/ship/", {}, **HX)
    assert refused.status_code == 400
    assert "has shipped already" in oob(refused.content.decode(), "release")


def test_a_verification_polls_until_it_ends_and_says_when_no_worker_takes_it(
    as_user, reviewer, fix
):
    item = next(i for i in items(fix) if i.kind == ItemKind.VERIFY)
    ChecklistItem.objects.filter(pk=item.pk).update(argv=["ruff", "check", "."])
    client = as_user(reviewer)
    answer = client.post(
        f"/checklists/items/{item.pk}/", {"action": "verify", "version": 1}, **HX
    ).content.decode()
    assert "A worker is verifying it (queued)" in answer
    poll = oob(answer, "checklist-poll")
    assert f'hx-get="/checklists/changes/{fix.pk}/" hx-trigger="every 2s"' in poll
    assert "No worker has taken this" not in answer, "a worker may still be on its way"

    ChecklistItem.objects.filter(pk=item.pk).update(updated=timezone.now() - timedelta(minutes=2))
    later = client.get(f"/checklists/changes/{fix.pk}/", **HX).content.decode()
    assert "No worker has taken this for 2\xa0minutes — is a worker consuming queue" in later

    ChecklistItem.objects.filter(pk=item.pk).update(verification="", state="done")
    over = client.get(f"/checklists/changes/{fix.pk}/", **HX).content.decode()
    assert "every 2s" not in oob(over, "checklist-poll"), "the poll stops with the work"
