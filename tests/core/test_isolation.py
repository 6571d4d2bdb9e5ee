"""Two checkouts on one host test at once: each has its own database and its own broker keys."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def make_names(curdir: str, **overrides: str) -> dict[str, str]:
    """The database URL and key prefix `make test-services` would use in checkout `curdir`."""
    argv = ["make", "-n", "-f", str(ROOT / "Makefile"), f"CURDIR={curdir}", "test-services"]
    argv += [f"{name}={value}" for name, value in overrides.items()]
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return {
        "database": re.search(r"DATABASE_URL=(\S+)", out).group(1),
        "prefix": re.search(r"CELERY_BROKER_KEY_PREFIX=(\S+)", out).group(1),
    }


@pytest.mark.config_independent
def test_two_checkouts_get_their_own_database_and_key_prefix():
    one, other = make_names("/srv/a/fixledger"), make_names("/srv/b/fixledger")
    assert one["database"] != other["database"]
    assert one["prefix"] != other["prefix"]
    assert one == make_names("/srv/a/fixledger"), "the names must be stable for one checkout"


@pytest.mark.config_independent
def test_the_names_stay_overridable():
    names = make_names(
        "/srv/a/fixledger",
        TEST_DATABASE_URL="postgres://u@db/mine",
        TEST_BROKER_KEY_PREFIX="mine:",
    )
    assert names == {"database": "postgres://u@db/mine", "prefix": "mine:"}


@pytest.mark.config_independent
def test_the_key_prefix_reaches_the_redis_transport(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "FIXLEDGER_DATA_DIR": str(tmp_path),
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/15",
        "CELERY_BROKER_KEY_PREFIX": "checkout-a:",
    }
    code = "import apps.settings as s; print(s.CELERY_BROKER_TRANSPORT_OPTIONS['global_keyprefix'])"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "checkout-a:"


@pytest.mark.skipif(
    not settings.CELERY_BROKER_URL.startswith("redis://"), reason="only Redis has shared keys"
)
def test_messages_land_under_the_configured_prefix(transactional_db):
    import redis

    from apps.celery_app import app

    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
    queue = "isolation-probe"
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(prefix + queue)
    try:
        app.send_task("apps.core.tasks.nothing", queue=queue)
        assert client.llen(prefix + queue) == 1
        if prefix:
            assert client.llen(queue) == 0, "an unprefixed key would be seen by other checkouts"
    finally:
        client.delete(prefix + queue)
