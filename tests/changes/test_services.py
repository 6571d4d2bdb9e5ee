import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from apps.changes.models import Change
from apps.changes.services import can_edit_change, change_create, change_update
from apps.core.audit import audit_history
from apps.core.context import request_id_var

from ..factories import ChangeFactory


def file_change(actor, project, **overrides):
    values = {
        "project": project,
        "title": "Bound the response cache",
        "reason": "RSS grows 40 MB an hour under load.",
        "expected_result": "peak RSS -20 %",
        "files_touched": ["app/cache.py"],
        "tags": ["memory"],
    }
    return change_create(actor=actor, **{**values, **overrides})


class TestChangeCreate:
    @pytest.mark.parametrize("persona", ["engineer", "reviewer", "admin"])
    def test_roles_that_may_file(self, request, persona, project):
        actor = request.getfixturevalue(persona)
        change = file_change(actor, project)
        assert change.owner == actor
        assert change.status == "draft"
        assert change.number == f"FIX-{change.pk}"

    def test_viewer_may_not_file(self, viewer, project):
        with pytest.raises(PermissionDenied):
            file_change(viewer, project)
        assert Change.objects.count() == 0

    def test_user_without_role_may_not_file(self, project):
        from ..factories import UserFactory

        with pytest.raises(PermissionDenied):
            file_change(UserFactory(), project)

    def test_engineer_cannot_file_for_someone_else(self, engineer, other_engineer, project):
        with pytest.raises(PermissionDenied):
            file_change(engineer, project, owner=other_engineer)

    def test_reviewer_files_for_an_engineer(self, reviewer, engineer, project):
        assert file_change(reviewer, project, owner=engineer).owner == engineer

    def test_owner_must_be_an_engineer(self, reviewer, viewer, project):
        with pytest.raises(PermissionDenied):
            file_change(reviewer, project, owner=viewer)

    def test_writes_an_audit_entry_in_the_same_transaction(self, engineer, project):
        token = request_id_var.set("req-42")
        try:
            change = file_change(engineer, project)
        finally:
            request_id_var.reset(token)
        (entry,) = audit_history(change)
        assert entry.action == "create"
        assert entry.actor == engineer
        assert entry.actor_name == "erin"
        assert entry.request_id == "req-42"
        assert entry.before is None
        assert entry.after["title"] == "Bound the response cache"
        assert entry.after["files_touched"] == ["app/cache.py"]
        assert entry.after["project"] == "Billing API"

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("title", ""),
            ("title", "x" * 201),
            ("reason", "x" * 20_001),
            ("files_touched", ["/etc/passwd"]),
            ("files_touched", ["a\nb"]),
            ("files_touched", [f"f{i}.py" for i in range(5_001)]),
            ("tags", ["Not A Tag"]),
            ("tags", [f"t{i}" for i in range(21)]),
            ("base_revision", "--upload-pack=touch pwned"),
            ("head_revision", "main..evil"),
            ("head_revision", "HEAD@{1}"),
        ],
    )
    def test_bad_values_are_refused_and_nothing_is_written(self, engineer, project, field, value):
        with pytest.raises(ValidationError) as excinfo:
            file_change(engineer, project, **{field: value})
        assert field in excinfo.value.message_dict
        assert Change.objects.count() == 0
        assert not audit_history(Change(pk=1)).exists()


class TestChangeUpdate:
    def test_owner_edits_and_history_records_only_what_changed(self, engineer, change):
        change_update(actor=engineer, change=change, title="New title", tags=["memory"])
        entry = audit_history(change).first()
        assert entry.action == "update"
        assert entry.before == {"title": change.title, "tags": ["memory", "cache"]}
        assert entry.after == {"title": "New title", "tags": ["memory"]}
        assert entry.changed_fields() == [
            ("tags", ["memory", "cache"], ["memory"]),
            ("title", change.title, "New title"),
        ]

    def test_no_op_edit_writes_nothing(self, engineer, change):
        change_update(actor=engineer, change=change, title=change.title)
        assert not audit_history(change).exists()

    def test_other_engineer_cannot_edit(self, other_engineer, change):
        with pytest.raises(PermissionDenied):
            change_update(actor=other_engineer, change=change, title="Hijacked")
        change.refresh_from_db()
        assert change.title != "Hijacked"

    def test_viewer_cannot_edit(self, viewer, change):
        with pytest.raises(PermissionDenied):
            change_update(actor=viewer, change=change, title="Nope")

    @pytest.mark.parametrize("persona", ["reviewer", "admin"])
    def test_reviewers_and_admins_edit_any(self, request, persona, change):
        actor = request.getfixturevalue(persona)
        assert change_update(actor=actor, change=change, title="Reviewed").title == "Reviewed"
        assert audit_history(change).first().actor == actor

    def test_engineer_cannot_hand_own_change_away(self, engineer, other_engineer, change):
        with pytest.raises(PermissionDenied):
            change_update(actor=engineer, change=change, owner=other_engineer)

    def test_reviewer_reassigns_owner(self, reviewer, other_engineer, change):
        change_update(actor=reviewer, change=change, owner=other_engineer)
        change.refresh_from_db()
        assert change.owner == other_engineer
        assert audit_history(change).first().after == {"owner": "ed"}

    def test_status_is_not_editable(self, engineer, change):
        with pytest.raises(TypeError):
            change_update(actor=engineer, change=change, status="shipped")

    def test_invalid_edit_changes_nothing(self, engineer, change):
        with pytest.raises(ValidationError):
            change_update(actor=engineer, change=change, title="", tags=["ok"])
        change.refresh_from_db()
        assert change.title
        assert change.tags == ["memory", "cache"]
        assert not audit_history(change).exists()


def test_can_edit_matrix(viewer, engineer, other_engineer, reviewer, admin, project):
    change = ChangeFactory(owner=engineer, project=project)
    assert [
        can_edit_change(u, change) for u in (viewer, engineer, other_engineer, reviewer, admin)
    ] == [
        False,
        True,
        False,
        True,
        True,
    ]
