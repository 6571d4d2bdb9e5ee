import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied

from apps.accounts.models import User
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


def _admin_form(user, **values) -> dict:
    """The user's change form in the admin as posted, with `values` changed."""
    return {
        "username": user.username,
        "first_name": "",
        "last_name": "",
        "email": user.email,
        "is_active": "on",
        **values,
    }


def test_a_role_set_in_the_admin_goes_through_the_role_service(as_user, admin, viewer):
    response = as_user(admin).post(
        f"/admin/accounts/user/{viewer.pk}/change/", _admin_form(viewer, role="admin")
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    viewer = User.objects.get(pk=viewer.pk)
    assert viewer.role == Role.ADMIN
    assert viewer.is_staff, "staff status follows the admin role"
    entry = audit_history(viewer).get(after={"role": "admin"})
    assert (entry.actor, entry.before) == (admin, {"role": "viewer"})

    as_user(admin).post(
        f"/admin/accounts/user/{viewer.pk}/change/", _admin_form(viewer, role="engineer")
    )
    viewer = User.objects.get(pk=viewer.pk)
    assert viewer.role == Role.ENGINEER
    assert not viewer.is_staff


def test_the_admin_cannot_set_groups_staff_or_superuser_directly(as_user, admin, viewer):
    as_user(admin).post(
        f"/admin/accounts/user/{viewer.pk}/change/",
        _admin_form(
            viewer,
            groups=[Group.objects.get(name="admin").pk],
            is_staff="on",
            is_superuser="on",
        ),
    )
    viewer = User.objects.get(pk=viewer.pk)
    assert viewer.role == Role.VIEWER
    assert not viewer.is_staff and not viewer.is_superuser
