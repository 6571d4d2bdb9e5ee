"""What a worker does with an HTTP profile's blocks: serve each side in turn and probe it.

Each Run row is one block of one side, in the same interleaved order as command runs. A block:
the profile's reset step (a request to the service, or a command in the worktree), then the
revision served by the sandboxed runner on the sandbox's own loopback, the load generator run
inside the sandbox's network namespace (`netns_join`), and every server process stopped — or,
for a profile probing live staging, the environment's registered base URL probed as it runs.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil

from .http.analysis import summarize
from .http.plan import Plan, parse_plan, target_url, validate_base_url
from .http.serve import (
    ProbeResult,
    free_port,
    loopback_base_url,
    probe_url,
    serve_and_probe,
)
from .models import HttpTarget, Measurement, Profile, Run, RunStatus
from .reports import measurement_fail, measurement_heartbeat, run_claim, run_finish_probe
from .runner import CommandRunner, RunResult

# A tiny client for the readiness check and the reset request, run where the service is
# reachable (inside the sandbox's network for a served revision).
_CLIENT = """
import http.client, sys, urllib.parse
method, url = sys.argv[1], sys.argv[2]
parts = urllib.parse.urlsplit(url)
conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
try:
    conn.request(method, parts.path + ("?" + parts.query if parts.query else ""))
    print(conn.getresponse().status)
except (OSError, http.client.HTTPException) as exc:
    print("error", exc)
