from django.apps import AppConfig


class ChecklistsConfig(AppConfig):
    name = "apps.checklists"
    label = "checklists"
    verbose_name = "Checklists"

    def ready(self) -> None:
        from apps.changes import sections
        from apps.changes.events import ChangesFiled
        from apps.core import events
        from apps.measurements.events import MeasurementFinished

        from .selectors import checklist_section
        from .subscribers import copy_checklists, record_staging_config

        events.subscribe(ChangesFiled, copy_checklists)
        events.subscribe(MeasurementFinished, record_staging_config)
        sections.register(checklist_section)
