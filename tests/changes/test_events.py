"""Changes publish what happened to them; checklists and search react through subscriptions."""

from django.db import transaction

from apps.changes.events import ChangeEdited, ChangesFiled, RevisionsResolved
from apps.changes.services import (
    change_prepare,
    change_refresh_revisions,
    change_update,
    changes_create_many,
)
from apps.checklists.templates import DEFAULT_TEMPLATE
from apps.search.models import SearchEntry

from .test_services import file_change


def test_filing_publishes_changes_filed(engineer, project, delivered):
    seen = delivered(ChangesFiled)
    change = file_change(engineer, project)
    assert seen == [ChangesFiled(change_ids=(change.pk,), actor_id=engineer.pk, imported=False)]


def test_filing_copies_the_checklist_and_indexes_after_commit(engineer, project):
    with transaction.atomic():
        change = file_change(engineer, project, title="Stop the session cache from leaking")
        assert not change.checklist.exists(), "checklists react once the filing commits"
        assert not SearchEntry.objects.filter(change=change).exists()
    titles = list(change.checklist.order_by("position").values_list("title", flat=True))
    assert titles == [title for title, _kind in DEFAULT_TEMPLATE]
    entry = SearchEntry.objects.get(change=change)
    assert entry.status == change.status


def test_a_filing_that_rolls_back_leaves_no_checklist_nor_entry(engineer, project, delivered):
    seen = delivered(ChangesFiled)
    try:
        with transaction.atomic():
            change = file_change(engineer, project)
            raise RuntimeError("the request failed after filing")
    except RuntimeError:
        pass
    assert seen == []
    assert not SearchEntry.objects.filter(change_id=change.pk).exists()


def test_many_filed_at_once_are_one_event_and_all_get_checklists(
    admin, engineer, project, delivered
):
    seen = delivered(ChangesFiled)
    prepared = [
        change_prepare(
            actor=admin,
            related_checked=True,
            project=project,
            owner=engineer,
            title=f"Imported fix {n}",
            reason="From the old tracker.",
            expected_result="less memory",
        )
        for n in range(5)
    ]
    made = changes_create_many(actor=admin, changes=prepared, batch=2)
    (event,) = seen
    assert event.change_ids == tuple(c.pk for c in made)
    assert event.imported is True and event.actor_id == admin.pk
    for change in made:
        assert change.checklist.count() == len(DEFAULT_TEMPLATE)
    assert SearchEntry.objects.filter(change__in=made).count() == 5


def test_an_edit_publishes_change_edited_and_search_sees_it(engineer, change, delivered):
    seen = delivered(ChangeEdited)
    change_update(actor=engineer, change=change, title="Evict the oldest sessions first")
    assert seen == [ChangeEdited(change_id=change.pk, actor_id=engineer.pk)]
    assert SearchEntry.objects.filter(change=change).exists()
    change_update(actor=engineer, change=change, title="Evict the oldest sessions first")
    assert len(seen) == 1, "an edit that changes nothing says nothing"


def test_resolving_revisions_publishes_revisions_resolved(change, delivered):
    seen = delivered(RevisionsResolved)
    change_refresh_revisions(change=change)
    change.refresh_from_db()
    assert seen == [RevisionsResolved(change_id=change.pk, error=change.revision_error)]
