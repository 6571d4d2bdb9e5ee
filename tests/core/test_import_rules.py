"""The apps' import rules (DESIGN.md rule 8) are held by import-linter, run in `make test`."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.config_independent


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    # The package under `root` is the one analysed: PYTHONPATH comes before the installed one.
    return subprocess.run(
        [LINT_IMPORTS, "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_apps_keep_the_rules():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # Even an import inside a function counts.
        ("changes/services.py", "    from apps.checklists import models", "apps.changes"),
        ("core/audit.py", "    from apps.projects.models import Project", "apps.core"),
        ("measurements/models.py", "    import apps.search.index", "apps.measurements"),
        ("search/models.py", "    import apps.operations.fleet", "apps.search"),
    ],
)
def test_breaking_a_rule_fails_the_check(tmp_path, module, line, broken):
    copy = tmp_path / "checkout"
    shutil.copytree(ROOT / "apps", copy / "apps", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    target = copy / "apps" / module
    target.write_text(target.read_text() + f"\n\ndef _reaches_up():\n{line}\n")
    result = lint_imports(copy)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{broken} is not allowed to import" in result.stdout
