"""Serve a revision on a loopback port, drive the generator at it, and stop every process after.

`serve_and_probe` is one side's block of an HTTP measurement for a served revision;
`probe_url` is the same for an environment's registered staging URL. Both return a
`ProbeResult`: the generator's JSON (see generator.py) or a failure sentence, never an
exception for something the service or the network did.

Faults and the reason each ends with: a port already taken ("port 8123 on 127.0.0.1 is already
taken"), a service that exits before it is ready ("exited with code 1 before it was ready",
plus its output tail), one that never becomes ready ("did not answer /health within 30 s"),
connection refused and timeouts during the run (the generator stops after 20 failures in a row
and says which), a service that dies mid-run ("exited with code -9 during the run"). Whatever
happened, `ServedProcess.stop` ends the whole process tree: its process group, then every
descendant ever seen (one that left the group with setsid included).
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil

from apps.measurements.runner import BASE_ENV

from .plan import Plan, PlanError, loopback_base_url, target_url, validate_base_url

GENERATOR = Path(__file__).with_name("generator.py")
PORT_PLACEHOLDER = "{port}"
DEFAULT_STARTUP_TIMEOUT = 30.0
# How long a service gets to exit after SIGTERM before its group is killed.
STOP_GRACE = 3.0
TAIL_BYTES = 4 * 1024
_POLL = 0.05


@dataclasses.dataclass
class ProbeResult:
    """One probe of one side. ``result`` is the generator's JSON when it ran at all (a failed run
    may still hold what was measured before the failure)."""

    base_url: str
    failure: str = ""
    result: dict[str, Any] | None = None
    startup_seconds: float | None = None
    service_output: str = ""

    @property
    def ok(self) -> bool:
        return not self.failure and self.result is not None


class ServedProcess:
    """A service started from a worktree, in its own session, with a minimal environment.

    This class is the one seam where the served process is started and stopped: the sandboxed
    runner (bubblewrap, loopback-only network) replaces it by providing the same four things —
    ``start()``, ``pid`` (the host pid whose tree holds the service, for memory sampling),
    ``exit_code()`` and ``stop()`` — plus ``output_tail()``. Until then it uses a plain
    ``Popen(start_new_session=True)``.
    """

    def __init__(self, argv: Sequence[str], *, cwd: str | os.PathLike, env: Mapping[str, str]):
        self.argv = list(argv)
        self.cwd = str(cwd)
        self.env = {name: os.environ[name] for name in BASE_ENV if name in os.environ}
        self.env.setdefault("PATH", os.defpath)
        self.env.update(env)
        # Kept open across stop() so the tail can still be read; close() releases it.
        self._output = tempfile.TemporaryFile()  # noqa: SIM115
        self._proc: subprocess.Popen | None = None
        self._seen: dict[tuple[int, float], psutil.Process] = {}

    def start(self) -> None:
        self._proc = subprocess.Popen(  # noqa: S603 - an admin's argv, never a shell
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.tree()

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("the service has not been started")
        return self._proc.pid

    def exit_code(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def tree(self) -> list[psutil.Process]:
        """The live processes of the service, remembered so that `stop` can find them all."""
        if self._proc is None or self._proc.poll() is not None:
            return [p for p in self._seen.values() if _alive(p)]
        try:
            root = psutil.Process(self._proc.pid)
            found = [root, *root.children(recursive=True)]
        except psutil.Error:
            found = []
        for proc in found:
            with contextlib.suppress(psutil.Error):
                self._seen.setdefault((proc.pid, proc.create_time()), proc)
        return found

    def listens_on(self, port: int) -> bool:
        for proc in self.tree():
            with contextlib.suppress(psutil.Error):
                for conn in proc.net_connections(kind="tcp"):
                    if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                        return True
        return False

    def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM the group, SIGKILL it after ``grace``, then kill every process ever seen."""
        if self._proc is None:
            return
        self.tree()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if self._proc.poll() is None:
                os.killpg(self._proc.pid, signal.SIGTERM)
                # A stopped process queues SIGTERM until it runs again.
                os.killpg(self._proc.pid, signal.SIGCONT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        for proc in self._seen.values():
            with contextlib.suppress(psutil.Error):
                proc.kill()  # psutil checks it is still the process that was seen
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=5)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and any(_alive(p) for p in self._seen.values()):
            time.sleep(0.01)

    def close(self) -> None:
        self._output.close()

    def client_argv(self, argv: Sequence[str]) -> list[str]:
        """How a client reaches the service (a sandboxed one wraps it into its network)."""
        return list(argv)

    def get(self, url: str) -> tuple[int | None, str]:
        """GET ``url`` on the service's loopback: status (None if no answer) and a note."""
        return _get(url)

    def output_tail(self) -> str:
        self._output.flush()
        size = self._output.seek(0, os.SEEK_END)
        self._output.seek(max(0, size - TAIL_BYTES))
        return self._output.read().decode("utf-8", "replace").strip()


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def free_port() -> int:
    """A loopback TCP port nobody listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def with_port(argv: Sequence[str], env: Mapping[str, str], port: int):
    """``{port}`` replaced in the argv and environment values; PlanError if it appears nowhere."""
    if not any(PORT_PLACEHOLDER in a for a in argv) and not any(
        PORT_PLACEHOLDER in v for v in env.values()
    ):
        raise PlanError("The serve command must take its port: write {port} in its argv.")
    return (
        [a.replace(PORT_PLACEHOLDER, str(port)) for a in argv],
        {k: v.replace(PORT_PLACEHOLDER, str(port)) for k, v in env.items()},
    )


def serve_and_probe(
    *,
    argv: Sequence[str],
    cwd: str | os.PathLike,
    plan: Plan,
    env: Mapping[str, str] | None = None,
    ready_path: str = "/",
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
    port: int | None = None,
    on_ready: Callable[[ServedProcess], None] | None = None,
    service_factory: Callable[..., ServedProcess] = ServedProcess,
) -> ProbeResult:
    """Start the service in ``cwd`` on a loopback port, wait until it answers ``ready_path``,
    run ``plan`` against it and stop it. ``port`` None picks a free one. ``on_ready`` is called
    with the running service just before the load starts."""
    port = port or free_port()
    base_url = loopback_base_url(port)
    if port_taken(port):
        return ProbeResult(base_url, failure=f"port {port} on 127.0.0.1 is already taken")
    argv, env = with_port(argv, env or {}, port)
    service = service_factory(argv, cwd=cwd, env=env)
    try:
        started = time.monotonic()
        try:
            service.start()
        except OSError as exc:
            return ProbeResult(base_url, failure=f"the service could not be started: {exc}")
        failure = _wait_ready(service, port, base_url, ready_path, startup_timeout)
        if failure:
            return ProbeResult(base_url, failure=failure, service_output=service.output_tail())
        startup = time.monotonic() - started
        if on_ready is not None:
            on_ready(service)
        memory_pid = service.pid if plan.memory.source == "process" else None
        result = run_generator(base_url, plan, memory_pid=memory_pid, wrap=service.client_argv)
        code = service.exit_code()
        if code is not None:
            result.failure = f"the service exited with {_exit(code)} during the run"
        result.startup_seconds = startup
        result.service_output = service.output_tail()
        return result
    finally:
        service.stop()
        service.close()


def probe_url(*, base_url: str, registered: Sequence[str], plan: Plan) -> ProbeResult:
    """Probe a running service (live staging) at ``base_url``, which must be one of the
    ``registered`` base URLs an admin entered for the environment."""
    try:
        url = validate_base_url(base_url)
        allowed = {validate_base_url(r) for r in registered}
    except PlanError as exc:
        return ProbeResult(str(base_url), failure=str(exc))
    if url not in allowed:
        return ProbeResult(url, failure=f"{url} is not a base URL registered for this environment")
    if plan.memory.source == "process":
        return ProbeResult(url, failure="a live URL has no process tree to read: use an endpoint")
    return run_generator(url, plan)


def _wait_ready(service: ServedProcess, port: int, base_url: str, path: str, timeout: float) -> str:
    url = target_url(base_url, path)
    deadline = time.monotonic() + timeout
    last = "nothing listened on the port"
    while True:
        code = service.exit_code()
        if code is not None:
            time.sleep(_POLL)  # let the last lines of output land
            tail = service.output_tail()
            if "address already in use" in tail.lower():
                return f"port {port} on 127.0.0.1 is already taken (the service could not bind it)"
            return f"the service exited with {_exit(code)} before it was ready"
        # Only our own listener counts: a stranger that took the port must not pass for ready.
        if service.listens_on(port):
            status, last = service.get(url)
            if status is not None and status < 500:
                return ""
        if time.monotonic() >= deadline:
            return f"the service did not answer {path} within {timeout:g} s ({last})"
        time.sleep(_POLL)


def _get(url: str) -> tuple[int | None, str]:
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    path = url[len("http://") + len(host_port) :] or "/"
    conn = http.client.HTTPConnection(host, int(port), timeout=2.0)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status, f"last answer: {response.status}"
    except (OSError, http.client.HTTPException) as exc:
        return None, f"last attempt: {exc}"
    finally:
        conn.close()


def _exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
    return f"code {code}"


def expected_seconds(plan: Plan) -> float:
    """An upper bound on a healthy run's length, for the generator's deadline."""
    total = plan.requests + plan.warmup
    if plan.mode == "rate":
        return total / plan.rate * 1.5 + plan.timeout + 10.0
    return min(3600.0, math.ceil(total / plan.concurrency) * plan.timeout + 10.0)


def run_generator(
    base_url: str,
    plan: Plan,
    *,
    memory_pid: int | None = None,
    deadline: float | None = None,
    wrap: Callable[[list[str]], list[str]] | None = None,
) -> ProbeResult:
    """Run generator.py in its own process against ``base_url`` and read its JSON. ``wrap``
    turns its argv into one that reaches the service (a sandbox's network namespace)."""
    deadline = deadline or expected_seconds(plan)
    job = {
        "base_url": base_url,
        "plan": plan.to_dict(),
        "memory_pid": memory_pid,
        "deadline": deadline,
    }
    env = {name: os.environ[name] for name in ("PATH", "LANG") if name in os.environ}
    try:
        argv = [sys.executable, "-I", str(GENERATOR)]
        completed = subprocess.run(  # noqa: S603 - our own script, fixed argv
            wrap(argv) if wrap else argv,
            input=json.dumps(job),
            capture_output=True,
            text=True,
            timeout=deadline + 30.0,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return ProbeResult(base_url, failure=f"the load generator hung past {deadline:.0f} s")
    if completed.returncode != 0:
        error = completed.stderr.strip().splitlines()[-1:] or ["no output"]
        return ProbeResult(
            base_url,
            failure=f"the load generator failed (exit {completed.returncode}): {error[0]}",
        )
    try:
        result = json.loads(completed.stdout)
    except ValueError:
        return ProbeResult(base_url, failure="the load generator printed no result")
    return ProbeResult(base_url, failure=result.get("failure", ""), result=result)
