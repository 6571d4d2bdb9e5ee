"""A lean web tier: web processes do not import numpy or scipy, which only workers need."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.config_independent

ROOT = Path(__file__).resolve().parents[2]


def test_a_web_process_imports_neither_numpy_nor_scipy(tmp_path):
    code = (
        "import django, sys; django.setup()\n"
        "import apps.urls, apps.wsgi\n"
        "from django.urls import get_resolver; get_resolver().url_patterns\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'numpy', 'scipy'})\n"
        "from apps.measurements import stats\n"
        "stats.Verdict('improved'); stats.parse_expectation('peak RSS -20 %')\n"
        "print(heavy, 'numpy' in sys.modules)\n"
    )
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "apps.settings",
        "FIXLEDGER_DATA_DIR": str(tmp_path),
    }
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[] False"


def test_the_statistics_still_compute_once_loaded():
    from apps.measurements import stats

    before = [100.0, 101, 99, 100, 102, 98, 100, 101, 99, 100]
    after = [80.0, 81, 79, 80, 82, 78, 80, 81, 79, 80]
    comparison = stats.compare(before, after, metric="peak_rss", unit="B")
    assert comparison.verdict == stats.Verdict.IMPROVED
