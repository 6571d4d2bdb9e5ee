"""What CommandRunner costs: a script, not a test.

1. Harness overhead. A command that spins for 0.2 s is run REPEATS times through CommandRunner
   and REPEATS times with bare subprocess.run, interleaved so that drift hits both alike. Printed:
   the medians, the ratio of the wall time the runner *records* to the bare wall time (what a
   measurement would be off by; target <= 1.05), and the end-to-end ratio (what a worker pays,
   the launcher's start-up included).
2. Sampler cost. The RSS sampler's own CPU (time.thread_time inside its thread) per second of
   sampling a one-process tree, at several intervals; and the whole worker process's CPU for a
   2 s run sampled at the default interval versus practically not sampled.
3. Perturbation. The recorded wall time of the 0.2 s command with the default interval versus
   practically no sampling.

    .venv/bin/python tests/benchmarks/measure_overhead.py
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

import psutil

from apps.measurements.runner import DEFAULT_SAMPLE_INTERVAL, CommandRunner, _TreeSampler

REPEATS = 15
SPIN = "import time\nt = time.perf_counter()\nwhile time.perf_counter() - t < 0.2: pass"
NO_SAMPLING = 3600.0  # one sample at the start, none after


def harness_overhead(runner: CommandRunner, cwd: str) -> None:
    argv = [sys.executable, "-c", SPIN]
    bare, outer, recorded = [], [], []
    for _ in range(REPEATS):
        started = time.perf_counter()
        subprocess.run(argv, cwd=cwd, check=True)
        bare.append(time.perf_counter() - started)
        started = time.perf_counter()
        result = runner.run(argv, cwd=cwd, env={}, timeout=30)
        outer.append(time.perf_counter() - started)
        assert result.ok, result.failure
        recorded.append(result.wall_seconds)
    b, o, r = (statistics.median(x) for x in (bare, outer, recorded))
    print(f"harness, {REPEATS} interleaved runs of a 0.2 s spin (medians):")
    print(f"  bare subprocess.run          {b * 1000:8.1f} ms")
    print(f"  CommandRunner, recorded      {r * 1000:8.1f} ms   ratio {r / b:.3f}")
    print(f"  CommandRunner, end to end    {o * 1000:8.1f} ms   ratio {o / b:.3f}")


def sampler_cost() -> None:
    print("sampler CPU per second of sampling, one-process tree (thread_time in the thread):")
    target = subprocess.Popen(["sleep", "30"])
    try:
        for interval in (0.005, 0.01, 0.02, 0.05, 0.1):
            root = psutil.Process(target.pid)
            sampler = _TreeSampler(root, None, interval, 200, lambda: None)
            started = time.monotonic()
            sampler.start()
            time.sleep(2.0)
            sampler.stop()
            elapsed = time.monotonic() - started
            per_tick = sampler.cpu_seconds / max(sampler.samples, 1) * 1000
            share = sampler.cpu_seconds / elapsed * 100
            print(
                f"  interval {interval * 1000:5.0f} ms: {share:5.2f} %"
                f" of one core, {per_tick:.3f} ms per tick, {sampler.samples} ticks"
            )
    finally:
        target.kill()
        target.wait()


def process_cpu(runner: CommandRunner, cwd: str) -> None:
    argv = ["sleep", "2"]
    costs = {}
    for interval in (NO_SAMPLING, DEFAULT_SAMPLE_INTERVAL, NO_SAMPLING, DEFAULT_SAMPLE_INTERVAL):
        started = time.process_time()
        runner.run(argv, cwd=cwd, env={}, timeout=30, sample_interval=interval)
        costs.setdefault(interval, []).append(time.process_time() - started)
    quiet = min(costs[NO_SAMPLING])
    sampled = min(costs[DEFAULT_SAMPLE_INTERVAL])
    print("worker process CPU for a 2 s command (best of 2):")
    print(f"  not sampled                  {quiet * 1000:8.1f} ms")
    print(
        f"  sampled every {DEFAULT_SAMPLE_INTERVAL * 1000:.0f} ms          {sampled * 1000:8.1f} ms"
        f"   = {(sampled - quiet) / 2 * 100:.2f} % of one core"
    )


def perturbation(runner: CommandRunner, cwd: str) -> None:
    argv = [sys.executable, "-c", SPIN]
    walls: dict[float, list[float]] = {NO_SAMPLING: [], DEFAULT_SAMPLE_INTERVAL: []}
    for _ in range(REPEATS):
        for interval, results in walls.items():
            result = runner.run(argv, cwd=cwd, env={}, timeout=30, sample_interval=interval)
            results.append(result.wall_seconds)
    quiet = statistics.median(walls[NO_SAMPLING])
    sampled = statistics.median(walls[DEFAULT_SAMPLE_INTERVAL])
    print(f"recorded wall of the 0.2 s spin, {REPEATS} interleaved runs (medians):")
    print(f"  not sampled                  {quiet * 1000:8.1f} ms")
    print(
        f"  sampled every {DEFAULT_SAMPLE_INTERVAL * 1000:.0f} ms          {sampled * 1000:8.1f} ms"
        f"   ratio {sampled / quiet:.3f}"
    )


def main() -> None:
    runner = CommandRunner(sandbox=None)
    print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as cwd:
        runner.run([sys.executable, "-c", "pass"], cwd=cwd, env={}, timeout=30)  # warm caches
        harness_overhead(runner, cwd)
        sampler_cost()
        process_cpu(runner, cwd)
        perturbation(runner, cwd)


if __name__ == "__main__":
    main()
