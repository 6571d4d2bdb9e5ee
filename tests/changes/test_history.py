"""A change's history as people read it: field labels, lists as lists, before → after."""

import re

from apps.changes.services import change_update
from apps.core.audit import audit_history, audit_record, readable_changes


def history_page(client, change) -> str:
    return client.get(f"{change.get_absolute_url()}?tab=history").content.decode()


def test_fields_are_named_by_their_labels_not_their_keys(as_user, engineer, change):
    change_update(
        actor=engineer,
        change=change,
        expected_result="peak RSS -30 %",
        base_revision="release-1",
        tags=["memory", "leak"],
    )
    (row_expected, row_base, row_tags) = readable_changes(audit_history(change).first())
    assert (row_expected.label, row_base.label, row_tags.label) == (
        "Expected result",
        "Before revision",
        "Tags",
    )
    page = history_page(as_user(engineer), change)
    assert '<th scope="row">Expected result</th>' in page
    assert '<th scope="row">Before revision</th>' in page
    assert ">expected_result<" not in page
    assert ">base_revision<" not in page


def test_lists_show_as_lists_with_what_came_and_went(as_user, engineer, change):
    assert change.tags == ["memory", "cache"]
    change_update(actor=engineer, change=change, tags=["memory", "leak"])
    (row,) = readable_changes(audit_history(change).first())
    assert row.is_list
    assert (row.removed, row.added) == (["cache"], ["leak"])
    page = history_page(as_user(engineer), change)
    assert "[&#x27;memory&#x27;" not in page and "['memory'" not in page
    before, after = re.search(
        r'<td class="before">(.*?)</td>\s*<td class="arrow" aria-hidden="true">→</td>\s*'
        r'<td class="after">(.*?)</td>',
        page,
        re.S,
    ).groups()
    assert '<ul class="audit-list">' in before and '<ul class="audit-list">' in after
    assert '<li class="removed"><span class="visually-hidden">removed: </span>cache</li>' in before
    assert '<li class="added"><span class="visually-hidden">added: </span>leak</li>' in after
    assert "<li>memory</li>" in before and "<li>memory</li>" in after


def test_choices_read_as_labels_and_other_keys_are_named(as_user, engineer, change):
    audit_record(
        actor=None,
        action="measured",
        obj=change,
        before={"status": "measuring"},
        after={"status": "ready", "peak_rss": "improved", "cpu_time": "regressed"},
    )
    rows = {r.key: r for r in readable_changes(audit_history(change).first())}
    assert (rows["status"].label, rows["status"].before, rows["status"].after) == (
        "Status",
        "Measuring",
        "Ready",
    )
    # Metric keys are named by the app that records them.
    assert rows["peak_rss"].label == "Peak RSS"
    page = history_page(as_user(engineer), change)
    assert '<th scope="row">Peak RSS</th>' in page
    assert ">peak_rss<" not in page
