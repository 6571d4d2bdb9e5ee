"""The allocation attribution pass: which lines hold less (or more) memory after the change.

Separate from the timing runs, after them: tracing slows Python down and costs memory itself.
Each revision runs once under tracemalloc_probe.py, checked out in turn at the same path so that
both snapshots name the same files and `Snapshot.compare_to` can diff them directly.
"""

import re
import tempfile
import tracemalloc
from pathlib import Path

from apps.projects import repository

from .models import Measurement, Side

PROBE = Path(__file__).with_name("tracemalloc_probe.py")
TOP_SITES = 15
# Tracing every allocation makes a Python program several times slower.
TIMEOUT_FACTOR = 5
_PYTHON = re.compile(r"^python[0-9.]*$")


def is_python_command(argv: list[str]) -> bool:
    """A Python interpreter running a script or a module: what the probe knows how to run."""
    return (
        len(argv) >= 2
        and bool(_PYTHON.match(Path(argv[0]).name))
        and (argv[1] == "-m" or argv[1].endswith(".py"))
    )


def attribute(measurement: Measurement, runner, *, worker: str) -> list[dict]:
    """Top allocation sites by change in size, after vs before; or one entry with an error."""
    profile = measurement.profile
    folder = f"attribution-{measurement.pk}"
    snapshots = {}
    with tempfile.TemporaryDirectory(prefix="fixledger-attribution-") as scratch:
        for side, sha in ((Side.BEFORE, measurement.base_sha), (Side.AFTER, measurement.head_sha)):
            with repository.checkout(profile.project, sha, worker=worker, name=folder) as tree:
                dump = Path(scratch) / f"{side}.snapshot"
                result = runner.run(
                    [profile.argv[0], str(PROBE), str(dump), *profile.argv[1:]],
                    cwd=tree,
                    env=profile.env,
                    timeout=float(profile.timeout_seconds * TIMEOUT_FACTOR),
                )
                if not result.ok or not dump.exists():
                    return [
                        {
                            "error": f"The {side} revision failed under tracemalloc: "
                            f"{result.failure or 'no snapshot'}."
                        }
                    ]
                snapshots[side] = tracemalloc.Snapshot.load(str(dump))
                root = str(tree) + "/"
    diffs = snapshots[Side.AFTER].compare_to(snapshots[Side.BEFORE], "lineno")
    diffs.sort(key=lambda d: abs(d.size_diff), reverse=True)
    return [
        {
            "file": d.traceback[0].filename.removeprefix(root),
            "line": d.traceback[0].lineno,
            "before": d.size - d.size_diff,
            "after": d.size,
            "diff": d.size_diff,
            "count_diff": d.count_diff,
        }
        for d in diffs[:TOP_SITES]
        if d.size_diff
    ]
