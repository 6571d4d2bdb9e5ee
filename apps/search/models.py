"""The search index: one denormalised row per change, so filters and facets need no joins.

Text matching lives beside these rows: on PostgreSQL in `SearchEntry.vector` (GIN) and a trigram
index on `paths`; on SQLite in two FTS5 tables (`search_fts`, `search_paths`) whose rowid is the
change's id. `apps/search/index.py` is the only writer of all of them.
"""

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.db import models

from apps.changes.models import Change
from apps.projects.models import Project


class SearchEntry(models.Model):
    """What search needs to know about one change, kept current by `apps.search.index`."""

    change = models.OneToOneField(
        Change, primary_key=True, on_delete=models.CASCADE, related_name="search_entry"
    )
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=20)
    created = models.DateTimeField()
    # Lower-cased files touched, one a line: substring matches for `cache.py`, `apps/billing/`.
    paths = models.TextField(blank=True)
    # Over every metric of the change's latest finished measurement, for sort=gain.
    best_gain = models.FloatField(null=True, blank=True)
    # PostgreSQL only (NULL on SQLite, whose text lives in FTS5).
    vector = SearchVectorField(null=True)

    class Meta:
        indexes = [
            # Browsing without words: newest first, optionally within one project/owner/status.
            models.Index(fields=["-created", "-change"], name="search_created_idx"),
            models.Index(fields=["project", "-created"], name="search_project_idx"),
            models.Index(fields=["owner", "-created"], name="search_owner_idx"),
            models.Index(fields=["status", "-created"], name="search_status_idx"),
            # sort=gain without a metric.
            models.Index(fields=["-best_gain"], name="search_best_gain_idx"),
        ]

    def __str__(self) -> str:
        return f"search entry of change {self.change_id}"


class SearchTag(models.Model):
    """One tag of an indexed change: the tag filter and the tag facet."""

    entry = models.ForeignKey(SearchEntry, on_delete=models.CASCADE, related_name="tag_rows")
    tag = models.CharField(max_length=50)

    class Meta:
        indexes = [
            # tag=<t>: the changes carrying it.
            models.Index(fields=["tag", "entry"], name="search_tag_idx"),
        ]

    def __str__(self) -> str:
        return self.tag


class SearchMetric(models.Model):
    """One metric of a change's latest finished measurement: its verdict and its gain.

    `gain` is the improvement in percent whatever the metric's direction: a peak RSS that fell
    12 % and a throughput that rose 12 % both have gain 12.
    """

    entry = models.ForeignKey(SearchEntry, on_delete=models.CASCADE, related_name="metric_rows")
    metric = models.CharField(max_length=100)
    verdict = models.CharField(max_length=30)
    gain = models.FloatField(null=True, blank=True)

    class Meta:
        indexes = [
            # "gain at least X % on metric M", and the known-metric check.
            models.Index(fields=["metric", "gain", "entry"], name="search_metric_gain_idx"),
            # verdict=<v>: changes with any metric of that verdict.
            models.Index(fields=["verdict", "entry"], name="search_verdict_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.metric}: {self.verdict}"
