"""The one place that runs an external command for fixledger and says what it cost.

Every command goes through :class:`CommandRunner`: an argv list (never a shell), an explicit
environment, a timeout and an optional memory limit. The command does not run as a child of the
worker: ``launcher.py``, a small stdlib-only interpreter, starts it in its own session and reports
the kernel's ``wait4`` figures for it. A child's ``ru_maxrss`` is never lower than what it
inherits from its parent, so spawned straight from a 500 MB worker even ``python -c pass`` would
"peak" at 500 MB. The launcher measures the floor it imposes itself, and a peak at that floor is
flagged (``rss_at_floor``) instead of being passed off as the target's own.

Peak memory, CPU time and wall time come from the launcher; psutil only draws the RSS timeline
and enforces the memory limit, because polling misses short spikes that the kernel does not.

With a :class:`~apps.measurements.sandbox.Sandbox` the launcher itself runs inside bubblewrap, so
the target's peak is still its own and the whole sandbox dies with the run. The launcher then
reports pids of the sandbox's PID namespace; the sampler finds the target's host pid below the
bwrap process (``NSpid`` in /proc) and watches its tree from the host side.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import psutil

from .sampling import downsample

if TYPE_CHECKING:
    from .sandbox import Sandbox

LAUNCHER = Path(__file__).with_name("launcher.py")

# 20 ms. tests/benchmarks/measure_overhead.py, on a 2-core VM shared with other work: the sampler
# thread costs about 2 % of one core at 20 ms (0.35-0.45 ms a tick, wake-up included), 3.5-4.5 %
# at 10 ms, 1 % at 50 ms, and the wall time recorded for a 0.2 s command is the same with and
# without it (ratio 0.99-1.00, within noise). Peaks come from wait4, so a finer timeline would buy
# nothing; a coarser one leaves a 0.2 s run with 4 points and lets a runaway allocation overshoot
# the memory limit by 2.5 times as much.
DEFAULT_SAMPLE_INTERVAL = 0.02
DEFAULT_MAX_POINTS = 200
TAIL_LINES = 50
TAIL_BYTES = 8 * 1024
# A profile printing metrics in a loop must not turn one run into an unbounded JSON column.
MAX_METRICS = 200
# The floor probe stops just short of exec; execve and the pages touched around it add some
# more: /bin/true was seen 280 kB above the floor here. The smallest real Python command
# (`python -I -S -c pass`) peaks about 1.3 MB above it, so half a megabyte tells them apart.
FLOOR_MARGIN_BYTES = 512 * 1024
_MAX_SEEN = 1024
# Scratch folders are named <prefix><worker pid>-<random>, so a dead worker's can be told apart.
SCRATCH_PREFIX = "fixledger-run-"
# Only these are taken from the worker: its environment holds SECRET_KEY, DATABASE_URL and
# broker credentials, which measured code has no business seeing.
BASE_ENV = ("PATH", "HOME", "LANG", "TMPDIR")

_METRIC = re.compile(
    r"METRIC[ \t]+([A-Za-z0-9_.-]{1,64})=([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
    r"(?:[ \t]+(\S{1,32}))?"
    # An optional direction ("lower" or "higher" is better) travels on with the unit.
    r"(?:[ \t]+(lower|higher))?"
)


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What one execution of a command did, as trustworthy numbers.

    ``peak_rss_bytes`` is the kernel's high-water mark for the target (and any descendant it
    waited for). ``launcher_rss_bytes`` is the smallest peak the launcher can report for any
    target; ``rss_at_floor`` says the peak is not above it (by more than FLOOR_MARGIN_BYTES), so
    the target's real peak is unknown but no larger. ``wall_seconds`` runs from fork to exit, as
    around a bare ``subprocess.run``; CPU times include descendants the target waited for.
    ``rss_timeline`` holds (seconds since start, bytes) samples of the whole process tree, for
    charts only. ``sandboxed`` says the command ran in the sandbox; ``stopped`` that the caller
    ended it (``stop``), which is not a failure.
    """

    argv: list[str]
    exit_code: int | None = None
    signal: int | None = None
    timed_out: bool = False
    memory_exceeded: bool = False
    wall_seconds: float = 0.0
    user_seconds: float = 0.0
    system_seconds: float = 0.0
    peak_rss_bytes: int = 0
    launcher_rss_bytes: int = 0
    rss_at_floor: bool = False
    rss_timeline: list[tuple[float, int]] = dataclasses.field(default_factory=list)
    output_tail: str = ""
    metrics: dict[str, tuple[float, str]] = dataclasses.field(default_factory=dict)
    failure: str = ""
    sandboxed: bool = False
    stopped: bool = False

    @property
    def ok(self) -> bool:
        return not self.failure


