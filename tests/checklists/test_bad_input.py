"""A tick from the web form needs the version the page showed: without one it is refused."""

import pytest

from apps.checklists.models import ItemState
from apps.core.audit import audit_history


@pytest.mark.parametrize(
    "form",
    [
        {"state": "done"},
        {"state": "done", "version": ""},
        {"state": "done", "version": "latest"},
        {"action": "verify"},
    ],
)
def test_a_form_tick_without_a_valid_version_changes_nothing(as_user, reviewer, fix, form):
    item = fix.checklist.order_by("position").first()

    response = as_user(reviewer).post(f"/checklists/items/{item.pk}/", form, HTTP_HX_REQUEST="true")

    assert response.status_code == 400
    assert "version is missing; reload the page" in response.content.decode()
    item.refresh_from_db()
    assert (item.state, item.version, item.verification) == (ItemState.OPEN, 1, "")
    assert list(audit_history(item)) == []


def test_the_rendered_form_carries_the_version(as_user, reviewer, fix):
    item = fix.checklist.order_by("position").first()
    page = as_user(reviewer).get(fix.get_absolute_url()).content.decode()
    assert 'name="version" value="1"' in page

    response = as_user(reviewer).post(
        f"/checklists/items/{item.pk}/", {"state": "done", "version": "1"}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200
    item.refresh_from_db()
    assert (item.state, item.version) == (ItemState.DONE, 2)
