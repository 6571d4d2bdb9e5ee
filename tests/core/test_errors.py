"""Optional error reporting: Sentry starts only with a DSN, and a DSN without the SDK is a clear
error at start."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.config_independent

ROOT = Path(__file__).resolve().parents[2]
DSN = "https://public@errors.invalid/1"


def settle(tmp_path, code: str, **env: str) -> subprocess.CompletedProcess:
    """Run `code` after Django's setup, in a fresh process with `env`."""
    base = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "apps.settings",
        "FIXLEDGER_DATA_DIR": str(tmp_path),
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_without_a_dsn_the_sdk_is_not_even_imported(tmp_path):
    out = settle(
        tmp_path,
        "import django, sys; django.setup(); import apps.celery_app; "
        "print('sentry_sdk' in sys.modules)",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_a_dsn_starts_reporting_for_web_and_workers(tmp_path):
    code = (
        "import django; django.setup(); import sentry_sdk\n"
        "client = sentry_sdk.get_client()\n"
        "print(client.is_active(), client.dsn, sorted(client.integrations))"
    )
    out = settle(tmp_path, code, SENTRY_DSN=DSN, SENTRY_ENVIRONMENT="staging")
    assert out.returncode == 0, out.stderr
    active, dsn, integrations = out.stdout.strip().split(" ", 2)
    assert (active, dsn) == ("True", DSN)
    assert "'celery'" in integrations and "'django'" in integrations


def test_a_dsn_without_the_sdk_stops_the_process_with_a_clear_error(tmp_path):
    # The SDK made unimportable, as on a host where the optional dependency is not installed.
    code = "import sys; sys.modules['sentry_sdk'] = None; import django; django.setup()"
    out = settle(tmp_path, code, SENTRY_DSN=DSN)
    assert out.returncode != 0
    assert "SENTRY_DSN is set but the Sentry SDK is not installed" in out.stderr
    assert "pip install 'fixledger[sentry]'" in out.stderr
