"""The sandbox every command a worker runs on a revision goes through: bubblewrap (``bwrap``).

The code at a revision is whatever someone pushed, so it runs with nothing of fixledger in reach:

* its own user namespace, as uid/gid 65534 (even when the worker is root), with no capabilities
  and no further user namespaces (``--disable-userns``);
* its own PID namespace and a fresh ``/proc``: the worker's process, whose environment holds
  SECRET_KEY, DATABASE_URL and the broker's credentials, does not exist in there. When the
  namespace's first process goes, the kernel kills every other one, ``setsid`` and double forks
  included; ``--die-with-parent`` makes that happen when the worker dies too;
* its own network namespace: only a loopback interface of its own, no route anywhere else, so
  not to the database, the broker or the host's own ``127.0.0.1``;
* a read-only view of the system (``/usr`` and the ``/bin``, ``/lib*`` links or folders beside
  it, a handful of harmless files from ``/etc``, the Python installation and the worker's
  virtualenv, so that ``python`` and the worker's own interpreter resolve, and the folders an
  admin lists in FIXLEDGER_SANDBOX_READONLY), write access to the run's worktree alone (at its
  own path; the launcher's output is a descriptor the worker opened) and a private ``/tmp``.
  Nothing else exists: not the data folder (secret key file, SQLite database, other clones and
  worktrees, the filesystem broker), not ``/etc/fixledger``, not ``$HOME``;
* an empty environment (``--clearenv``); the launcher hands the target exactly the profile's
  variables on top of a minimal PATH, HOME, LANG and TMPDIR (:meth:`Sandbox.base_env`).

A worktree's ``.git`` is a file naming the project's clone under the data folder, so ``git``
does not work inside; python scripts, ``python -m pytest`` and ``ruff`` do.

Networking for served services (``network="loopback"``). A private network namespace means the
worker cannot reach a port the service opens on the sandbox's ``127.0.0.1``: that loopback is not
the host's. Sharing the host's network instead would hand the code the host's loopback, where the
database and broker listen, so it is not offered. The probe's client joins the sandbox instead:
the runner reports the target's host pid (``on_start``) and :meth:`Sandbox.join_network` gives
the argv that runs a client in that network namespace alone (``netns_join.py``; it works for
an unprivileged worker too, which owns the sandbox's user namespace). "none" and "loopback"
isolate alike; "loopback" states that the profile serves.

Where bwrap is missing or user namespaces are refused, :func:`for_this_worker` makes the worker
refuse to run anything, unless the admin set FIXLEDGER_ALLOW_UNSANDBOXED=true; such runs are
recorded as unsandboxed and the measurement page says so.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

SANDBOX_ID = 65534  # nobody / nogroup
# The sandbox's own /tmp: a tmpfs of its own, not the host's.
PRIVATE_TMP = "/tmp"  # noqa: S108
NETWORKS = ("none", "loopback")
# Read-only from /etc: the dynamic linker's cache, names for uids, name service order, the
# loopback's names, the time zone, Debian's alternatives links and CA certificates. Never the
# folder itself: it can hold the worker's configuration (/etc/fixledger/fixledger.env). Each is a
# mount that bwrap makes for every run (about 0.3 ms each), so the list stays short.
ETC_FILES = (
    "ld.so.cache",
    "passwd",
    "group",
    "nsswitch.conf",
    "hosts",
    "localtime",
    "alternatives",
    "ssl/certs",
)
# On merged-/usr Debian these are links into /usr; elsewhere folders of their own.
ROOT_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_HERE = Path(__file__).resolve().parent
# Files of fixledger the sandboxed commands run: the launcher and the tracemalloc probe.
TOOLS = (_HERE / "launcher.py", _HERE / "tracemalloc_probe.py")
NETNS_JOIN = _HERE / "netns_join.py"


class CannotSandbox(Exception):
    """This worker cannot sandbox and is not allowed to run unsandboxed."""


@dataclasses.dataclass(frozen=True)
class Sandbox:
    """How to start a command inside bubblewrap on this host; built by :meth:`for_host`."""

    bwrap: str
    python: str  # the interpreter's real path, for the launcher
    readonly: tuple[str, ...]  # folders shown read-only at their own paths
    tools: tuple[str, ...]  # files shown read-only at their own paths
    hidden: tuple[str, ...]  # may never be shown, nor be inside anything shown

    @classmethod
    def for_host(
        cls,
        *,
        hidden: Iterable[Path | str],
        readonly: Iterable[Path | str] = (),
        bwrap: str | None = None,
    ) -> Sandbox:
        """The sandbox for this interpreter, also showing the ``readonly`` folders; ValueError
        when something to show holds a hidden path (a data folder under /usr, say) or lies in
        one."""
        bwrap = bwrap or shutil.which("bwrap") or "/usr/bin/bwrap"
        python = os.path.realpath(sys.executable)
        folders: list[str] = []
        for folder in (*readonly, sys.base_prefix, sys.prefix):
            real = os.path.realpath(folder)
            if not os.path.isabs(str(folder)):
                raise ValueError(f"a folder to show must be an absolute path, not {folder!r}")
            if not _within(real, "/usr") and real not in folders:
                folders.append(real)
        sandbox = cls(
            bwrap=bwrap,
            python=python,
            readonly=tuple(folders),
            tools=tuple(str(tool) for tool in TOOLS),
            hidden=tuple(os.path.realpath(path) for path in hidden),
        )
        system = ["/usr", *(f"/{name}" for name in ROOT_LINKS if _is_folder(f"/{name}"))]
        for path in (*system, *sandbox.readonly, *sandbox.tools):
            sandbox._check_shown(path, writable=False)
        return sandbox

    def _check_shown(self, path: str, *, writable: bool) -> None:
        for secret in self.hidden:
            if _within(secret, path):
                raise ValueError(f"the sandbox would show {secret} through {path}")
            if not writable and _within(path, secret):
                raise ValueError(f"the sandbox would show {path}, inside {secret}")

    def base_env(self) -> dict[str, str]:
        """What every target gets before the profile's own variables."""
        path = [os.path.join(folder, "bin") for folder in reversed(self.readonly)]
        path += ["/usr/local/bin", "/usr/bin", "/bin"]
        return {
            "PATH": ":".join(path),
            "HOME": PRIVATE_TMP,
            "TMPDIR": PRIVATE_TMP,
            "LANG": "C.UTF-8",
        }

    def join_network(self, pid: int, argv: Sequence[str]) -> list[str]:
        """The host-side argv that runs ``argv`` (a trusted client, e.g. a load generator) in
        the network namespace of the sandboxed process ``pid`` (its host pid, from on_start)."""
        return [self.python, "-I", "-S", str(NETNS_JOIN), str(pid), *argv]

    def command(
        self, argv: Sequence[str], *, cwd: str, writable: Sequence[str], network: str = "none"
    ) -> list[str]:
        """bwrap's argv to run ``argv`` (absolute paths) in ``cwd`` inside the sandbox."""
        if network not in NETWORKS:
            raise ValueError(f"network must be one of {NETWORKS}, not {network!r}")
        args = [
            self.bwrap,
            "--unshare-all",  # user, pid, network, ipc, uts, cgroup namespaces
            "--unshare-user",  # implied unless bwrap runs as root; a root worker needs it said
            "--disable-userns",
            "--uid",
            str(SANDBOX_ID),
            "--gid",
            str(SANDBOX_ID),
            "--hostname",
            "sandbox",
            "--die-with-parent",
            # The command (the launcher) is the namespace's init: when it exits, the kernel has
            # killed everything else in there before bwrap sees it go, so nothing outlives the
            # run by even a moment; and nothing inside can kill it.
            "--as-pid-1",
            "--new-session",
            "--clearenv",
            "--ro-bind",
            "/usr",
            "/usr",
        ]
        for name in ROOT_LINKS:
            host = f"/{name}"
            if os.path.islink(host):
                args += ["--symlink", os.readlink(host), host]
            elif _is_folder(host):
                args += ["--ro-bind", host, host]
        for name in ETC_FILES:
            args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", PRIVATE_TMP]
        if not Path("/var/tmp").is_symlink():  # noqa: S108 - a tmpfs of its own, too
            args += ["--tmpfs", "/var/tmp"]  # noqa: S108
        for folder in self.readonly:
            args += ["--ro-bind", folder, folder]
        for tool in self.tools:
            args += ["--ro-bind", tool, tool]
        for folder in writable:
            folder = os.path.realpath(folder)
            self._check_shown(folder, writable=True)
            args += ["--bind", folder, folder]
        # The folders bwrap made to mount on stay empty and read-only.
        args += ["--remount-ro", "/", "--chdir", os.path.realpath(cwd), "--", *argv]
        return args


