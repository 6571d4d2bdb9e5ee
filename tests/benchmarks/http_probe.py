"""How good the HTTP probe's numbers are: a script, not a test. Needs Debian's wrk (make wrk).

1. Latency accuracy: p50 and p99 of the sample service's 20 ms endpoint from the probe (open
   loop) and from wrk (closed loop, one connection), against the same running service, with
   the host's round trip (p50 of a trivial endpoint) beside them.
2. Throughput: the highest rate the probe keeps with its lag p99 under 1 ms on a trivial
   endpoint, next to what wrk pushes through the same endpoint, as a ratio.
3. Leak slope: for each leak size (bytes kept per request), in how many of REPEATS probes of
   5,000 requests the side is called leaking; the smallest size found in >= 19 of 20. Then how
   often a bounded cache that fills and stays flat is called a leak (target <= 1 in 20).
4. Coordinated omission: the sample service is SIGSTOPped for 2 s at 100 req/s; p99 as the
   probe reports it, next to a closed-loop client (wrk, and the probe's own closed loop).

    .venv/bin/python tests/benchmarks/http_probe.py [--repeats 20] [--skip-leaks | --only-leaks]
                                                    [--sizes 8,16,32,64,256]
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from apps.measurements.http.analysis import compare_sides
from apps.measurements.http.generator import decode_histogram
from apps.measurements.http.plan import loopback_base_url, parse_plan
from apps.measurements.http.serve import (
    ServedProcess,
    _wait_ready,
    free_port,
    run_generator,
    serve_and_probe,
)
from tests.measurements.http.sample import (
    SERVE_ARGV,
    SERVE_ENV,
    make_sample_repo,
    worktree,
)

LEAK_SIZES = (8, 16, 32, 64, 256)
BOUNDED = {"LEAK_BYTES": 16384, "BOUNDED_LIMIT": 60}


class Running:
    """The sample service at one revision, kept up for several probes."""

    def __init__(self, cwd: Path) -> None:
        self.port = free_port()
        argv = [a.replace("{port}", str(self.port)) for a in SERVE_ARGV]
        self.service = ServedProcess(argv, cwd=cwd, env=SERVE_ENV)
        self.url = loopback_base_url(self.port)

    def __enter__(self) -> Running:
        self.service.start()
        failure = _wait_ready(self.service, self.port, self.url, "/", 20)
        if failure:
            raise RuntimeError(failure)
        return self

    def __exit__(self, *exc) -> None:
        self.service.stop()
        self.service.close()


def percentiles(result: dict, endpoint: str | None = None) -> tuple[float, float]:
    data = result["total"] if endpoint is None else result["endpoints"][endpoint]
    hist = decode_histogram(data["histogram"])
    return hist.get_value_at_percentile(50) / 1000, hist.get_value_at_percentile(99) / 1000


_WRK_LINE = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$")
_SCALE = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, *, connections: int, seconds: float, threads: int = 1) -> dict:
    completed = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    )
    figures = {}
    for line in completed.stdout.splitlines():
        match = _WRK_LINE.match(line)
        if match:
            figures[f"p{match[1]}"] = float(match[2]) * _SCALE[match[3]]
        if line.startswith("Requests/sec:"):
            figures["rps"] = float(line.split()[1])
    return figures


def latency_accuracy(base: Path) -> None:
    print("1. latency of a 20 ms endpoint (ms), same service, same run")
    plan = parse_plan(
        {
            "entries": [{"path": "/sleep"}, {"path": "/ok"}],
            "requests": 1200,
            "warmup": 60,
            "rate": 70,
        }
    )
    with Running(base) as svc:
        for round_ in range(2):
            probe = run_generator(svc.url, plan).result
            sleep50, sleep99 = percentiles(probe, "GET /sleep")
            ok50, _ = percentiles(probe, "GET /ok")
            ref = wrk(svc.url + "/sleep", connections=1, seconds=8)
            ref_ok = wrk(svc.url + "/ok", connections=1, seconds=3)
            print(
                f"   round {round_ + 1}: probe p50 {sleep50:6.2f}  p99 {sleep99:6.2f}"
                f"  (host round trip p50 {ok50:.2f}, lag p99 {probe['lag']['p99_ms']:.2f},"
                f" late {probe['lag']['late_fraction'] * 100:.1f} %)"
            )
            print(
                f"            wrk   p50 {ref['p50']:6.2f}  p99 {ref['p99']:6.2f}"
                f"  (round trip p50 {ref_ok['p50']:.2f})"
            )


def throughput(base: Path) -> None:
    print("2. highest rate with lag p99 < 1 ms on a trivial endpoint, vs wrk")
    best = 0.0
    with Running(base) as svc:
        for rate in (100, 250, 500, 1000, 2000, 3000, 5000):
            plan = parse_plan(
                {
                    "entries": [{"path": "/ok"}],
                    "requests": int(rate * 3),
                    "warmup": 100,
                    "rate": rate,
                }
            )
            result = run_generator(svc.url, plan).result
            lag = result["lag"]
            kept = lag["p99_ms"] < 1.0
            print(
                f"   {rate:5d} req/s: lag p50 {lag['p50_ms']:.3f} p99 {lag['p99_ms']:7.3f} ms,"
                f" late {lag['late_fraction'] * 100:5.1f} %, achieved"
                f" {result['throughput']:7.0f} req/s {'kept' if kept else ''}"
            )
            if kept:
                best = rate
        ref = wrk(svc.url + "/ok", connections=32, seconds=5, threads=2)
    ratio = best / ref["rps"] if ref["rps"] else 0.0
    print(f"   probe keeps {best:.0f} req/s; wrk pushes {ref['rps']:.0f} req/s; ratio {ratio:.3f}")


def leaks(root: Path, repeats: int, sizes: tuple[int, ...]) -> None:
    print(f"3. leak calls in {repeats} probes of 5,000 requests at 1,000 req/s")
    revisions = {f"leak{n}": {"LEAK_BYTES": n} for n in sizes} | {"bounded": BOUNDED}
    # Size 0 is the base revision itself: the control for false leak calls.
    shas = make_sample_repo(root / "leaks", {k: v for k, v in revisions.items() if k != "leak0"})
    shas["leak0"] = shas["base"]
    plan = parse_plan(
        {
            "entries": [{"path": "/leak"}],
            "requests": 5000,
            "warmup": 200,
            "rate": 1000,
            "memory": {"source": "process", "samples": 100},
        }
    )
    smallest = None
    for name in [*revisions]:
        tree = worktree(root / "leaks", shas[name], root / f"wt-{name}")
        called, slopes = 0, []
        for _ in range(repeats):
            outcome = serve_and_probe(argv=SERVE_ARGV, cwd=tree, plan=plan, env=SERVE_ENV)
            if not outcome.ok:
                print(f"   {name}: probe failed: {outcome.failure}")
                continue
            side = compare_sides([outcome.result], [outcome.result]).before
            called += side.leak
            slopes.append(side.rss_slope[0] / 1000 if side.rss_slope else float("nan"))
        slopes.sort()
        median = slopes[len(slopes) // 2] if slopes else float("nan")
        label = (
            f"{revisions[name]['LEAK_BYTES']} B/request"
            if name != "bounded"
            else ("bounded cache (60 x 16 KiB)")
        )
        print(
            f"   {label:28s}: called a leak {called:2d}/{repeats}, median slope"
            f" {median:8.1f} B/request"
        )
        if name != "bounded" and smallest is None and called >= repeats * 19 / 20:
            smallest = revisions[name]["LEAK_BYTES"]
    print(
        f"   smallest leak found >= 19 in 20: {smallest} B/request of payload"
        " (CPython keeps ~50 B more per kept object)"
    )


def stall(base: Path) -> None:
    print("4. SIGSTOP for 2 s at 100 req/s: p99 (ms)")

    def pause_later(pid: int, after: float) -> threading.Timer:
        def stop() -> None:
            subprocess.run(["kill", "-STOP", str(pid)], check=False)
            threading.Timer(
                2.0, lambda: subprocess.run(["kill", "-CONT", str(pid)], check=False)
            ).start()

        timer = threading.Timer(after, stop)
        timer.start()
        return timer

    open_plan = parse_plan(
        {"entries": [{"path": "/ok"}], "requests": 1000, "warmup": 50, "rate": 100}
    )
    closed_plan = parse_plan(
        {
            "entries": [{"path": "/ok"}],
            "requests": 20000,
            "warmup": 50,
            "mode": "concurrency",
            "concurrency": 1,
        }
    )
    with Running(base) as svc:
        pause_later(svc.service.pid, 3.0)
        opened = run_generator(svc.url, open_plan).result
    with Running(base) as svc:
        pause_later(svc.service.pid, 1.0)
        closed = run_generator(svc.url, closed_plan).result
    with Running(base) as svc:
        pause_later(svc.service.pid, 2.0)
        ref = wrk(svc.url + "/ok", connections=4, seconds=6)
    for name, result in (("open loop (100 req/s)  ", opened), ("closed loop (1 conn.) ", closed)):
        worst = decode_histogram(result["total"]["histogram"]).get_max_value() / 1000
        print(
            f"   probe, {name} p99 {percentiles(result)[1]:8.1f}  (max {worst:.0f},"
            f" {result['requests_done']} requests)"
        )
    print(f"   wrk, closed loop (4 connections)  p99 {ref['p99']:8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--skip-leaks", action="store_true")
    parser.add_argument("--only-leaks", action="store_true")
    parser.add_argument("--only-stall", action="store_true")
    parser.add_argument(
        "--sizes", default=",".join(map(str, LEAK_SIZES)), help="leak sizes, bytes per request"
    )
    args = parser.parse_args()
    # Ended early, the served processes are still stopped by the finally blocks on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shas = make_sample_repo(root / "repo", {})
        base = worktree(root / "repo", shas["base"], root / "wt-base")
        started = time.monotonic()
        if args.only_stall:
            stall(base)
            return
        if not args.only_leaks:
            latency_accuracy(base)
            throughput(base)
            stall(base)
        if not args.skip_leaks:
            leaks(root, args.repeats, tuple(int(n) for n in args.sizes.split(",")))
        print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
