"""The allocation attribution pass: which lines hold less (or more) memory after the change.

Separate from the timing runs, after them: tracing slows Python down and costs memory itself.
Each revision runs once under tracemalloc_probe.py, checked out in turn at the same path so that
both snapshots name the same files and `Snapshot.compare_to` can diff them directly.
"""

import json
import os
import re
import stat
from pathlib import Path

from apps.projects import repository

from .models import Measurement, Side

PROBE = Path(__file__).with_name("tracemalloc_probe.py")
TOP_SITES = 15
# Tracing every allocation makes a Python program several times slower.
TIMEOUT_FACTOR = 5
# Beside the code, in the worktree: the one place the sandboxed probe may write.
DUMP = ".fixledger-allocations.json"
# The dump is written by the measured code's own process: read it as untrusted input.
MAX_DUMP_BYTES = 64 * 1024 * 1024
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
    for side, sha in ((Side.BEFORE, measurement.base_sha), (Side.AFTER, measurement.head_sha)):
        with repository.checkout(profile.project, sha, worker=worker, name=folder) as tree:
            dump = tree / DUMP
            result = runner.run(
                [profile.argv[0], str(PROBE), str(dump), *profile.argv[1:]],
                cwd=tree,
                env=profile.env,
                timeout=float(profile.timeout_seconds * TIMEOUT_FACTOR),
            )
            snapshots[side] = _load(dump) if result.ok else None
            if snapshots[side] is None:
                return [
                    {
                        "error": f"The {side} revision failed under tracemalloc: "
                        f"{result.failure or 'no snapshot'}."
                    }
                ]
            root = str(tree) + "/"
    before, after = snapshots[Side.BEFORE], snapshots[Side.AFTER]
    sites = []
    for key in after.keys() | before.keys():
        (size, count), (old_size, old_count) = after.get(key, (0, 0)), before.get(key, (0, 0))
        if size != old_size:
            sites.append(
                {
                    "file": key[0].removeprefix(root),
                    "line": key[1],
                    "before": old_size,
                    "after": size,
                    "diff": size - old_size,
                    "count_diff": count - old_count,
                }
            )
    sites.sort(key=lambda site: (-abs(site["diff"]), site["file"], site["line"]))
    return sites[:TOP_SITES]


def _load(dump: Path) -> dict[tuple[str, int], tuple[int, int]] | None:
    """{(file, line): (size, count)} from the probe's JSON; None when it is missing or bogus."""
    try:
        # Not followed if the revision made it a link (to the worker's secrets, say).
        fd = os.open(dump, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as file:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            data = file.read(MAX_DUMP_BYTES + 1)
        if len(data) > MAX_DUMP_BYTES:
            return None
        rows = json.loads(data)
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(rows, list):
        return None
    sites = {}
    for row in rows:
        if not (
            isinstance(row, list)
            and len(row) == 4
            and isinstance(row[0], str)
            and all(type(value) is int for value in row[1:])
        ):
            return None
        sites[(row[0], row[1])] = (row[2], row[3])
    return sites
