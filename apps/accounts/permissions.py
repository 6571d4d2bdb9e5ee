"""API permissions by role, checked before a body is even validated (services check again)."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from .roles import Role


class AdminWrites(BasePermission):
    """Everyone signed in reads; only admins create or edit (what workers run is theirs)."""

    message = "Only admins define environments and measurement profiles."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return request.method in SAFE_METHODS or user.has_role(Role.ADMIN)
