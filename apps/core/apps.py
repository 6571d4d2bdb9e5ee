from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        # Web processes publish tasks and workers run them: both need the context handlers.
        from . import tasklog  # noqa: F401
