"""What the bubblewrap sandbox costs and whether it changes what is measured: a script.

1. Peak RSS. A command allocating and touching a 100 MiB bytearray runs REPEATS times inside the
   sandbox and REPEATS times outside, interleaved. Printed: the median peaks and their ratio
   (must agree within 1 %: the launcher runs inside, so wait4 still sees the target alone).
2. Run overhead. A command that spins for 0.2 s, REPEATS times with and without the sandbox,
   interleaved. Printed: median wall time as recorded (fork to exit, inside the sandbox) and end
   to end (CommandRunner.run, bwrap's start-up and teardown included), as ratios; target <= 1.05.

    .venv/bin/python tests/benchmarks/sandbox.py
"""

import os
import statistics
import sys
import tempfile
import time

from apps.measurements.runner import CommandRunner
from apps.measurements.sandbox import Sandbox, probe

REPEATS = 21
ALLOCATE = "b = bytearray(100 * 1024 * 1024)\nfor i in range(0, len(b), 4096): b[i] = 1"
SPIN = "import time\nt = time.perf_counter()\nwhile time.perf_counter() - t < 0.2: pass"


def interleaved(runners: dict[str, CommandRunner], code: str, cwd: str) -> dict[str, list]:
    results: dict[str, list] = {name: [] for name in runners}
    for _ in range(REPEATS):
        for name, runner in runners.items():
            started = time.perf_counter()
            result = runner.run([sys.executable, "-c", code], cwd=cwd, env={}, timeout=60)
            assert result.ok, result.failure
            results[name].append((result, time.perf_counter() - started))
    return results


def main() -> None:
    sandbox = Sandbox.for_host(hidden=[])
    reason = probe(sandbox)
    if reason:
        raise SystemExit(f"this host cannot sandbox: {reason}")
    runners = {"outside": CommandRunner(sandbox=None), "inside": CommandRunner(sandbox=sandbox)}
    print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {sandbox.bwrap}")
    with tempfile.TemporaryDirectory() as cwd:
        interleaved(runners, "pass", cwd)  # warm caches

        peaks = interleaved(runners, ALLOCATE, cwd)
        medians = {
            name: statistics.median(result.peak_rss_bytes for result, _ in runs)
            for name, runs in peaks.items()
        }
        print(f"peak RSS of a touched 100 MiB bytearray, {REPEATS} interleaved runs (medians):")
        for name, peak in medians.items():
            print(f"  {name:8} {peak / 1024 / 1024:8.2f} MiB")
        print(
            f"  ratio inside/outside {medians['inside'] / medians['outside']:.4f}"
            "  (must be within 1 %)"
        )

        spins = interleaved(runners, SPIN, cwd)
        recorded = {
            n: statistics.median(r.wall_seconds for r, _ in runs) for n, runs in spins.items()
        }
        outer = {n: statistics.median(wall for _, wall in runs) for n, runs in spins.items()}
        print(f"a 0.2 s spin, {REPEATS} interleaved runs (medians):")
        for name in runners:
            print(
                f"  {name:8} recorded {recorded[name] * 1000:7.1f} ms"
                f"   end to end {outer[name] * 1000:7.1f} ms"
            )
        print(
            f"  ratio inside/outside: recorded {recorded['inside'] / recorded['outside']:.3f},"
            f" end to end {outer['inside'] / outer['outside']:.3f}  (target <= 1.05)"
        )


if __name__ == "__main__":
    main()
