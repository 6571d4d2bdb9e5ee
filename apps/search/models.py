"""The search index: one denormalised row per change, so a search is one walk over one table.

Text matching lives beside these rows: on PostgreSQL in `SearchEntry.vector` (GIN), on SQLite
in the FTS5 table `search_fts` whose rowid is the change's id. Both hold the change's words and,
apart from them, its filter tokens (project, owner, status, tags, verdicts, gain steps, the
files it touched; see `apps.search.tokens`), so words and filters are intersected inside one
inverted index. `apps/search/index.py` is the only writer of all of them.
"""

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.db import models

from apps.changes.models import Change
from apps.projects.models import Project


class SearchEntry(models.Model):
    """What search needs to know about one change, kept current by `apps.search.index`."""

    # No foreign-key constraints in the database (Django still cascades deletes): on
    # PostgreSQL each new partition would copy them, locking the changes, projects and users
    # tables against every write until the transaction making it commits.
    change = models.OneToOneField(
        Change,
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="search_entry",
        db_constraint=False,
    )
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    status = models.CharField(max_length=20)
    created = models.DateTimeField()
    # One a line, for facet counts: the change's tags, and the verdicts of its latest
    # finished measurement.
    tags = models.TextField(blank=True)
    verdicts = models.TextField(blank=True)
    # {metric: gain in percent} of the latest finished measurement, and the best of them.
    gains = models.JSONField(default=dict, blank=True)
    best_gain = models.FloatField(null=True, blank=True)
    # PostgreSQL only (NULL on SQLite, whose text lives in FTS5).
    vector = SearchVectorField(null=True)

    class Meta:
        verbose_name_plural = "search entries"

    def __str__(self) -> str:
        return f"search entry of change {self.change_id}"
