from django.apps import AppConfig


class ChangesConfig(AppConfig):
    name = "apps.changes"
    label = "changes"
    verbose_name = "Changes"

    def ready(self) -> None:
        from apps.core import events
        from apps.projects.events import ProjectSynced

        from .subscribers import resolve_after_sync

        events.subscribe(ProjectSynced, resolve_after_sync)