def parse_metric_lines(text: str) -> dict[str, tuple[float, str]]:
    """``METRIC name=value [unit]`` lines to {name: (value, unit)}; the last value of a name wins.

    Anything else, including a malformed METRIC line or a value that is not a finite number, is
    ordinary output and ignored.
    """
    metrics: dict[str, tuple[float, str]] = {}
    for line in text.splitlines():
        _add_metric(metrics, line)
    return metrics


def _add_metric(metrics: dict[str, tuple[float, str]], line: str) -> None:
    match = _METRIC.fullmatch(line.rstrip())
    if match is None:
        return
    name, value, unit = match[1], float(match[2]), " ".join(filter(None, match.group(3, 4)))
    if math.isfinite(value) and (name in metrics or len(metrics) < MAX_METRICS):
        metrics[name] = (value, unit)


class CommandRunner:
    """Runs one command at a time through the launcher and returns a :class:`RunResult`.

    ``sandbox`` is required so that no caller runs code unsandboxed by forgetting it: None runs
    commands as the worker's user, as the admin allowed (sandbox.for_this_worker). ``grace`` is
    how long past the timeout the launcher may take to report before the runner kills everything
    itself; ``startup_timeout`` bounds the launcher's own start.
    """

    def __init__(
        self,
        *,
        sandbox: Sandbox | None,
        python: str | None = None,
        grace: float = 5.0,
        startup_timeout: float = 30.0,
        scratch_root: Path | str | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.python = python or (sandbox.python if sandbox else sys.executable)
        self.grace = grace
        self.startup_timeout = startup_timeout
        self.scratch_root = Path(scratch_root or tempfile.gettempdir())
        self._sweep_scratch()

    def _sweep_scratch(self) -> None:
        """Remove the output folders of workers that died mid-run (SIGKILL skips cleanup)."""
        for folder in self.scratch_root.glob(f"{SCRATCH_PREFIX}*-*"):
            pid = folder.name.removeprefix(SCRATCH_PREFIX).partition("-")[0]
            if folder.is_dir() and pid.isdigit() and not psutil.pid_exists(int(pid)):
                shutil.rmtree(folder, ignore_errors=True)

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | str,
        env: Mapping[str, str] | None,
        timeout: float,
        memory_limit_bytes: int | None = None,
        sample_interval: float = DEFAULT_SAMPLE_INTERVAL,
        max_points: int = DEFAULT_MAX_POINTS,
        network: str = "none",
        stop: threading.Event | None = None,
        on_start: Callable[[int], None] | None = None,
    ) -> RunResult:
        """Run ``argv`` in ``cwd`` and say what it cost.

        ``network="loopback"`` is for a served service (see the sandbox's docstring). Setting
        ``stop`` kills the command, which is then reported as stopped rather than failed: a
        long-lived service runs until its probe is done. ``on_start`` gets the target's host pid
        once it runs (for Sandbox.join_network), in the runner's thread: it must return at once.
        """
        argv = list(argv)
        if not argv or not all(isinstance(arg, str) and "\0" not in arg for arg in argv):
            raise ValueError("argv must be a non-empty list of strings without NUL")
        if not 0 < timeout < math.inf or not sample_interval > 0 or max_points < 2:
            raise ValueError("timeout and sample_interval must be positive, max_points >= 2")
        if memory_limit_bytes is not None and memory_limit_bytes <= 0:
            raise ValueError("memory_limit_bytes must be positive or None")
        cwd = str(Path(cwd).absolute())
        spec = {
            "argv": argv,
            "cwd": cwd,
            "env": _target_env(env, self.sandbox.base_env() if self.sandbox else None),
            "timeout": timeout,
        }
        prefix = f"{SCRATCH_PREFIX}{os.getpid()}-"
        with (
            tempfile.TemporaryDirectory(prefix=prefix, dir=self.scratch_root) as scratch,
            open(os.path.join(scratch, "output"), "w+b") as output,
        ):
            # Handed over open and read back through the same descriptor: the command never
            # sees the scratch folder, so it cannot swap the file for a link to a secret.
            spec["output_fd"] = output.fileno()
            launcher_log = os.path.join(scratch, "launcher.log")
            command = [self.python, "-I", "-S", str(LAUNCHER)]
            if self.sandbox:
                if not os.path.isdir(cwd):  # bwrap's own message would name its bind
                    failure = f"could not start: working directory {cwd!r}: No such directory"
                    return RunResult(argv=argv, failure=failure, sandboxed=True)
                command = self.sandbox.command(command, cwd=cwd, writable=[cwd], network=network)
            with open(launcher_log, "wb") as log:
                try:
                    launcher = subprocess.Popen(  # noqa: S603 - fixed argv: bwrap, this interpreter, launcher.py
                        command,
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=log,
                        close_fds=True,
                        pass_fds=(output.fileno(),),
                        start_new_session=True,
                        env={},
                    )
                except OSError as exc:
                    return RunResult(argv=argv, failure=f"could not start: the launcher: {exc}")
            try:
                fields = self._supervise(
                    launcher, spec, memory_limit_bytes, sample_interval, max_points, stop, on_start
                )
            finally:
                _close_launcher(launcher)
            if "failure" not in fields:
                fields.update(_read_output(output))
            elif fields["failure"].startswith("could not start: the launcher"):
                fields["failure"] += _last_line(launcher_log)
        fields["sandboxed"] = self.sandbox is not None
        return _result(argv, timeout, memory_limit_bytes, fields)

    def _supervise(
        self,
        launcher: subprocess.Popen,
        spec: dict,
        memory_limit: int | None,
        sample_interval: float,
        max_points: int,
        stop: threading.Event | None,
        on_start: Callable[[int], None] | None,
    ) -> dict:
        stdout = _EventReader(launcher.stdout.fileno())
        try:
            launcher.stdin.write(json.dumps(spec).encode() + b"\n")
            launcher.stdin.flush()
        except OSError:
            pass  # the launcher died at once; its missing answer below says so
        started = stdout.next(time.monotonic() + self.startup_timeout)
        if started.get("event") == "error":
            return {"failure": f"could not start: {started.get('message', '')}"}
        if started.get("event") != "started":
            why = "did not answer in time" if started else "exited without answering"
            return {"failure": f"could not start: the launcher {why}. "}
        floor = started["floor_kb"] * 1024

        def request_kill() -> None:
            with contextlib.suppress(OSError):
                os.write(launcher.stdin.fileno(), b"k")

        if self.sandbox:
            root = _in_namespace(launcher.pid, started["pid"])
        else:
            root = _child_of(launcher.pid, started["pid"])
        sampler = _TreeSampler(root, memory_limit, sample_interval, max_points, request_kill, stop)
        sampler.start()
        if on_start is not None and root is not None:
            on_start(root.pid)
        try:
            finished = stdout.next(time.monotonic() + spec["timeout"] + self.grace)
            backstop = finished.get("event") != "finished"
            if backstop:
                # Stopped first: its kill request must not be written to a closed descriptor.
                sampler.stop()
                # The launcher kills the target when its stdin closes; if it cannot, we do.
                with contextlib.suppress(OSError):
                    launcher.stdin.close()
                finished = stdout.next(time.monotonic() + 2.0)
                if finished.get("event") != "finished":
                    sampler.kill_tree()
                    if stdout.eof:
                        return {"failure": "the launcher died before reporting; killed the command"}
                    finished = {}
        finally:
            sampler.stop()
            sampler.kill_leftovers()
        fields = {
            "launcher_rss_bytes": floor,
            "rss_timeline": sampler.timeline(),
            "memory_exceeded": sampler.exceeded,
            # Only a stop that ended the target: one that exited on its own earlier did not stop.
            "stopped": sampler.stopped
            and not sampler.exceeded
            and finished.get("outcome") == "stopped",
            "timed_out": backstop or finished.get("outcome") == "timeout",
        }
        if finished:
            peak = finished["maxrss_kb"] * 1024
            fields.update(
                exit_code=finished["exit_code"],
                signal=finished["signal"],
                wall_seconds=finished["wall_seconds"],
                user_seconds=finished["user_seconds"],
                system_seconds=finished["system_seconds"],
                peak_rss_bytes=peak,
                rss_at_floor=peak <= floor + FLOOR_MARGIN_BYTES,
            )
        else:
            fields["exit_code"] = None
            fields["signal"] = signal.SIGKILL.value
        return fields


