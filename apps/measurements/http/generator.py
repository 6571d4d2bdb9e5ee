"""The load generator: one process that drives a request plan and writes what it saw as JSON.

Run as ``python -I generator.py`` with the job on stdin and the result on stdout (see `main`).
It imports only the standard library, aiohttp and hdrh, never Django or fixledger, and is run
by file path so that importing the ``apps`` package (and Celery with it) is not paid for: the
worker's event loop, threads and GIL stay out of the measured loop.

Open loop (the default): request ``i`` is due at ``start + i / rate`` whatever happened to the
ones before it, and its latency is counted from that *intended* send time, as wrk2 does. A
server that stalls for two seconds thus shows two seconds of queueing in the tail instead of
one slow request (coordinated omission). The generator measures its own schedule lag (how late
each send actually started); when more than 1 % of sends start over 1 ms late, the run is
marked inconclusive rather than quietly under-loading the service.

The lag is the host's as much as the generator's: on a 2-core VM shared with other work (load
4-6), even a bare asyncio schedule with no HTTP at all woke 15-30 % of the time more than 1 ms
late, and runs there are flagged; on a quiet host the same loop keeps its sends within a
fraction of a millisecond (tests/benchmarks/http_probe.py prints where it stops keeping up).

Closed loop (``mode: concurrency``): N workers each send, wait for the answer and send again;
latency is from the actual send. It is there for services that must not be pushed at a fixed
rate, and for comparison.

Every latency goes into an HDR histogram (microseconds, 3 significant digits) per endpoint and
in total, serialised in HdrHistogram's compressed base64 form so runs can be merged and
percentiles recomputed later.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import re
import sys
import time
from collections import Counter
from typing import Any

import aiohttp
from hdrh.histogram import HdrHistogram
from yarl import URL

VERSION = 1
# Microseconds from 1 us to one hour at 3 significant digits: 0.1 % resolution everywhere.
HIST_LOWEST = 1
HIST_HIGHEST = 3_600_000_000
HIST_DIGITS = 3
LATE_THRESHOLD = 0.001
MAX_LATE_FRACTION = 0.01
# asyncio sleeps are rounded up to epoll's millisecond; the last stretch before a send is spun
# with zero-length sleeps (which still serve responses) so sends are not a millisecond late.
_SPIN = 0.002
# This many failed requests in a row (refused, reset or timed out) means the service is gone:
# stop instead of logging thousands of identical failures.
ABORT_AFTER_FAILURES = 20
_CACHE_HIT = re.compile(r"\bhit\b", re.IGNORECASE)
_CACHE_MISS = re.compile(r"\bmiss\b", re.IGNORECASE)
_LEADING_INT = re.compile(r"^\s*(\d+)")


def new_histogram() -> HdrHistogram:
    return HdrHistogram(HIST_LOWEST, HIST_HIGHEST, HIST_DIGITS)


def decode_histogram(encoded: str) -> HdrHistogram:
    return HdrHistogram.decode(encoded)


# --------------------------------------------------------------------------------------------
# What a response says about itself


def cache_status(headers: Any, names: list[str] | tuple[str, ...]) -> str:
    """ "hit", "miss" or "unknown", from the first of ``names`` that says either.

    ``Cache-Status`` (RFC 9211): a list of caches, each ``name; param; ...``; a ``hit``
    parameter in any member means some cache served the response, ``fwd=...`` without a hit
    means every cache forwarded it. ``X-Cache`` style headers: the words HIT or MISS (as in
    ``HIT from edge``, ``TCP_MISS``). ``Age``: a shared cache's age, above zero only for a
    stored response.
    """
    for name in names:
        value = headers.get(name)
        if value is None:
            continue
        lowered = name.lower()
        if lowered == "cache-status":
            verdict = _rfc9211(value)
        elif lowered == "age":
            verdict = _age(value)
        else:
            words = value.replace("_", " ")
            verdict = (
                "hit" if _CACHE_HIT.search(words) else "miss" if _CACHE_MISS.search(words) else ""
            )
        if verdict:
            return verdict
    return "unknown"


def _rfc9211(value: str) -> str:
    forwarded = False
    for member in value.split(","):
        params = [p.strip().lower() for p in member.split(";")[1:]]
        if "hit" in params or any(p.startswith("hit=") and p != "hit=?0" for p in params):
            return "hit"
        forwarded = forwarded or any(p.startswith("fwd=") for p in params)
    return "miss" if forwarded else ""


def _age(value: str) -> str:
    match = _LEADING_INT.match(value)
    if not match:
        return ""
    return "hit" if int(match[1]) > 0 else "miss"


def db_queries(headers: Any, header: str, server_timing_entry: str) -> int | None:
    """The response's database query count: ``header``, else a Server-Timing entry.

    In ``Server-Timing`` the entry named ``server_timing_entry`` gives its count as a ``count``
    parameter, or as a number leading its ``desc`` (``db;count=3;dur=1.2`` or
    ``db;desc="3 queries"``). None when the response does not say.
    """
    if header:
        value = headers.get(header)
        if value is not None:
            match = _LEADING_INT.match(value)
            return int(match[1]) if match else None
    if not server_timing_entry:
        return None
    values = (
        headers.getall("Server-Timing", [])
        if hasattr(headers, "getall")
        else [headers.get("Server-Timing", "")]
    )
    for value in values:
        for entry in value.split(","):
            parts = [p.strip() for p in entry.split(";")]
            if parts[0].lower() != server_timing_entry.lower():
                continue
            params = {}
            for part in parts[1:]:
                key, _, raw = part.partition("=")
                params[key.strip().lower()] = raw.strip().strip('"')
            for key in ("count", "desc"):
                match = _LEADING_INT.match(params.get(key, ""))
                if match:
                    return int(match[1])
    return None


# --------------------------------------------------------------------------------------------
# Memory of the service


def tree_rss(pid: int) -> tuple[int, int]:
    """(current RSS, sum of peak RSS) of ``pid`` and its descendants, from /proc; (0, 0) if gone.

    Read directly rather than through psutil: the generator stays stdlib-only, and a sample is a
    handful of small reads.
    """
    total = peak = 0
    pending, seen = [pid], set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            with open(f"/proc/{current}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                    elif line.startswith("VmHWM:"):
                        peak += int(line.split()[1]) * 1024
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    pending.extend(int(child) for child in children.read().split())
        except (OSError, ValueError):
            continue
    return total, peak


def _field(data: Any, dotted: str) -> float | None:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    if isinstance(data, bool) or not isinstance(data, int | float):
        return None
    return float(data)


# --------------------------------------------------------------------------------------------
# The run


class _Endpoint:
    def __init__(self) -> None:
        self.histogram = new_histogram()
        self.count = 0
        self.statuses: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.cache: Counter[str] = Counter()
        self.db: Counter[str] = Counter()

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "histogram": self.histogram.encode().decode("ascii"),
            "statuses": dict(self.statuses),
            "errors": dict(self.errors),
            "cache": dict(self.cache),
            "db_queries": dict(self.db),
        }


class Generator:
    """Drives one plan (``plan`` as `Plan.to_dict` writes it) against ``base_url``."""

    def __init__(self, job: dict[str, Any]) -> None:
        self.base_url: str = job["base_url"].rstrip("/")
        self.plan: dict[str, Any] = job["plan"]
        self.memory_pid: int | None = job.get("memory_pid")
        self.deadline: float = float(job.get("deadline", 3600.0))
        self.entries = self.plan["entries"]
        self.warmup = int(self.plan["warmup"])
        self.connections = max(
            int(self.plan.get("connections", 32)),
            int(self.plan["concurrency"]) if self.plan["mode"] != "rate" else 1,
        )
        self.total = self.warmup + int(self.plan["requests"])
        # Seeded so both sides of a comparison draw the same sequence of requests.
        rng = random.Random(self.plan.get("seed", 0))  # noqa: S311
        weights = [float(e.get("weight", 1.0)) for e in self.entries]
        self.sequence = rng.choices(range(len(self.entries)), weights=weights, k=self.total)
        self.urls = [URL(self.base_url + e["path"], encoded=True) for e in self.entries]
        self.names = [e.get("name") or f"{e['method']} {e['path']}" for e in self.entries]
        self.wrong = set(self.plan.get("wrong_statuses", []))
        self.endpoints = {name: _Endpoint() for name in self.names}
        self.overall = _Endpoint()
        self.lag = new_histogram()
        self.late = 0
        self.sent = 0
        self.measured_done = 0
        self.failures_in_a_row = 0
        self.failure = ""
        self._connection_error = ""
        self._memory_tasks: set[asyncio.Task] = set()
        self.memory_samples: list[list[int]] = []
        self.memory_errors = 0
        memory = self.plan.get("memory") or {}
        self.memory_source = memory.get("source", "none")
        self.memory_every = max(1, int(self.plan["requests"]) // int(memory.get("samples", 100)))
        self.measure_start: float | None = None
        self.last_done = 0.0
        self._stop = asyncio.Event()

    async def run(self) -> dict[str, Any]:
        # Past this many requests in flight, new ones wait for a connection inside the client;
        # their latency still runs from the intended send time, so the wait is measured.
        connector = aiohttp.TCPConnector(limit=self.connections)
        timeout = aiohttp.ClientTimeout(total=float(self.plan["timeout"]))
        # trust_env=False: no proxy from the environment may reroute the probe elsewhere.
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, trust_env=False, auto_decompress=False
        ) as session:
            self.session = session
            driver = self._open_loop() if self.plan["mode"] == "rate" else self._closed_loop()
            try:
                await asyncio.wait_for(driver, timeout=self.deadline)
            except TimeoutError:
                self.failure = self.failure or (
                    f"the run did not finish within {self.deadline:.0f} s"
                )
        return self._result()

    async def _open_connections(self) -> int:
        """Send the first warm-up requests all at once, so the client opens every connection it
        will use (and the service whatever it keeps per connection) before anything counts.
        Returns how many requests that took."""
        burst = min(self.warmup, self.connections)
        loop = asyncio.get_running_loop()
        now = loop.time()
        await asyncio.gather(*(self._one(i, now, scheduled=False) for i in range(burst)))
        return burst

    async def _open_loop(self) -> None:
        loop = asyncio.get_running_loop()
        interval = 1.0 / float(self.plan["rate"])
        first = await self._open_connections()
        start = loop.time() + 0.05
        pending: set[asyncio.Task] = set()
        for i in range(first, self.total):
            if self._stop.is_set():
                break
            intended = start + (i - first) * interval
            delay = intended - loop.time()
            if delay > _SPIN:
                await asyncio.sleep(delay - _SPIN)
            while loop.time() < intended:
                await asyncio.sleep(0)
            task = asyncio.create_task(self._one(i, intended, scheduled=True))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if self._stop.is_set():
            for task in pending:
                task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _closed_loop(self) -> None:
        loop = asyncio.get_running_loop()
        counter = iter(range(await self._open_connections(), self.total))

        async def worker() -> None:
            for i in counter:
                if self._stop.is_set():
                    return
                await self._one(i, loop.time(), scheduled=False)

        await asyncio.gather(*(worker() for _ in range(int(self.plan["concurrency"]))))

    async def _one(self, i: int, intended: float, *, scheduled: bool) -> None:
        loop = asyncio.get_running_loop()
        measured = i >= self.warmup
        if measured and self.measure_start is None:
            self.measure_start = intended
            self._sample_memory()
        if measured and scheduled:
            lag = loop.time() - intended
            self.lag.record_value(max(HIST_LOWEST, int(lag * 1e6)))
            self.late += lag > LATE_THRESHOLD
        self.sent += 1
        index = self.sequence[i]
        entry = self.entries[index]
        status, kind, headers = None, "", None
        try:
            async with self.session.request(
                entry["method"],
                self.urls[index],
                headers=dict(entry.get("headers") or {}),
                data=entry["body"].encode() if entry.get("body") is not None else None,
                allow_redirects=False,
            ) as response:
                await response.read()
                status, headers = response.status, response.headers
        except TimeoutError:
            kind = "timeout"
        except (aiohttp.ClientError, OSError) as exc:
            kind = "connection"
            self._connection_error = f"{type(exc).__name__}: {exc}"
        done = loop.time()
        self._count_failure(kind)
        if not measured:
            return
        self.last_done = max(self.last_done, done)
        stats = (self.endpoints[self.names[index]], self.overall)
        for target in stats:
            target.count += 1
            if kind != "connection":
                target.histogram.record_value(max(HIST_LOWEST, int((done - intended) * 1e6)))
        if status is None:
            for target in stats:
                target.errors[kind] += 1
        else:
            error = "5xx" if status >= 500 else "wrong_status" if status in self.wrong else ""
            cache = cache_status(headers, self.plan.get("cache_headers", ()))
            queries = db_queries(
                headers, self.plan.get("db_header", ""), self.plan.get("server_timing_db", "")
            )
            for target in stats:
                target.statuses[str(status)] += 1
                target.cache[cache] += 1
                target.db["unknown" if queries is None else str(queries)] += 1
                if error:
                    target.errors[error] += 1
        self.measured_done += 1
        if self.measured_done % self.memory_every == 0:
            self._sample_memory()

    def _count_failure(self, kind: str) -> None:
        if kind not in ("connection", "timeout"):
            self.failures_in_a_row = 0
            return
        self.failures_in_a_row += 1
        if self.failures_in_a_row >= ABORT_AFTER_FAILURES and not self.failure:
            if kind == "timeout":
                self.failure = (
                    f"{ABORT_AFTER_FAILURES} requests in a row timed out after "
                    f"{float(self.plan['timeout']):g} s"
                )
            else:
                self.failure = (
                    f"{ABORT_AFTER_FAILURES} requests in a row could not reach "
                    f"{self.base_url} ({self._connection_error})"
                )
            self._stop.set()

    def _sample_memory(self) -> None:
        if self.memory_source == "process" and self.memory_pid:
            rss, _peak = tree_rss(self.memory_pid)
            if rss:
                self.memory_samples.append([self.measured_done, rss])
            else:
                self.memory_errors += 1
        elif self.memory_source == "endpoint":
            task = asyncio.create_task(self._memory_endpoint(self.measured_done))
            self._memory_tasks.add(task)
            task.add_done_callback(self._memory_tasks.discard)

    async def _memory_endpoint(self, done: int) -> None:
        memory = self.plan["memory"]
        try:
            async with self.session.get(
                URL(self.base_url + memory["path"], encoded=True), allow_redirects=False
            ) as response:
                data = await response.json(content_type=None)
            value = _field(data, memory["field"])
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
            value = None
        if value is None:
            self.memory_errors += 1
        else:
            self.memory_samples.append([done, int(value)])

    def _result(self) -> dict[str, Any]:
        measured = max(0, self.sent - self.warmup)
        duration = (
            self.last_done - self.measure_start
            if self.measure_start is not None and self.last_done
            else 0.0
        )
        late_fraction = self.late / measured if measured and self.plan["mode"] == "rate" else 0.0
        inconclusive = ""
        if late_fraction > MAX_LATE_FRACTION:
            inconclusive = (
                f"the generator could not keep {float(self.plan['rate']):,.0f} req/s: "
                f"{late_fraction * 100:.1f} % of sends started more than "
                f"{LATE_THRESHOLD * 1000:g} ms late"
            )
        peak = None
        if self.memory_source == "process" and self.memory_pid:
            peak = tree_rss(self.memory_pid)[1] or None
        elif self.memory_samples:
            peak = max(rss for _n, rss in self.memory_samples)
        return {
            "version": VERSION,
            "mode": self.plan["mode"],
            "rate": float(self.plan["rate"]),
            "concurrency": int(self.plan["concurrency"]),
            "requests_planned": int(self.plan["requests"]),
            "requests_done": self.measured_done,
            "warmup": self.warmup,
            "duration_s": duration,
            "throughput": self.measured_done / duration if duration > 0 else 0.0,
            "lag": {
                "histogram": self.lag.encode().decode("ascii"),
                "late": self.late,
                "late_fraction": late_fraction,
                "p50_ms": self.lag.get_value_at_percentile(50) / 1000,
                "p99_ms": self.lag.get_value_at_percentile(99) / 1000,
                "max_ms": self.lag.get_max_value() / 1000,
            },
            "inconclusive": inconclusive,
            "failure": self.failure,
            "endpoints": {name: stats.as_dict() for name, stats in self.endpoints.items()},
            "total": self.overall.as_dict(),
            "memory": {
                "source": self.memory_source,
                "samples": self.memory_samples,
                "peak_rss": peak,
                "errors": self.memory_errors,
            },
        }


def main() -> int:
    """Read the job (JSON: base_url, plan, optional memory_pid and deadline) from stdin, run it,
    print the result as one JSON document. Exit 0 whenever a result was printed, failed runs
    included: their ``failure`` says why."""
    job = json.load(sys.stdin)
    # A full collection of aiohttp's objects takes milliseconds: rarer ones keep them out of
    # the schedule, and the process lives for one run only.
    gc.set_threshold(100_000, 50, 1_000)
    started = time.monotonic()
    result = asyncio.run(Generator(job).run())
    result["wall_s"] = time.monotonic() - started
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
