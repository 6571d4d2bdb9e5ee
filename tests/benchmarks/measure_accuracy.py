"""How far the measurement harness can be trusted, with real processes on this machine.

Prints, for peak RSS measured exactly as workers measure it (launcher + wait4, interleaved
randomised blocks, the verdict rule of apps.measurements.stats):

* A/A false positives: measurements of the same deterministic command on both sides whose
  verdict is anything but "no detectable change" (target: at most 1 of 20);
* sensitivity: measurements whose "after" side holds 256 KiB more at its peak, detected as
  regressed (target: at least 19 of 20);
* the smallest detectable change the A/A runs predict, next to the research figure (~80 kB).

    .venv/bin/python tests/benchmarks/measure_accuracy.py [--measurements 20] [--runs 10]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.settings")
os.environ.setdefault("FIXLEDGER_DATA_DIR", tempfile.mkdtemp(prefix="fixledger-bench-"))

import django

django.setup()

from apps.measurements import stats  # noqa: E402
from apps.measurements.runner import CommandRunner  # noqa: E402
from apps.measurements.services import plan_sides  # noqa: E402

BASE = 30 * 1024 * 1024
EXTRA = 256 * 1024
# Bytes filled with a non-zero value are really written, so their pages are resident.
PROGRAM = "x = b'\\x01' * {size}"


def measure(runner: CommandRunner, before: int, after: int, runs: int, seed: int):
    argv = {
        "before": [sys.executable, "-c", PROGRAM.format(size=before)],
        "after": [sys.executable, "-c", PROGRAM.format(size=after)],
    }
    peaks = {"before": [], "after": []}
    failed = 0
    for side, warmup in plan_sides(runs_per_side=runs, warmups=1, seed=seed):
        result = runner.run(argv[side], cwd=Path.cwd(), env={}, timeout=30)
        if warmup:
            continue
        if result.ok:
            peaks[side].append(float(result.peak_rss_bytes))
        else:
            failed += 1
    return stats.compare(
        peaks["before"], peaks["after"], metric="peak_rss", unit="bytes", failed_runs=failed
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measurements", type=int, default=20)
    parser.add_argument("--runs", type=int, default=10, help="runs per side")
    args = parser.parse_args()
    runner = CommandRunner(sandbox=None)
    started = time.monotonic()

    aa = [measure(runner, BASE, BASE, args.runs, seed) for seed in range(args.measurements)]
    false_positives = sum(c.verdict != stats.Verdict.NO_CHANGE for c in aa)
    noise = statistics.median(c.noise for c in aa)
    predicted = stats.smallest_detectable(noise, args.runs)

    ab = [
        measure(runner, BASE, BASE + EXTRA, args.runs, 1000 + seed)
        for seed in range(args.measurements)
    ]
    detected = sum(c.verdict == stats.Verdict.REGRESSED for c in ab)
    shifts = [c.change for c in ab if c.change is not None]

    n = args.measurements
    print(f"peak RSS, {args.runs} runs per side, {n} measurements each, on this machine")
    print(f"  A/A false positives ............ {false_positives} of {n}   (target <= 1)")
    print(f"  A/A run-to-run noise (median) .. {noise / 1000:.1f} kB")
    print(f"  +256 KiB detected as regressed . {detected} of {n}   (target >= 19)")
    print(f"  measured shift (median) ........ {statistics.median(shifts) / 1024:.0f} KiB")
    print(f"  smallest detectable change ..... {predicted / 1000:.0f} kB (research: ~80 kB)")
    print(f"  took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
