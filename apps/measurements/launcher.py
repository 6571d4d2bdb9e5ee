"""Run one measured command and report its own resource usage; started by runner.CommandRunner.

Run as ``python -I -S launcher.py``: standard library only, no Django, no site packages, because
a child's ``ru_maxrss`` is never lower than what it inherits from the process that spawned it.
Spawned straight from a 500 MB worker, ``python -c pass`` reports 500 MB; spawned from this
process it reports its own ~10 MB.

Protocol, one JSON object per line:

* stdin, first line: ``{"argv": [...], "cwd": "...", "env": {...}, "timeout": 10.0,
  "output_fd": 3}``, the descriptor of a file the worker opened for the target's output (a path
  would be looked up again when the worker reads it, after the target could have swapped it for
  a link to anything). Afterwards Afterwards any byte on stdin, or stdin closing (the worker died or
  gave up), means "kill the target now".
* stdout: ``{"event": "started", "pid": ..., "floor_kb": ..., "hwm_kb": ...}`` once the target
  runs, then ``{"event": "finished", ...}``; or a single ``{"event": "error", ...}`` when the
  target could not be started.

The target gets its own session and process group, ``/dev/null`` as stdin, the output file as
stdout and stderr, exactly the given environment, and no other descriptor: everything this
process opens is close-on-exec, and fds 0-2 are replaced.
"""

import ctypes
import json
import os
import select
import signal
import sys
import time

# Fallback poll period when pidfd_open is missing (Linux < 5.3): short enough that a deadline
# overshoots by little, long enough to cost nothing measurable.
_FALLBACK_POLL_SECONDS = 0.01

_target_pid = 0
_reaped = False
_PR_SET_DUMPABLE = 4


def _emit(event: dict) -> None:
    try:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()
    except OSError:
        # The worker is gone (killed between starting us and reading this): nobody would ever
        # stop the target, so it goes now, with us.
        _kill_group()
        os._exit(1)


def _read_spec() -> dict:
    # os.read, not sys.stdin: a buffered reader could swallow the kill byte that follows the spec.
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(0, 65536)
        if not chunk:
            break
        data += chunk
    spec = json.loads(data)
    if not isinstance(spec, dict):
        raise ValueError("the spec must be a JSON object")
    argv, env = spec.get("argv"), spec.get("env")
    if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
        raise ValueError("argv must be a non-empty list of strings")
    if not (isinstance(env, dict) and all(isinstance(v, str) for v in env.values())):
        raise ValueError("env must map names to strings")
    if not isinstance(spec.get("cwd"), str):
        raise ValueError("cwd must be a path")
    output_fd = spec.get("output_fd")
    if isinstance(output_fd, bool) or not isinstance(output_fd, int) or output_fd < 3:
        raise ValueError("output_fd must be an inherited descriptor above 2")
    timeout = spec.get("timeout")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise ValueError("timeout must be a number of seconds")
    if not 0 < timeout < float("inf"):
        raise ValueError("timeout must be positive and finite")
    return spec


def _resolve(command: str, cwd: str, env: dict) -> str:
    # Resolved here, before forking, so that "not found" is a plain message rather than an errno
    # from the child; PATH is the target's own, as execvpe would use it.
    cwd = os.path.abspath(cwd)
    if "/" in command:
        return os.path.join(cwd, command)
    for folder in env.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(cwd, folder or ".", command)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(f"command not found: {command!r}")


def _kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _child(path: str, spec: dict, output_fd: int, null_fd: int, error_w: int) -> None:
    """Become the target; on failure tell the parent through error_w. Never returns."""
    stage = "setsid"
    try:
        os.setsid()
        stage = "chdir"
        os.chdir(spec["cwd"])
        stage = "exec"
        # Python ignores SIGPIPE and SIGXFSZ for itself; the target must get the defaults.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
        os.dup2(null_fd, 0)
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        if not path:
            os._exit(0)
        os.execve(path, spec["argv"], spec["env"])  # noqa: S606 - argv from an admin's profile
    except BaseException as exc:  # the child must never return into the launcher's code
        if error_w >= 0:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            os.write(error_w, f"{stage}: {reason}".encode(errors="replace"))
    finally:
        os._exit(127)


