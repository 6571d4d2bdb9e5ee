"""Run a Python command under tracemalloc and dump what it still holds when it ends.

Started by the attribution pass, never by the timing runs (tracing slows Python down and adds
memory of its own):

    python tracemalloc_probe.py SNAPSHOT_FILE script.py [args...]
    python tracemalloc_probe.py SNAPSHOT_FILE -m package.module [args...]

Standard library only. A script runs in a namespace this file keeps, so what its module
globals hold at the end (a cache that never evicts) is still in the snapshot.

The snapshot is written as JSON, ``[[file, line, size, count], ...]`` per allocating line, not
with ``Snapshot.dump``: the measured code runs in this process and could write anything to the
file, and the worker must never unpickle what it wrote.
"""

import json
import runpy
import sys
import tracemalloc

FRAMES = 1  # per allocation: the line that allocated, which is what the change page shows


def main() -> None:
    snapshot_file, *target = sys.argv[1:]
    if not target:
        raise SystemExit("usage: tracemalloc_probe.py SNAPSHOT_FILE script.py|-m module [args]")
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    tracemalloc.start(FRAMES)
    try:
        if target[0] == "-m":
            sys.argv = target[1:]
            namespace = runpy.run_module(target[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = target
            with open(target[0], "rb") as source:
                code = compile(source.read(), target[0], "exec")
            namespace["__file__"] = target[0]
            exec(code, namespace)  # noqa: S102 (the admin's own profile command)
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise
    finally:
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [
                tracemalloc.Filter(False, tracemalloc.__file__),
                tracemalloc.Filter(False, runpy.__file__),
                tracemalloc.Filter(False, __file__),
                tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
            ]
        )
        lines = [
            [stat.traceback[0].filename, stat.traceback[0].lineno, stat.size, stat.count]
            for stat in snapshot.statistics("lineno")
        ]
        with open(snapshot_file, "w") as dump:
            json.dump(lines, dump)
        del namespace


if __name__ == "__main__":
    main()
