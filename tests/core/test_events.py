"""The event bus: delivered after commit, never after a rollback, each subscriber on its own."""

from dataclasses import dataclass

import pytest
from django.db import transaction

from apps.core import events
from apps.core.audit import audit_history, audit_record


@dataclass(frozen=True)
class Happened(events.Event):
    what: str


@pytest.fixture
def subscribed():
    added = []

    def subscribe(fn):
        events.subscribe(Happened, fn)
        added.append(fn)

    yield subscribe
    for fn in added:
        events.unsubscribe(Happened, fn)


@pytest.mark.django_db(transaction=True)
def test_delivered_only_once_the_transaction_commits(subscribed):
    seen = []
    subscribed(seen.append)
    with transaction.atomic():
        events.publish(Happened("filed"))
        assert seen == [], "nobody reacts before the write is committed"
    assert seen == [Happened("filed")]


@pytest.mark.django_db(transaction=True)
def test_an_event_of_a_transaction_that_rolls_back_is_never_delivered(subscribed):
    seen = []
    subscribed(seen.append)
    with pytest.raises(RuntimeError), transaction.atomic():
        events.publish(Happened("rolled back"))
        raise RuntimeError("the write failed")
    with transaction.atomic():
        events.publish(Happened("committed"))
    assert seen == [Happened("committed")]


@pytest.mark.django_db(transaction=True)
def test_a_nested_block_that_rolls_back_takes_its_events_with_it(subscribed):
    seen = []
    subscribed(seen.append)
    with transaction.atomic():
        events.publish(Happened("outer"))
        with pytest.raises(RuntimeError), transaction.atomic():
            events.publish(Happened("inner"))
            raise RuntimeError
    assert seen == [Happened("outer")]


@pytest.mark.django_db(transaction=True)
def test_a_failing_subscriber_stops_neither_the_others_nor_the_write(subscribed, change, caplog):
    def broken(event):
        audit_record(actor=None, action="half done", obj=change)
        raise ValueError("subscriber bug")

    seen = []
    subscribed(broken)
    subscribed(seen.append)
    with transaction.atomic():
        audit_record(actor=None, action="the write", obj=change)
        events.publish(Happened("filed"))
    assert seen == [Happened("filed")], "the next subscriber still ran"
    actions = [entry.action for entry in audit_history(change)]
    assert "the write" in actions, "the write that published stays committed"
    assert "half done" not in actions, "the failing subscriber's own work is rolled back"
    assert "subscriber bug" in caplog.text


def test_in_a_test_transaction_a_services_block_stands_for_the_commit(db, subscribed):
    """tests/conftest.py: the outermost block inside the test's transaction delivers on exit."""
    seen = []
    subscribed(seen.append)
    with transaction.atomic():
        with transaction.atomic():
            events.publish(Happened("inner"))
        assert seen == []
    assert seen == [Happened("inner")]
    with pytest.raises(RuntimeError), transaction.atomic():
        events.publish(Happened("rolled back"))
        raise RuntimeError
    assert seen == [Happened("inner")]