def _target_env(env: Mapping[str, str] | None, base: dict[str, str] | None) -> dict[str, str]:
    if base is None:
        merged = {name: os.environ[name] for name in BASE_ENV if name in os.environ}
    else:
        merged = dict(base)
    merged.setdefault("PATH", os.defpath)
    merged.update(env or {})
    for name, value in merged.items():
        if not isinstance(name, str) or not name or "=" in name or "\0" in name:
            raise ValueError(f"invalid environment variable name: {name!r}")
        if not isinstance(value, str) or "\0" in value:
            raise ValueError(f"environment variable {name} must be a string without NUL")
    return merged


def _result(argv: list[str], timeout: float, memory_limit: int | None, fields: dict) -> RunResult:
    if "failure" in fields:
        return RunResult(
            argv=argv, failure=fields["failure"].strip(), sandboxed=fields["sandboxed"]
        )
    peak = fields.get("peak_rss_bytes", 0)
    # The sampler can miss a spike shorter than its interval; the kernel's peak cannot.
    if memory_limit and peak > memory_limit and not fields.get("rss_at_floor"):
        fields["memory_exceeded"] = True
    if fields["memory_exceeded"]:
        failure = f"exceeded the memory limit of {_megabytes(memory_limit)} MB"
    elif fields["timed_out"]:
        failure = f"timed out after {timeout:g} s"
    elif fields["stopped"]:
        failure = ""
    elif fields["signal"] is not None:
        failure = f"killed by signal {fields['signal']} ({_signal_name(fields['signal'])})"
    elif fields["exit_code"]:
        failure = f"exited with code {fields['exit_code']}"
    else:
        failure = ""
    return RunResult(argv=argv, failure=failure, **fields)


