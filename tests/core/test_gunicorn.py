"""Several gunicorn instances on one host: each keeps its own control socket."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.config_independent

ROOT = Path(__file__).resolve().parents[2]


def control_socket(tmp_path, **env: str) -> str:
    """The control socket gunicorn reads from deploy/gunicorn.conf.py under `env`."""
    code = (
        "from gunicorn.config import Config; c = Config(); "
        "ns = {}; exec(open('deploy/gunicorn.conf.py').read(), ns); "
        "c.set('control_socket', ns['control_socket']); print(c.control_socket)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_two_instances_on_one_host_have_their_own_control_socket(tmp_path):
    one = control_socket(tmp_path, FIXLEDGER_DATA_DIR="/srv/one", PORT="8001")
    other = control_socket(tmp_path, FIXLEDGER_DATA_DIR="/srv/one", PORT="8002")
    elsewhere = control_socket(tmp_path, FIXLEDGER_DATA_DIR="/srv/two", PORT="8001")
    assert one == "/srv/one/gunicorn-8001.ctl"
    assert len({one, other, elsewhere}) == 3
    assert not one.startswith(str(tmp_path)), "not the per-user default that instances share"
