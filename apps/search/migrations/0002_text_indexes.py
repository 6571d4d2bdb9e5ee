"""The text side of the index, which differs per database (see apps/search/models.py)."""

import sqlite3

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

POSTGRES_FORWARD = [
    "CREATE INDEX search_vector_gin ON search_searchentry USING gin (vector)",
    "CREATE INDEX search_paths_trgm ON search_searchentry USING gin (paths gin_trgm_ops)",
]
POSTGRES_BACKWARD = [
    "DROP INDEX IF EXISTS search_paths_trgm",
    "DROP INDEX IF EXISTS search_vector_gin",
]
SQLITE_FORWARD = [
    # Four weight classes, like PostgreSQL's A-D; bm25() weighs the columns at query time.
    "CREATE VIRTUAL TABLE search_fts USING fts5(a, b, c, d, "
    "tokenize = 'porter unicode61 remove_diacritics 2')",
    # Trigrams make any substring of three or more characters an index lookup.
    "CREATE VIRTUAL TABLE search_paths USING fts5(paths, tokenize = 'trigram')",
]
SQLITE_BACKWARD = ["DROP TABLE IF EXISTS search_paths", "DROP TABLE IF EXISTS search_fts"]


def _run(statements):
    def run(apps, schema_editor):
        vendor = schema_editor.connection.vendor
        if vendor == "sqlite" and statements is SQLITE_FORWARD:
            if sqlite3.sqlite_version_info < (3, 34, 0):
                raise RuntimeError(
                    f"Search needs SQLite 3.34 or newer (trigram tokenizer); this Python "
                    f"links SQLite {sqlite3.sqlite_version}."
                )
        wanted = "postgresql" if statements in (POSTGRES_FORWARD, POSTGRES_BACKWARD) else "sqlite"
        if vendor != wanted:
            return
        for sql in statements:
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("search", "0001_initial")]

    operations = [
        # A no-op on databases other than PostgreSQL.
        TrigramExtension(),
        migrations.RunPython(_run(POSTGRES_FORWARD), _run(POSTGRES_BACKWARD)),
        migrations.RunPython(_run(SQLITE_FORWARD), _run(SQLITE_BACKWARD)),
    ]