def _megabytes(size: int | None) -> str:
    megabytes = (size or 0) / (1024 * 1024)
    return f"{megabytes:.0f}" if megabytes == round(megabytes) else f"{megabytes:.1f}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown"


def _close_launcher(launcher: subprocess.Popen) -> None:
    with contextlib.suppress(OSError):
        launcher.stdin.close()  # if it is still watching a target, this kills the target
    # Its stdout reaches EOF as it exits; waiting for that is quicker than wait(timeout), which
    # sleeps between polls.
    fd = launcher.stdout.fileno()
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    deadline = time.monotonic() + 5.0
    with contextlib.suppress(OSError):
        while (remaining := deadline - time.monotonic()) > 0:
            if not poller.poll(math.ceil(remaining * 1000)) or not os.read(fd, 65536):
                break
    launcher.stdout.close()
    try:
        launcher.wait(timeout=1.0)
    except subprocess.TimeoutExpired:
        launcher.kill()
        launcher.wait()


def _read_output(output: BinaryIO) -> dict:
    """The output's tail, and its METRIC lines wherever they are."""
    metrics: dict[str, tuple[float, str]] = {}
    try:
        output.seek(0)
        for line in output:
            if line.startswith(b"METRIC"):
                _add_metric(metrics, line.decode(errors="replace"))
        size = output.tell()
        output.seek(max(0, size - TAIL_BYTES))
        tail = output.read(TAIL_BYTES)
    except OSError:
        return {"output_tail": "", "metrics": metrics}
    if size > TAIL_BYTES and b"\n" in tail[:-1]:
        tail = tail[tail.index(b"\n") + 1 :]  # a cut first line would mislead
    lines = tail.decode(errors="replace").splitlines()[-TAIL_LINES:]
    return {"output_tail": "\n".join(lines), "metrics": metrics}


