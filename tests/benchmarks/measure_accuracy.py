"""How far the measurement harness can be trusted, with real processes on this machine.

Measures, exactly as workers do (launcher + wait4, interleaved randomised blocks, the verdict
rule of apps.measurements.stats and the default metric policy of apps.measurements.metrics),
a command that fills 30 MiB, and prints two designs side by side on the same runs:

* adaptive: the planned runs, then blocks added while a gating metric (peak RSS, wall time,
  CPU time) is undecided, up to a maximum, each look at its Lan-DeMets Pocock-type level;
* fixed: the planned runs only, at the full alpha.

For each: A/A measurements (the same command on both sides) with a false verdict on any gating
metric (target: at most 1 of 20); measurements whose after side holds 256 KiB more at its
peak that call peak RSS regressed (target: at least 19 of 20); and the mean runs per side.

    .venv/bin/python tests/benchmarks/measure_accuracy.py [--measurements 20] [--runs 10]
        [--max-runs 40] [--block 10]
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

from apps.measurements import metrics, stats  # noqa: E402
from apps.measurements.lifecycle import plan_sides  # noqa: E402
from apps.measurements.runner import CommandRunner  # noqa: E402

BASE = 30 * 1024 * 1024
EXTRA = 256 * 1024
# Bytes filled with a non-zero value are really written, so their pages are resident.
PROGRAM = "x = b'\\x01' * {size}"
POLICY = metrics.Policy(kind="command", overrides={})
GATING = [m for m in POLICY.builtin() if m.role is not metrics.Role.INFORMATIONAL]


def run_block(runner, argv, values, runs: int, warmups: int, seed: int) -> int:
    """Run one interleaved block, appending each metric's value per side; returns failures."""
    failed = 0
    for side, warmup in plan_sides(runs_per_side=runs, warmups=warmups, seed=seed):
        result = runner.run(argv[side], cwd=Path.cwd(), env={}, timeout=30)
        if warmup:
            continue
        if not result.ok:
            failed += 1
            continue
        values[side]["peak_rss"].append(float(result.peak_rss_bytes))
        values[side]["wall"].append(result.wall_seconds)
        values[side]["cpu"].append(result.user_seconds + result.system_seconds)
    return failed


def judge(values, n: int, alpha: float, failed: int) -> dict[str, dict]:
    return {
        m.key: stats.compare(
            values["before"][m.key][:n],
            values["after"][m.key][:n],
            metric=m.key,
            unit=m.unit,
            alpha=alpha,
            failed_runs=failed,
        ).as_dict()
        | {"alpha": alpha, "max_noise_pct": stats.MAX_NOISE_PCT}
        for m in GATING
    }


def measure(runner, before: int, after: int, args, seed: int):
    """One adaptive measurement; returns (adaptive verdicts, runs a side, fixed verdicts)."""
    argv = {
        "before": [sys.executable, "-c", PROGRAM.format(size=before)],
        "after": [sys.executable, "-c", PROGRAM.format(size=after)],
    }
    values = {side: {m.key: [] for m in GATING} for side in ("before", "after")}
    sizes = stats.look_sizes(planned=args.runs, block=args.block, maximum=args.max_runs)
    levels = stats.nominal_alphas(sizes) if len(sizes) > 1 else (stats.ALPHA,)
    failed = run_block(runner, argv, values, args.runs, 1, seed)
    fixed = judge(values, args.runs, stats.ALPHA, failed)
    for look, (n, level) in enumerate(zip(sizes, levels, strict=True)):
        if look:
            failed += run_block(runner, argv, values, n - sizes[look - 1], 0, seed * 100 + look)
        results = judge(values, n, level, failed)
        if not any(metrics.undecided(results[m.key], m) for m in GATING):
            break
    return results, n, fixed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measurements", type=int, default=20)
    parser.add_argument("--runs", type=int, default=10, help="planned runs per side")
    parser.add_argument("--max-runs", type=int, default=40, help="adaptive maximum per side")
    parser.add_argument("--block", type=int, default=10, help="runs per side added at a time")
    args = parser.parse_args()
    runner = CommandRunner(sandbox=None)
    started = time.monotonic()

    def false_gating(results):
        return any(r["verdict"] in ("improved", "regressed") for r in results.values())

    aa = [measure(runner, BASE, BASE, args, seed) for seed in range(args.measurements)]
    ab = [measure(runner, BASE, BASE + EXTRA, args, 1000 + s) for s in range(args.measurements)]
    n = args.measurements
    rows = []
    for name, pick_results, pick_runs in (
        ("adaptive", lambda m: m[0], lambda m: m[1]),
        ("fixed", lambda m: m[2], lambda m: args.runs),
    ):
        false = sum(false_gating(pick_results(m)) for m in aa)
        found = sum(pick_results(m)["peak_rss"]["verdict"] == "regressed" for m in ab)
        mean_runs = statistics.mean(pick_runs(m) for m in aa + ab)
        open_ = sum(
            any(metrics.undecided(pick_results(m)[g.key], g) for g in GATING) for m in aa + ab
        )
        rows.append((name, false, found, mean_runs, open_))
    noise = statistics.median(m[2]["peak_rss"]["noise"] for m in aa)
    shifts = [m[0]["peak_rss"]["change"] for m in ab if m[0]["peak_rss"]["change"] is not None]
    predicted = stats.smallest_detectable(noise, args.runs)

    print(
        f"{n} A/A and {n} +256 KiB measurements of a 30 MiB command, {args.runs} runs per side "
        f"planned, adaptive up to {args.max_runs} in blocks of {args.block}"
    )
    print(f"{'':38}{'adaptive':>10}{'fixed':>10}   target")
    print(
        f"  {'A/A false gating verdicts':36}"
        + "".join(f"{f'{r[1]}/{n}':>10}" for r in rows)
        + "   <= 1"
    )
    print(
        f"  {'+256 KiB peak RSS regressed':36}"
        + "".join(f"{f'{r[2]}/{n}':>10}" for r in rows)
        + "   >= 19"
    )
    print(f"  {'mean runs per side':36}" + "".join(f"{r[3]:>10.1f}" for r in rows))
    print(
        f"  {'a gating metric left undecided':36}"
        + "".join(f"{f'{r[4]}/{2 * n}':>10}" for r in rows)
    )
    print(f"  peak RSS run-to-run noise (median A/A) {noise / 1024:.1f} KiB")
    print(f"  measured +256 KiB shift (median) ...... {statistics.median(shifts) / 1024:.0f} KiB")
    print(f"  smallest detectable at {args.runs} runs ....... {predicted / 1024:.0f} KiB")
    print(f"  took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
