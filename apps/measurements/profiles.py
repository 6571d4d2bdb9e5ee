"""Measurement profiles: what workers run and how verdicts are judged, saved audited."""

from django.core.exceptions import ValidationError

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.accounts.services import require_role
from apps.core.services import record_save

from . import metrics
from .models import (
    Profile,
)
from .validators import validate_http_plan, validate_reset

PROFILE_FIELDS = [
    "project",
    "name",
    "environment",
    "kind",
    "argv",
    "setup_argv",
    "env",
    "runs_per_side",
    "warmups",
    "timeout_seconds",
    "memory_limit_mb",
    "stop_on_failure",
    "attribution",
    "metric_policy",
    "max_runs_per_side",
    "extension_runs",
    "http_target",
    "ready_path",
    "startup_timeout_seconds",
    "http_plan",
    "reset",
]


def profile_save(*, actor: User | None, profile: Profile) -> Profile:
    """Define or edit a profile: only admins decide what workers run. `None` is the system."""
    if actor is not None:
        require_role(actor, Role.ADMIN, doing="define measurement profiles")
    try:
        # Stored by key, whatever label or alias the admin wrote.
        profile.metric_policy = metrics.validate_policy(profile.metric_policy or {})
    except metrics.PolicyError as exc:
        raise ValidationError({"metric_policy": str(exc)}) from None
    for name, check in (("http_plan", validate_http_plan), ("reset", validate_reset)):
        try:
            check(getattr(profile, name))
        except ValidationError as exc:
            raise ValidationError({name: exc.messages}) from None
    profile.clean()  # kind-specific rules: {port} to serve, a base URL to probe staging
    return record_save(actor=actor, obj=profile, fields=PROFILE_FIELDS)