"""


class SandboxedService:
    """A served revision run by the sandboxed `CommandRunner`, behind `serve.ServedProcess`'s
    contract (the ``service_factory`` seam): the runner gives it the sandbox's minimal
    environment, limits and kill-everything-at-the-end; its loopback is the sandbox's own."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd,
        env: Mapping[str, str],
        runner: CommandRunner,
        timeout: float,
        memory_limit_bytes: int | None,
    ) -> None:
        self.argv, self.cwd, self.env = list(argv), cwd, dict(env)
        self.runner = runner
        self.timeout, self.memory_limit_bytes = timeout, memory_limit_bytes
        self.result: RunResult | None = None
        self._pid: int | None = None
        self._started = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        while not self._started.wait(0.05):
            if not self._thread.is_alive():
                return  # exit_code() and output_tail() say why

    def _serve(self) -> None:
        try:
            self.result = self.runner.run(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                timeout=self.timeout,
                memory_limit_bytes=self.memory_limit_bytes,
                network="loopback",
                stop=self._stop,
                on_start=self._on_start,
            )
        finally:
            self._started.set()

    def _on_start(self, pid: int) -> None:
        self._pid = pid
        self._started.set()

    @property
    def pid(self) -> int:
        if self._pid is None:
            raise RuntimeError("the service has not been started")
        return self._pid

    def exit_code(self) -> int | None:
        if self._thread is None or self._thread.is_alive():
            return None
        code = self.result.exit_code if self.result else None
        return code if code is not None else -9

    def tree(self) -> list[psutil.Process]:
        if self._pid is None or self.exit_code() is not None:
            return []
        try:
            root = psutil.Process(self._pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def listens_on(self, port: int) -> bool:
        # The sandbox's loopback is its own: nobody else can hold a port there, and from the
        # host the listener's sockets are the sandbox user's to see.
        return self.exit_code() is None if self.runner.sandbox else _listens(self.tree(), port)

    def stop(self, grace: float = 3.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout + grace + 30)

    def close(self) -> None:
        pass

    def output_tail(self) -> str:
        return self.result.output_tail if self.result else ""

    def client_argv(self, argv: Sequence[str]) -> list[str]:
        if self.runner.sandbox is None or self._pid is None:
            return list(argv)
        return self.runner.sandbox.join_network(self._pid, list(argv))

    def get(self, url: str) -> tuple[int | None, str]:
        status, note = request(self.client_argv, "GET", url)
        return status, note


def _listens(tree: list[psutil.Process], port: int) -> bool:
    for proc in tree:
        try:
            for conn in proc.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                    return True
        except psutil.Error:
            continue
    return False


def request(wrap, method: str, url: str) -> tuple[int | None, str]:
    """One request through `_CLIENT`, run where ``wrap`` puts it: (status or None, a note)."""
    argv = wrap([sys.executable, "-I", "-c", _CLIENT, method, url])
    try:
        done = subprocess.run(  # noqa: S603 - our own client, fixed argv
            argv, capture_output=True, text=True, timeout=15, check=False
        )
    except subprocess.TimeoutExpired:
        return None, "no answer within 15 s"
    answer = done.stdout.strip()
    if answer.isdigit():
        return int(answer), f"last answer: {answer}"
    return None, answer or done.stderr.strip()[-200:] or "no answer"


def run_blocks(
    *,
    measurement: Measurement,
    runner: CommandRunner,
    trees: Mapping[str, Path],
    limits: Mapping,
) -> bool:
    """Every pending block of the measurement; False when the measurement ended early."""
    profile = measurement.profile
    plan = parse_plan(profile.http_plan)
    pending = Run.objects.filter(measurement=measurement, status=RunStatus.PENDING)
    for run in pending.order_by("sequence"):
        phase = f"{'warm-up' if run.warmup else 'block'} {run.sequence + 1} ({run.side})"
        if not measurement_heartbeat(measurement=measurement, phase=phase):
            return False
        if not run_claim(run=run, worker=measurement.worker):
            continue
        outcome, served, reset = _block(profile, plan, runner, trees.get(run.side), limits)
        run_finish_probe(
            run=run,
            outcome=outcome,
            served=served,
            reset=reset,
            metrics=_summary(outcome.result) if outcome.result else {},
        )
        if not outcome.ok:
            measurement_fail(
                measurement_id=measurement.pk,
                error=f"Block {run.sequence + 1} ({run.side}) failed: {outcome.failure}."
                + (f"\n{outcome.service_output[-1000:]}" if outcome.service_output else ""),
            )
            return False
    return True


def _block(profile: Profile, plan: Plan, runner: CommandRunner, tree, limits):
    """One block: (ProbeResult, the served process's RunResult or None, what the reset did)."""
    reset = profile.reset or {}
    if profile.http_target == HttpTarget.STAGING:
        base = profile.environment.base_url
        note = ""
        if reset:
            note = _reset_request(lambda argv: argv, validate_base_url(base), reset)
        outcome = probe_url(base_url=base, registered=[base], plan=plan)
        return outcome, None, note
    notes: list[str] = []
    if "argv" in reset:
        done = runner.run(reset["argv"], cwd=tree, env=profile.env, **limits)
        if not done.ok:
            return ProbeResult("", failure=f"the reset step failed: {done.failure}"), None, ""
        notes.append(f"ran {' '.join(reset['argv'])}")
    made: list[SandboxedService] = []

    def factory(argv, *, cwd, env):
        made.append(
            SandboxedService(
                argv,
                cwd=cwd,
                env=env,
                runner=runner,
                timeout=limits["timeout"],
                memory_limit_bytes=limits["memory_limit_bytes"],
            )
        )
        return made[-1]

    port = free_port()

    def on_ready(service) -> None:
        if "method" in reset:
            notes.append(_reset_request(service.client_argv, loopback_base_url(port), reset))

    outcome = serve_and_probe(
        argv=profile.argv,
        cwd=tree,
        plan=plan,
        env=profile.env,
        ready_path=profile.ready_path,
        startup_timeout=float(profile.startup_timeout_seconds),
        port=port,
        on_ready=on_ready,
        service_factory=factory,
    )
    return outcome, made[0].result if made else None, "; ".join(notes)


def _reset_request(wrap, base_url: str, reset: Mapping) -> str:
    status, note = request(wrap, reset["method"], target_url(base_url, reset["path"]))
    what = f"{reset['method']} {reset['path']}"
    return f"{what} answered {status}" if status is not None else f"{what}: {note}"


def _summary(result: Mapping) -> dict[str, list]:
    """The block's own figures, stored as the run's metrics (charts and the run table)."""
    side = summarize([result])
    total = side.total
    values = {
        "latency_p50": (total.p50, "ms"),
        "latency_p95": (total.p95, "ms"),
        "latency_p99": (total.p99, "ms"),
        "error_rate": (total.error_rate, "%"),
        "cache_hit_ratio": (total.cache_hit_ratio, "% higher"),
        "throughput": (side.throughput, "req/s higher"),
        "generator_lag_p99": (side.lag_p99_ms, "ms"),
        "server_peak_rss": (side.peak_rss, "B"),
        "rss_slope": (side.rss_slope[0] if side.rss_slope else None, "B"),
    }
    return {key: [value, unit] for key, (value, unit) in values.items() if value is not None}
