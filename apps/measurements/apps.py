from django.apps import AppConfig


class MeasurementsConfig(AppConfig):
    name = "apps.measurements"
    label = "measurements"
    verbose_name = "Measurements"

    def ready(self) -> None:
        from apps.changes import expectations, sections
        from apps.core.audit import register_audit_labels

        from .judging import expectation_error
        from .metrics import builtin_label
        from .selectors import measurement_section

        # A change filed now must name a metric that can be checked.
        expectations.register(expectation_error)
        sections.register(measurement_section)
        # "measured" entries on a change record each metric's verdict under its key.
        register_audit_labels(builtin_label)
