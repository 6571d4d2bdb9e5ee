from django.apps import AppConfig


class OperationsConfig(AppConfig):
    """Running an installation: bootstrapping it, serving it on one host, and the workers that
    do its work. It looks at the work of every domain app, so it sits above them all."""

    name = "apps.operations"
    label = "operations"
    verbose_name = "Operations"

    def ready(self) -> None:
        from apps.core import health

        from . import fleet

        health.register_warnings(fleet.readiness_warnings)
