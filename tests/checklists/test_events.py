"""Checklists publish verifications, shipping and rollbacks, and react to measurements."""

import sys

from apps.changes.events import ChangeRolledBack, ChangeShipped
from apps.changes.models import ChangeStatus
from apps.checklists.events import ChecklistItemVerified
from apps.checklists.models import ChecklistItem, ItemKind, ItemState
from apps.checklists.rollback import change_rollback
from apps.checklists.shipping import change_ship
from apps.checklists.tasks import verify_item
from apps.checklists.verification import checklist_item_verify_request
from apps.core import events
from apps.measurements.events import MeasurementFinished
from apps.measurements.models import MeasurementStatus
from apps.search.models import SearchEntry

from .test_checklist import finished_measurement


def _verify(engineer, change, code: str):
    item = change.checklist.get(title="Run linting")
    ChecklistItem.objects.filter(pk=item.pk).update(argv=[sys.executable, "-c", code])
    item.refresh_from_db()
    checklist_item_verify_request(actor=engineer, item=item, version=item.version)
    verify_item(item.pk)
    return item


def test_a_verification_publishes_whether_it_passed(engineer, fix, delivered):
    seen = delivered(ChecklistItemVerified)
    passed = _verify(engineer, fix, "print('clean')")
    assert seen == [ChecklistItemVerified(item_id=passed.pk, change_id=fix.pk, passed=True)]
    ChecklistItem.objects.filter(pk=passed.pk).update(state=ItemState.OPEN)
    failed = _verify(engineer, fix, "exit(1)")
    assert seen[1] == ChecklistItemVerified(
        item_id=failed.pk, change_id=fix.pk, passed=False, reason="exited with code 1"
    )


def test_shipping_and_rolling_back_publish_and_search_follows(admin, engineer, fix, delivered):
    seen = delivered(ChangeShipped, ChangeRolledBack)
    shipped = change_ship(actor=admin, change=fix, override_reason="hotfix")
    assert seen == [
        ChangeShipped(
            change_id=fix.pk,
            actor_id=admin.pk,
            tag_name=shipped.tag_name,
            overridden=True,
            override_reason="hotfix",
        )
    ]
    assert SearchEntry.objects.get(change=fix).status == ChangeStatus.SHIPPED
    reverse = change_rollback(actor=engineer, change=fix)
    reverse.refresh_from_db()
    change_ship(actor=admin, change=reverse, override_reason="the fix broke checkout")
    assert seen[2] == ChangeRolledBack(change_id=fix.pk, rollback_id=reverse.pk, actor_id=admin.pk)
    assert SearchEntry.objects.get(change=fix).status == ChangeStatus.ROLLED_BACK


def test_a_finished_measurement_settles_the_staging_config_item(fix):
    staging = fix.checklist.get(kind=ItemKind.STAGING_CONFIG)
    measurement = finished_measurement(fix, config_at_start="aaa", config_at_end="aaa")
    events.deliver(
        MeasurementFinished(
            measurement_id=measurement.pk, change_id=fix.pk, status=MeasurementStatus.DONE
        )
    )
    staging.refresh_from_db()
    assert staging.state == ItemState.DONE
    assert staging.evidence == {"fingerprint": "aaa"}
