"""The client installs without the server: it may import the standard library and itself only."""

import subprocess
import sys

import pytest

from .conftest import CLIENT, run_fixledger

PROBE = """
import sys
sys.path.insert(0, sys.argv[1])
before = set(sys.modules)
import fixledger_client.cli, fixledger_client.api, fixledger_client.report
added = {name.split(".")[0] for name in set(sys.modules) - before}
print(",".join(sorted(added - set(sys.stdlib_module_names) - {"fixledger_client"})))
"""


@pytest.mark.config_independent
def test_the_client_imports_only_the_standard_library():
    # -I -S: no site-packages, no PYTHONPATH, no current folder; only client/ is added.
    found = subprocess.run(
        [sys.executable, "-I", "-S", "-c", PROBE, str(CLIENT)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.strip() == ""


@pytest.mark.config_independent
def test_help_documents_the_exit_codes_and_bad_arguments_exit_3():
    run = [
        sys.executable,
        "-I",
        "-c",
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from fixledger_client.cli import main; raise SystemExit(main(sys.argv[2:]))",
    ]
    shown = subprocess.run([*run, str(CLIENT), "measure", "--help"], capture_output=True, text=True)
    assert shown.returncode == 0
    for code in (
        "0  measured",
        "1  a gating or critical metric regressed",
        "2  no answer",
        "3  usage",
    ):
        assert code in shown.stdout
    bad = subprocess.run([*run, str(CLIENT), "measure"], capture_output=True, text=True)
    assert bad.returncode == 3
    assert "--profile" in bad.stderr


@pytest.mark.config_independent
def test_an_unreachable_server_exits_3(closed_port_url):
    ran = run_fixledger("measure", "FIX-1", "--profile", "p", url=closed_port_url, token="x")
    assert ran.code == 3
    assert "Cannot reach" in ran.stderr


@pytest.mark.config_independent
def test_no_token_exits_3(closed_port_url):
    ran = run_fixledger("measure", "FIX-1", "--profile", "p", url=closed_port_url, token="")
    assert ran.code == 3
    assert "FIXLEDGER_TOKEN" in ran.stderr