def _floor_kb(spec: dict, output_fd: int, null_fd: int) -> int:
    """The smallest ru_maxrss any target of this launcher can report.

    A forked child starts with this process's anonymous pages and faults in more while the
    interpreter runs up to exec; the kernel keeps that high-water mark across exec. A child that
    does the same work and stops just short of exec measures that floor (execve copying argv and
    env adds a little, which is why the runner compares with a margin).
    """
    pid = os.fork()
    if pid == 0:
        _child("", spec, output_fd, null_fd, -1)
    return os.wait4(pid, 0)[2].ru_maxrss


def _spawn(path: str, spec: dict, output_fd: int, null_fd: int) -> int:
    error_r, error_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        _child(path, spec, output_fd, null_fd, error_w)
    os.close(error_w)
    failure = b""
    while chunk := os.read(error_r, 4096):
        failure += chunk
    os.close(error_r)
    if failure:
        os.waitpid(pid, 0)
        reason = failure.decode(errors="replace")
        if reason.startswith("chdir: "):
            reason = f"working directory {spec['cwd']!r}: {reason[7:]}"
        elif reason.startswith("exec: "):
            reason = f"{path}: {reason[6:]}"
        raise OSError(reason)
    return pid


def _kill_group() -> None:
    # Only while the leader is unreaped: its zombie keeps the group id from being reused.
    if _target_pid and not _reaped:
        # Not contextlib.suppress: each module imported here raises every target's RSS floor.
        try:
            os.killpg(_target_pid, signal.SIGKILL)
        except ProcessLookupError:
            return


def _on_termination(signum, frame) -> None:
    _kill_group()
    os._exit(128 + signum)


def _exited(pid: int) -> bool:
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _watch(pid: int, deadline: float) -> str:
    """Wait until the target exits, the deadline passes or the worker says stop; don't reap."""
    poller = select.poll()
    poller.register(0, select.POLLIN)
    try:
        pidfd = os.pidfd_open(pid)
        poller.register(pidfd, select.POLLIN)
    except (AttributeError, OSError):
        pidfd = -1
    while True:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            return "timeout"
        if pidfd < 0:
            remaining = min(remaining, _FALLBACK_POLL_SECONDS)
        for fd, _events in poller.poll(max(1, int(remaining * 1000 + 0.999))):
            if fd == 0:
                # Whatever was sent, or EOF: the worker wants the target gone.
                os.read(0, 4096)
                return "stopped"
            if fd == pidfd:
                return "exited"
        if pidfd < 0 and _exited(pid):
            return "exited"


def _guard_self() -> None:
    """Keep the target off this process: in a sandbox both run as the same uid, and a dumpable
    launcher would let the target ptrace it or write a forged "finished" line into its stdout
    through /proc/<pid>/fd/1. Not dumpable, only a holder of CAP_SYS_PTRACE may. The import
    costs the floor 0.4 MB; a target's exec resets its own flag."""
    ctypes.CDLL(None).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


def main() -> int:
    global _target_pid, _reaped
    _guard_self()
    try:
        spec = _read_spec()
        path = _resolve(spec["argv"][0], spec["cwd"], spec["env"])
        output_fd = spec["output_fd"]
        os.set_inheritable(output_fd, False)  # the target gets it as its stdout and stderr only
        null_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except (OSError, ValueError) as exc:
        _emit({"event": "error", "message": str(exc)})
        return 2
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _on_termination)
    floor_kb = _floor_kb(spec, output_fd, null_fd)
    hwm_kb = _kb("VmHWM")
    started = time.perf_counter()
    try:
        _target_pid = _spawn(path, spec, output_fd, null_fd)
    except OSError as exc:
        _emit({"event": "error", "message": str(exc)})
        return 2
    _emit({"event": "started", "pid": _target_pid, "floor_kb": floor_kb, "hwm_kb": hwm_kb})
    outcome = _watch(_target_pid, started + spec["timeout"])
    ended = time.perf_counter()
    # On timeout or stop this is the kill; after a normal exit it takes anything the target left
    # running in its group with it, so nothing outlives its run.
    _kill_group()
    os.waitid(os.P_PID, _target_pid, os.WEXITED | os.WNOWAIT)
    _reaped = True
    _pid, status, usage = os.wait4(_target_pid, 0)
    _emit(
        {
            "event": "finished",
            "outcome": outcome,
            "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            "wall_seconds": ended - started,
            "user_seconds": usage.ru_utime,
            "system_seconds": usage.ru_stime,
            "maxrss_kb": usage.ru_maxrss,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