def _is_folder(path: str) -> bool:
    return os.path.isdir(path) and not os.path.islink(path)


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


@functools.cache
def probe(sandbox: Sandbox) -> str:
    """Why this host cannot run ``sandbox``, or "" when it can; asked once per process."""
    if not os.access(sandbox.bwrap, os.X_OK):
        return f"bubblewrap is not installed ({sandbox.bwrap} is missing)"
    with tempfile.TemporaryDirectory(prefix="fixledger-probe-") as scratch:
        argv = sandbox.command(
            [sandbox.python, "-I", "-S", "-c", "pass"], cwd=scratch, writable=[scratch]
        )
        try:
            done = subprocess.run(  # noqa: S603 - fixed argv: bwrap and this interpreter
                argv, capture_output=True, timeout=30, env={}, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bubblewrap could not start: {exc}"
    if done.returncode:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        return f"bubblewrap failed: {message[-1] if message else f'exit {done.returncode}'}"
    return ""


def for_this_worker(*, bwrap: str | None = None) -> Sandbox | None:
    """The sandbox this worker runs revisions in; None where the admin allows unsandboxed runs
    and this host cannot sandbox. Raises CannotSandbox otherwise."""
    from django.conf import settings

    hidden = [settings.DATA_DIR, "/etc/fixledger"]
    try:
        sandbox = Sandbox.for_host(
            hidden=hidden, readonly=settings.SANDBOX_READONLY_FOLDERS, bwrap=bwrap
        )
        reason = probe(sandbox)
    except ValueError as exc:
        reason = str(exc)
    if not reason:
        return sandbox
    if settings.ALLOW_UNSANDBOXED_RUNS:
        log.warning("running commands without a sandbox (FIXLEDGER_ALLOW_UNSANDBOXED): %s", reason)
        return None
    raise CannotSandbox(f"This worker cannot sandbox: {reason}.")
