from django.apps import AppConfig
from django.db.models.signals import post_migrate


def ensure_role_groups(sender, using="default", **kwargs) -> None:
    """One group per role, on every migrate and every flush, so roles can never go missing."""
    from django.contrib.auth.models import Group

    from .roles import Role

    for role in Role:
        Group.objects.using(using).get_or_create(name=role.value)


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        post_migrate.connect(ensure_role_groups, sender=self)
