import hashlib
import secrets

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.functional import cached_property

from apps.core.models import TimeStampedModel

from .roles import RANK, Role


class User(AbstractUser):
    """A person (or a CI robot) using fixledger; their role comes from their group."""

    @cached_property
    def role(self) -> Role | None:
        """The highest role among the user's groups; superusers are admins."""
        if not self.is_active:
            return None
        if self.is_superuser:
            return Role.ADMIN
        names = {g.name for g in self.groups.all()}
        held = [r for r in Role if r.value in names]
        return max(held, key=RANK.__getitem__) if held else None

    def has_role(self, role: Role) -> bool:
        """True if the user's role is `role` or ranks above it."""
        return self.role is not None and RANK[self.role] >= RANK[role]

    # The admin role is what opens Django's admin: every model permission comes with it, and
    # the services still check roles on every write made there.
    def has_perm(self, perm, obj=None) -> bool:
        return self.has_role(Role.ADMIN) or super().has_perm(perm, obj)

    def has_module_perms(self, app_label) -> bool:
        return self.has_role(Role.ADMIN) or super().has_module_perms(app_label)


def hash_token_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(TimeStampedModel):
    """A key for the REST API. Only its SHA-256 is stored; the key is shown once, at creation."""

    KEY_PREFIX_LENGTH = 8

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=KEY_PREFIX_LENGTH)
    key_hash = models.CharField(max_length=64, unique=True)
    last_used = models.DateTimeField(null=True, blank=True)
    # Refused from then on; never, if empty.
    expires_at = models.DateTimeField(null=True, blank=True)
    # Only reads (GET, HEAD, OPTIONS): e.g. for dashboards and reports that must not write.
    read_only = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created"]
        verbose_name = "API token"
        verbose_name_plural = "API tokens"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def generate_key() -> str:
        return secrets.token_urlsafe(32)
