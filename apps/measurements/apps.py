from django.apps import AppConfig


class MeasurementsConfig(AppConfig):
    name = "apps.measurements"
    label = "measurements"
    verbose_name = "Measurements"

    def ready(self) -> None:
        from apps.changes import expectations, sections

        from .judging import expectation_error
        from .selectors import measurement_section

        # A change filed now must name a metric that can be checked.
        expectations.register(expectation_error)
        sections.register(measurement_section)
