"""Writes on accounts: API tokens and role assignment."""

from datetime import datetime

from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core.audit import audit_record, snapshot

from .models import ApiToken, User, hash_token_key
from .roles import Role

MAX_TOKENS_PER_USER = 20


def require_role(actor: User, role: Role, *, doing: str) -> None:
    """Raise PermissionDenied unless `actor` holds `role` or one above it."""
    if actor is None or not actor.is_authenticated or not actor.has_role(role):
        raise PermissionDenied(f"Only a {role.label.lower()} or above may {doing}.")


@transaction.atomic
def api_token_create(
    *,
    actor: User,
    user: User,
    name: str,
    expires_at: datetime | None = None,
    read_only: bool = False,
) -> tuple[ApiToken, str]:
    """Create a token for `user`; returns the token and its key, which is never stored.

    `expires_at` (None: never) and `read_only` (only GET, HEAD, OPTIONS) bound what a leaked
    key can do.
    """
    if actor.pk != user.pk:
        require_role(actor, Role.ADMIN, doing="create tokens for another user")
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the token a name, e.g. the CI job that uses it."})
    if len(name) > 100:
        raise ValidationError({"name": "At most 100 characters."})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "A token must expire in the future."})
    if user.api_tokens.count() >= MAX_TOKENS_PER_USER:
        raise ValidationError({"name": f"A user can hold at most {MAX_TOKENS_PER_USER} tokens."})
    key = ApiToken.generate_key()
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=key[: ApiToken.KEY_PREFIX_LENGTH],
        key_hash=hash_token_key(key),
        expires_at=expires_at,
        read_only=read_only,
    )
    audit_record(
        actor=actor,
        action="create",
        obj=token,
        after=snapshot(token, ["name", "user", "expires_at", "read_only"]),
    )
    return token, key


@transaction.atomic
def api_token_revoke(*, actor: User, token: ApiToken) -> None:
    if actor.pk != token.user_id:
        require_role(actor, Role.ADMIN, doing="revoke another user's token")
    audit_record(actor=actor, action="delete", obj=token, before={"name": token.name})
    token.delete()


@transaction.atomic
def user_set_role(*, actor: User | None, user: User, role: Role) -> None:
    """Give `user` exactly one role group. `actor=None` is the system (set-up commands)."""
    if actor is not None:
        require_role(actor, Role.ADMIN, doing="change roles")
    before = user.role.value if user.role else None
    role_groups = Group.objects.filter(name__in=Role.values)
    user.groups.remove(*role_groups)
    user.groups.add(Group.objects.get(name=role.value))
    user.__dict__.pop("role", None)
    # Django's admin lets in staff only; the admin role is exactly who that should be.
    if user.is_staff != (role == Role.ADMIN):
        user.is_staff = role == Role.ADMIN
        user.save(update_fields=["is_staff"])
    audit_record(
        actor=actor, action="update", obj=user, before={"role": before}, after={"role": role.value}
    )
