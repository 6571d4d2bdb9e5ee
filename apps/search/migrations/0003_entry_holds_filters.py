"""Filters move into the text index as tokens (see apps/search/tokens.py): the side tables of
tags and metrics, the per-column indexes and the path trigrams give way to one inverted index.
The index is derived data: its rows are emptied here and rebuilt from the changes after the
migration (`apps.search.index.index_missing`, on post_migrate), by the code that reads them now.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

SQLITE_FORWARD = [
    "DROP TABLE IF EXISTS search_paths",
    "DROP TABLE IF EXISTS search_fts",
    # a-d: the four weight classes of words; f: filter tokens (digits only, see index.py).
    "CREATE VIRTUAL TABLE search_fts USING fts5(a, b, c, d, f, "
    "tokenize = 'porter unicode61 remove_diacritics 2')",
]
SQLITE_BACKWARD = [
    "DROP TABLE IF EXISTS search_fts",
    "CREATE VIRTUAL TABLE search_fts USING fts5(a, b, c, d, "
    "tokenize = 'porter unicode61 remove_diacritics 2')",
    "CREATE VIRTUAL TABLE search_paths USING fts5(paths, tokenize = 'trigram')",
]


def _entry_table(partitioned: bool) -> list[str]:
    """The entry table as Django's model makes it (no foreign-key constraints: see the model),
    on PostgreSQL partitioned by ranges of change ids (see apps.search.partitions), so each
    slice of changes has a GIN index of its own."""
    return [
        "DROP TABLE search_searchentry",
        "CREATE TABLE search_searchentry ("
        " change_id bigint NOT NULL PRIMARY KEY,"
        " project_id bigint NOT NULL,"
        " owner_id bigint NOT NULL,"
        " status varchar(20) NOT NULL,"
        " created timestamp with time zone NOT NULL,"
        " tags text NOT NULL,"
        " verdicts text NOT NULL,"
        " gains jsonb NOT NULL,"
        " best_gain double precision NULL,"
        " vector tsvector NULL"
        ")" + (" PARTITION BY RANGE (change_id)" if partitioned else ""),
        "CREATE INDEX search_searchentry_project_id ON search_searchentry (project_id)",
        "CREATE INDEX search_searchentry_owner_id ON search_searchentry (owner_id)",
        "CREATE INDEX search_vector_gin ON search_searchentry USING gin (vector)",
    ]


def _postgres(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for sql in statements:
                schema_editor.execute(sql)

    return run


def _sqlite(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "sqlite":
            for sql in statements:
                schema_editor.execute(sql)

    return run


def empty_index(apps, schema_editor):
    schema_editor.execute("DELETE FROM search_searchentry")


class Migration(migrations.Migration):

    dependencies = [
        ("search", "0002_text_indexes"),
        ("changes", "0003_shipping"),
        ("projects", "0004_release_tags_and_config"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='searchentry',
            name='search_created_idx',
        ),
        migrations.RemoveIndex(
            model_name='searchentry',
            name='search_project_idx',
        ),
        migrations.RemoveIndex(
            model_name='searchentry',
            name='search_owner_idx',
        ),
        migrations.RemoveIndex(
            model_name='searchentry',
            name='search_status_idx',
        ),
        migrations.RemoveIndex(
            model_name='searchentry',
            name='search_best_gain_idx',
        ),
        migrations.RemoveField(
            model_name='searchentry',
            name='paths',
        ),
        migrations.AddField(
            model_name='searchentry',
            name='gains',
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name='searchentry',
            name='tags',
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name='searchentry',
            name='verdicts',
            field=models.TextField(blank=True),
        ),
        migrations.DeleteModel(
            name='SearchMetric',
        ),
        migrations.DeleteModel(
            name='SearchTag',
        ),
        migrations.AlterField(
            model_name="searchentry",
            name="change",
            field=models.OneToOneField(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                primary_key=True,
                related_name="search_entry",
                serialize=False,
                to="changes.change",
            ),
        ),
        migrations.AlterField(
            model_name="searchentry",
            name="owner",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="searchentry",
            name="project",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="projects.project",
            ),
        ),
        migrations.RunPython(empty_index, migrations.RunPython.noop),
        migrations.RunPython(_sqlite(SQLITE_FORWARD), _sqlite(SQLITE_BACKWARD)),
        migrations.RunPython(_postgres(_entry_table(True)), _postgres(_entry_table(False))),
    ]
