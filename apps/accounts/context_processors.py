from .roles import Role


def role(request):
    """Lets templates show only the actions the user's role allows."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "user_role": user.role,
        "can_file": user.has_role(Role.ENGINEER),
        "is_reviewer": user.has_role(Role.REVIEWER),
        "is_admin": user.has_role(Role.ADMIN),
    }
