"""The backup and restore steps of deploy/README.md, as an operator runs them: pg_dump of the
database, pg_restore into a fresh one, and the restored install finds a change filed before."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from apps.changes.services import change_create

from ..workers import database_url

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the PostgreSQL backup steps; SQLite is a file copy"
)


def test_a_restore_from_pg_dump_finds_a_change_filed_before(
    transactional_db, engineer, project, tmp_path
):
    filed = change_create(
        actor=engineer,
        project=project,
        title="Bound the zeppelin cache",
        reason="It never evicts.",
        expected_result="peak RSS -30 %",
    )
    source = database_url()
    restored = f"{connection.settings_dict['NAME']}_restored"
    # The application's role, as deploy/README.md creates it: it owns the restored database.
    role = f"{restored}_owner"
    server = source.rsplit("/", 1)[0]
    admin_db = f"--maintenance-db={server}/postgres"
    conf = connection.settings_dict
    app_url = f"postgres://{role}@{conf['HOST']}:{conf['PORT'] or 5432}/{restored}"
    dump = tmp_path / "fixledger.dump"
    # The steps of deploy/README.md, "Backup and restore".
    subprocess.run(["pg_dump", "--format=custom", f"--file={dump}", source], check=True)
    subprocess.run(["dropdb", "--if-exists", admin_db, restored])
    psql(server, f'DROP ROLE IF EXISTS "{role}"')
    psql(server, f'CREATE ROLE "{role}" LOGIN')
    try:
        subprocess.run(["createdb", admin_db, f"--owner={role}", restored], check=True)
        subprocess.run(
            ["pg_restore", "--no-owner", f"--role={role}", f"--dbname={server}/{restored}"],
            stdin=dump.open("rb"),
            check=True,
        )
        owners = subprocess.run(
            ["psql", "-At", f"--dbname={server}/{restored}", "-c", OWNERS],
            capture_output=True,
            text=True,
            check=True,
        )
        assert set(owners.stdout.split()) == {role}, "every table is the application role's"
        code = (
            "import django; django.setup()\n"
            "from apps.search.selectors import SearchParams, search\n"
            "print([h.change.number for h in search(SearchParams(q='zeppelin')).hits])\n"
        )
        out = subprocess.run(
            [sys.executable, "-W", "ignore", "-c", code],
            cwd=ROOT,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "apps.settings",
                "DATABASE_URL": app_url,
            },
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.strip() == str([filed.number])
        check = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--check"],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": app_url},
            capture_output=True,
            text=True,
        )
        assert check.returncode == 0, "the restored schema is the code's: no migration pending"
    finally:
        connection.close()
        subprocess.run(["dropdb", "--if-exists", "--force", admin_db, restored])
        psql(server, f'DROP ROLE IF EXISTS "{role}"')


OWNERS = "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"


def psql(server: str, sql: str) -> None:
    subprocess.run(["psql", "--quiet", f"--dbname={server}/postgres", "-c", sql], check=True)
