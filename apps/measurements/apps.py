from django.apps import AppConfig


class MeasurementsConfig(AppConfig):
    name = "apps.measurements"
    label = "measurements"
    verbose_name = "Measurements"

    def ready(self) -> None:
        from apps.core.audit import register_audit_labels

        from .metrics import builtin_label

        # "measured" entries on a change record each metric's verdict under its key.
        register_audit_labels(builtin_label)