def _last_line(path: str) -> str:
    try:
        with open(path, "rb") as log:
            lines = log.read()[-2000:].decode(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""


class _EventReader:
    """JSON lines from the launcher's stdout, each awaited no longer than a deadline."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""
        self.poller = select.poll()  # not select.select: a busy worker's fds may pass 1024
        self.poller.register(fd, select.POLLIN)
        self.eof = False

    def next(self, deadline: float) -> dict:
        """The next event, or {} on timeout, end of stream or a line that is not JSON."""
        while b"\n" not in self.buffer and not self.eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.poller.poll(math.ceil(remaining * 1000)):
                return {}
            chunk = os.read(self.fd, 65536)
            self.buffer += chunk
            self.eof = not chunk
        line, _newline, self.buffer = self.buffer.partition(b"\n")
        try:
            event = json.loads(line)
        except ValueError:
            return {}
        return event if isinstance(event, dict) else {}


class _TreeSampler:
    """Samples the RSS of the target's process tree in a thread: the timeline, the limit and
    the caller's stop request.

    The tree's RSS is the sum over its processes, so pages that forked workers share are counted
    once per worker: the limit errs on the side of killing, and USS would cost a full smaps read
    per process and tick.
    """

    def __init__(
        self,
        root: psutil.Process | None,
        limit: int | None,
        interval: float,
        max_points: int,
        kill: Callable[[], None],
        stop: threading.Event | None = None,
    ) -> None:
        self.root = root
        self.pid = root.pid if root else 0
        self.limit = limit
        self.interval = interval
        self.max_points = max_points
        self.kill = kill  # asks the launcher to kill the target: over the limit, or stopped
        self.exceeded = False
        self.stop_requested = stop
        self.stopped = False
        self.cpu_seconds = 0.0
        self.samples = 0
        self.points: list[tuple[float, int]] = []
        self.stride = 1
        # Everything ever seen in the tree, by identity: a descendant that left the target's
        # process group (setsid, double fork) is still killed when the run ends.
        self.seen: dict[tuple[int, float], psutil.Process] = {}
        self.children_files = _CHILDREN_FILES
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def start(self) -> None:
        if self.root is not None or self.stop_requested is not None:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        cpu_start = time.thread_time()
        start = time.monotonic()
        while True:
            rss = self._tree_rss()
            now = time.monotonic() - start
            if self.samples % self.stride == 0:
                self._record(now, rss)
            self.samples += 1
            if self.limit and rss > self.limit and not self.exceeded:
                self.exceeded = True
                self.kill()
            stop = self.stop_requested
            if stop is not None and stop.is_set() and not self.stopped:
                self.stopped = True
                self.kill()
            next_tick = start + self.samples * self.interval
            if self._stop.wait(max(0.0, next_tick - time.monotonic())):
                break
        self.cpu_seconds = time.thread_time() - cpu_start

    def _tree(self) -> list[psutil.Process]:
        if self.root is None:
            return []
        if not self.children_files:
            with contextlib.suppress(psutil.Error):
                return [self.root, *self.root.children(recursive=True)]
            return []
        tree, pending = [self.root], [self.pid]
        while pending:
            for child in _children(pending.pop()):
                with contextlib.suppress(psutil.Error):
                    tree.append(psutil.Process(child))
                    pending.append(child)
        return tree

    def _tree_rss(self) -> int:
        total = 0
        for proc in self._tree():
            try:
                total += proc.memory_info().rss
                self.seen.setdefault((proc.pid, proc.create_time()), proc)
            except psutil.Error:
                continue
        if len(self.seen) > _MAX_SEEN:
            # A build forking thousands of short-lived compilers must not grow this forever.
            self.seen = {key: proc for key, proc in self.seen.items() if proc.is_running()}
        return total

    def _record(self, seconds: float, rss: int) -> None:
        self.points.append((round(seconds, 4), rss))
        if len(self.points) >= 2 * self.max_points:
            # Keep memory bounded on long runs: halve the points, sample for the record half
            # as often.
            self.points = downsample(self.points, self.max_points)
            self.stride *= 2

    def timeline(self) -> list[tuple[float, int]]:
        return downsample(self.points, self.max_points)

    def kill_tree(self) -> None:
        """The backstop when the launcher cannot: SIGKILL the target's group, then the tree."""
        if self.root is not None:
            with contextlib.suppress(psutil.Error, OSError):
                if self.root.is_running():  # its group id cannot have been reused
                    os.killpg(self.pid, signal.SIGKILL)
        for proc in self._tree():
            with contextlib.suppress(psutil.Error):
                proc.kill()

    def kill_leftovers(self) -> None:
        killed = []
        for proc in self.seen.values():
            with contextlib.suppress(psutil.Error):
                proc.kill()  # psutil checks the process is still the one that was seen
                killed.append(proc)
        # SIGKILL takes effect asynchronously; a dying process still holding memory would
        # disturb the next run. Not psutil.wait_procs: it waits out its timeout on a zombie that
        # a non-reaping PID 1 (some containers) never collects.
        deadline = time.monotonic() + 2.0
        while killed and time.monotonic() < deadline:
            killed = [proc for proc in killed if _alive(proc)]
            if killed:
                time.sleep(0.005)


# /proc/<pid>/task/<tid>/children lists a process's children directly; psutil's children()
# reads every process on the host, 2.3 ms a tick with ~90 processes.
_CHILDREN_FILES = os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as children:
                found += [int(child) for child in children.read().split()]
        except OSError:
            continue
    return found


def _child_of(parent: int, pid: int) -> psutil.Process | None:
    """The process ``pid`` if it is ``parent``'s child: not a stranger that reused a reaped pid."""
    with contextlib.suppress(psutil.Error):
        proc = psutil.Process(pid)
        if proc.ppid() == parent:
            return proc
    return None


def _in_namespace(bwrap_pid: int, ns_pid: int) -> psutil.Process | None:
    """The host's view of the process that is ``ns_pid`` in the sandbox below ``bwrap_pid``.

    bwrap, the launcher (pid 1 inside), the target: a level or two down, each found through its
    ``NSpid`` line, whose last field is its pid in the innermost namespace.
    """
    pending = [bwrap_pid]
    for _depth in range(4):
        below = []
        for parent in pending:
            for child in _children(parent) if _CHILDREN_FILES else _psutil_children(parent):
                if _namespace_pid(child) == ns_pid and child != bwrap_pid:
                    with contextlib.suppress(psutil.Error):
                        return psutil.Process(child)
                below.append(child)
        pending = below
    return None


def _psutil_children(pid: int) -> list[int]:
    with contextlib.suppress(psutil.Error):
        return [child.pid for child in psutil.Process(pid).children()]
    return []


def _namespace_pid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError):
        pass
    return 0


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
