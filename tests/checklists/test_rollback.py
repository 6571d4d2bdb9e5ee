"""Rolling back: only after a confirmation that needs no script, and both changes link."""

from apps.changes.models import Change
from apps.checklists.shipping import change_ship


def test_roll_back_asks_first_and_files_only_when_confirmed(as_user, admin, engineer, fix):
    change_ship(actor=admin, change=fix, override_reason="test")
    client = as_user(engineer)
    page = client.get(fix.get_absolute_url()).content.decode()
    url = f"/checklists/changes/{fix.pk}/rollback/"
    # The change page offers a link to the confirmation, not a button that files at once.
    assert f'href="{url}"' in page
    assert f'action="{url}"' not in page

    confirm = client.get(url)
    assert confirm.status_code == 200
    text = confirm.content.decode()
    assert f'Roll back <a href="{fix.get_absolute_url()}">{fix.number}</a>' in text
    assert 'type="checkbox" id="confirm-rollback" name="confirm" value="yes" required' in text

    unconfirmed = client.post(url, {})
    assert unconfirmed.status_code == 400
    assert "Tick the box to confirm the rollback." in unconfirmed.content.decode()
    assert not Change.objects.filter(rollback_of=fix).exists()

    done = client.post(url, {"confirm": "yes"})
    reverse = Change.objects.get(rollback_of=fix)
    assert done.status_code == 302
    assert done["Location"] == reverse.get_absolute_url()


def test_a_change_and_its_rollback_link_to_each_other(as_user, admin, engineer, fix):
    change_ship(actor=admin, change=fix, override_reason="test")
    client = as_user(engineer)
    client.post(f"/checklists/changes/{fix.pk}/rollback/", {"confirm": "yes"})
    reverse = Change.objects.get(rollback_of=fix)
    original_page = client.get(fix.get_absolute_url()).content.decode()
    assert f'rolled back by <a href="{reverse.get_absolute_url()}">{reverse.number}</a>' in (
        original_page
    )
    reverse_page = client.get(reverse.get_absolute_url()).content.decode()
    assert f'rolls back <a href="{fix.get_absolute_url()}">{fix.number}</a>' in reverse_page
    # Once rolled back, the original offers no second rollback.
    assert f"/checklists/changes/{fix.pk}/rollback/" not in original_page


def test_only_who_may_edit_sees_the_confirmation(as_user, admin, viewer, fix):
    change_ship(actor=admin, change=fix, override_reason="test")
    assert as_user(viewer).get(f"/checklists/changes/{fix.pk}/rollback/").status_code == 403
    assert (
        as_user(viewer).post(f"/checklists/changes/{fix.pk}/rollback/", {"confirm": "yes"})
    ).status_code == 403
    assert not Change.objects.filter(rollback_of=fix).exists()
