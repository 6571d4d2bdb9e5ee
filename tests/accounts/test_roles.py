import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied

from apps.accounts.roles import Role
from apps.accounts.services import user_set_role
from apps.core.audit import audit_history

from ..factories import UserFactory


def test_migration_creates_one_group_per_role(db):
    assert set(Group.objects.values_list("name", flat=True)) >= set(Role.values)


@pytest.mark.parametrize(
    ("role", "held"),
    [
        (Role.VIEWER, [Role.VIEWER]),
        (Role.ENGINEER, [Role.VIEWER, Role.ENGINEER]),
        (Role.REVIEWER, [Role.VIEWER, Role.ENGINEER, Role.REVIEWER]),
        (Role.ADMIN, list(Role)),
    ],
)
def test_roles_are_ranked(db, role, held):
    user = UserFactory(role=role)
    assert [r for r in Role if user.has_role(r)] == held


def test_no_group_means_no_role(db):
    user = UserFactory()
    assert user.role is None
    assert not user.has_role(Role.VIEWER)


def test_inactive_users_hold_no_role(db):
    user = UserFactory(role=Role.ADMIN, is_active=False)
    assert user.role is None


def test_superusers_are_admins(db):
    assert UserFactory(is_superuser=True).role == Role.ADMIN


def test_highest_group_wins(db):
    user = UserFactory(role=Role.VIEWER)
    user.groups.add(Group.objects.get(name="reviewer"))
    assert user.role == Role.REVIEWER


def test_only_admins_change_roles_and_it_is_audited(admin, reviewer, viewer):
    with pytest.raises(PermissionDenied):
        user_set_role(actor=reviewer, user=viewer, role=Role.ADMIN)
    user_set_role(actor=admin, user=viewer, role=Role.ENGINEER)
    viewer.refresh_from_db()
    assert viewer.role == Role.ENGINEER
    assert not viewer.is_staff
    entry = audit_history(viewer).first()
    assert (entry.before, entry.after, entry.actor) == (
        {"role": "viewer"},
        {"role": "engineer"},
        admin,
    )
