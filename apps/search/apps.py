from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _index_after_migrate(sender, using="default", **kwargs) -> None:
    """After every migrate (and flush): index the changes the search index lacks, with the
    index code of this release, so a migration can reshape the index by emptying it.
    Not while the database is migrated to an older schema than this code writes."""
    from django.db import connections
    from django.db.migrations.executor import MigrationExecutor

    from .index import index_missing

    executor = MigrationExecutor(connections[using])
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        return
    index_missing()


class SearchConfig(AppConfig):
    name = "apps.search"
    label = "search"
    verbose_name = "Search"

    def ready(self) -> None:
        from apps.changes.events import (
            ChangeEdited,
            ChangeReadyForReview,
            ChangeRolledBack,
            ChangesFiled,
            ChangeShipped,
            RevisionsResolved,
        )
        from apps.core import events
        from apps.measurements.events import MeasurementFinished, MeasurementRequested

        from .subscribers import index_changed, index_filed

        post_migrate.connect(_index_after_migrate, sender=self)
        events.subscribe(ChangesFiled, index_filed)
        # Text, files touched, status, final notes, verdicts and gains are all searchable.
        for event_type in (
            ChangeEdited,
            RevisionsResolved,
            MeasurementRequested,
            MeasurementFinished,
            ChangeReadyForReview,
            ChangeShipped,
            ChangeRolledBack,
        ):
            events.subscribe(event_type, index_changed)
