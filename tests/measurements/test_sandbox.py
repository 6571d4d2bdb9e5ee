"""The sandbox against real processes: what measured code can reach, and what outlives a run."""

import os
import signal
import socket
import statistics
import subprocess
import sys
import textwrap
import threading
import time

import psutil
import pytest

from apps.measurements.runner import CommandRunner
from apps.measurements.sandbox import CannotSandbox, Sandbox, for_this_worker, probe

pytestmark = pytest.mark.config_independent

PY = sys.executable
MB = 1024 * 1024


@pytest.fixture
def data_dir(tmp_path):
    """A data folder laid out like fixledger's: key, database, broker, two worktrees."""
    data = tmp_path / "data"
    (data / "broker" / "queue").mkdir(parents=True)
    (data / "secret_key").write_text("fixledger-test-secret-key")
    (data / "fixledger.sqlite3").write_bytes(b"SQLite format 3\0fixledger-test-database")
    for name in ("mine", "other"):
        (data / "worktrees" / "w" / name).mkdir(parents=True)
        (data / "worktrees" / "w" / name / "code.py").write_text("print('hello')\n")
    return data


@pytest.fixture
def work(data_dir):
    """The run's worktree, where the worker would check the revision out."""
    return data_dir / "worktrees" / "w" / "mine"


@pytest.fixture
def sandboxed(data_dir):
    return CommandRunner(sandbox=Sandbox.for_host(hidden=[data_dir]))


def run_py(runner, code, *, cwd, timeout=10.0, **kwargs):
    return runner.run([PY, "-c", textwrap.dedent(code)], cwd=cwd, env={}, timeout=timeout, **kwargs)


def survivors(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["status"] != psutil.STATUS_ZOMBIE and any(marker in arg for arg in cmdline):
            found.append(proc)
    return found


def test_the_workers_environment_is_nowhere_in_proc(sandboxed, work, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "fixledger-marker-secret-key")
    monkeypatch.setenv("DATABASE_URL", "postgres://fixledger-marker-password@db/x")
    result = run_py(
        sandboxed,
        """
        import os
        seen = []
        for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
            try:
                seen.append(open(f"/proc/{pid}/environ", "rb").read().decode(errors="replace"))
            except OSError as exc:
                seen.append(f"{pid}: {exc}")
        print(len(seen), "processes")
        print("\\n".join(seen))
        print(sorted(os.environ))
        """,
        cwd=work,
    )
    assert result.ok, result.failure
    assert result.sandboxed
    assert "fixledger-marker" not in result.output_tail
    # Only the sandbox's own: the launcher and this command.
    assert int(result.output_tail.split()[0]) == 2
    assert "['HOME', 'LANG', 'PATH', 'TMPDIR']" in result.output_tail


def test_the_data_folder_is_invisible_and_only_the_worktree_writable(
    sandboxed, data_dir, work, tmp_path
):
    home = os.path.expanduser("~")
    host_tmp = f"/tmp/fixledger-sandbox-escape-{os.getpid()}"  # noqa: S108 - the host's /tmp
    mine = work
    result = run_py(
        sandboxed,
        f"""
        import os
        def attempt(what, action):
            try:
                action()
                print(what, "SUCCEEDED")
            except OSError as exc:
                print(what, "refused:", exc.strerror)
        attempt("read key", lambda: open({str(data_dir / "secret_key")!r}).read())
        attempt("read db", lambda: open({str(data_dir / "fixledger.sqlite3")!r}, "rb").read())
        attempt("list broker", lambda: os.listdir({str(data_dir / "broker")!r}))
        attempt("read other", lambda: open({str(data_dir / "worktrees/w/other/code.py")!r}).read())
        for path in [{str(data_dir / "x")!r}, {str(data_dir / "worktrees/w/other/x")!r},
                     {host_tmp!r}, {os.path.join(home, "fixledger-escape")!r}, "/usr/x",
                     {str(tmp_path / "x")!r}]:
            attempt("write " + path, lambda: open(path, "w").write("escaped"))
        print("data folder holds", os.listdir({str(data_dir)!r}))
        open("result.txt", "w").write("written")
        open("/tmp/scratch", "w").write("private")
        """,
        cwd=mine,
    )
    assert result.ok, result.failure
    output = result.output_tail
    for what in ("read key", "read db", "list broker", "read other"):
        assert f"{what} refused: No such file or directory" in output
    for path in ("/usr/x", os.path.join(home, "fixledger-escape")):
        assert f"write {path} refused: Read-only file system" in output
    # The rest lie under /tmp here, so in the sandbox's own /tmp: the host never sees them.
    assert "data folder holds ['worktrees']" in output or str(data_dir).startswith("/tmp/")  # noqa: S108
    for path in (data_dir / "x", data_dir / "worktrees/w/other/x", tmp_path / "x"):
        assert not path.exists()
    assert (data_dir / "secret_key").read_text() == "fixledger-test-secret-key"
    assert sorted(os.listdir(data_dir)) == [
        "broker",
        "fixledger.sqlite3",
        "secret_key",
        "worktrees",
    ]
    assert not os.path.exists(host_tmp)
    assert not os.path.exists(os.path.join(home, "fixledger-escape"))
    assert not os.path.exists("/tmp/scratch")  # noqa: S108 - the host's /tmp
    assert (mine / "result.txt").read_text() == "written"


def test_no_network_not_even_the_hosts_loopback(sandboxed, work):
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    with listener:
        result = run_py(
            sandboxed,
            f"""
            import socket
            for address in [("127.0.0.1", {port}), ("1.1.1.1", 53)]:
                try:
                    socket.create_connection(address, timeout=2).close()
                    print(address, "CONNECTED")
                except OSError as exc:
                    print(address, "blocked:", exc)
            """,
            cwd=work,
        )
        with pytest.raises(TimeoutError):
            listener.accept()
    assert result.ok, result.failure
    assert "CONNECTED" not in result.output_tail
    assert result.output_tail.count("blocked") == 2


def test_loopback_mode_serves_on_the_sandboxs_own_loopback(sandboxed, work):
    result = run_py(
        sandboxed,
        """
        import socket
        server = socket.create_server(("127.0.0.1", 8000))
        client = socket.create_connection(("localhost", 8000), timeout=2)
        peer, _ = server.accept()
        client.sendall(b"ping")
        print("served", peer.recv(4))
        """,
        cwd=work,
        network="loopback",
    )
    assert result.ok, result.failure
    assert "served b'ping'" in result.output_tail


def test_a_stopped_service_is_reported_stopped_not_failed(sandboxed, work):
    stop = threading.Event()
    pids = []

    def on_start(pid):
        pids.append(pid)
        threading.Timer(0.5, stop.set).start()

    started = time.monotonic()
    result = run_py(
        sandboxed,
        """
        import socket, time
        server = socket.create_server(("127.0.0.1", 8000))
        print("serving", flush=True)
        while True:
            time.sleep(1)
        """,
        cwd=work,
        timeout=30,
        network="loopback",
        stop=stop,
        on_start=on_start,
    )
    assert time.monotonic() - started < 5
    assert result.ok and result.stopped and not result.timed_out, result
    assert result.failure == ""
    assert "serving" in result.output_tail
    assert result.peak_rss_bytes > result.launcher_rss_bytes
    assert not psutil.pid_exists(pids[0]) or psutil.Process(pids[0]).status() == "zombie"


def test_a_probe_reaches_a_served_service_by_joining_its_network(sandboxed, work):
    stop = threading.Event()
    answers = []

    def probe_the_service(pid):
        client = "import socket; print(socket.create_connection(('127.0.0.1', 8000)).recv(64))"
        argv = sandboxed.sandbox.join_network(pid, [PY, "-c", client])
        for _attempt in range(50):  # until the service listens
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            if done.returncode == 0:
                answers.append(done.stdout.strip())
                break
            time.sleep(0.05)
        stop.set()

    result = run_py(
        sandboxed,
        """
        import socket
        server = socket.create_server(("127.0.0.1", 8000))
        while True:
            peer, _ = server.accept()
            peer.sendall(b"served from the sandbox")
            peer.close()
        """,
        cwd=work,
        timeout=30,
        network="loopback",
        stop=stop,
        on_start=lambda pid: threading.Thread(target=probe_the_service, args=(pid,)).start(),
    )
    assert result.ok and result.stopped, result
    assert answers == ["b'served from the sandbox'"]


def test_the_command_cannot_forge_its_launchers_report(sandboxed, work):
    forged = '{"event": "finished", "outcome": "exited", "exit_code": 0, "signal": null, '
    forged += '"wall_seconds": 0.001, "user_seconds": 0, "system_seconds": 0, "maxrss_kb": 1}'
    result = run_py(
        sandboxed,
        f"""
        import os
        launcher = os.getppid()
        for path, mode in [(f"/proc/{{launcher}}/fd/1", "w"), (f"/proc/{{launcher}}/mem", "rb")]:
            try:
                with open(path, mode) as stream:
                    stream.write({forged!r} + "\\n") if mode == "w" else stream.read(1)
                print(path, "OPENED")
            except OSError as exc:
                print(path, "blocked:", exc.strerror)
        """,
        cwd=work,
    )
    assert result.ok, result.failure
    assert "OPENED" not in result.output_tail
    assert result.output_tail.count("blocked: Permission denied") == 2
    assert result.peak_rss_bytes > 1024 * 1024 and result.wall_seconds > 0.001


def test_the_output_cannot_be_swapped_for_a_host_file(sandboxed, data_dir, work):
    result = run_py(
        sandboxed,
        f"""
        import os
        print("where:", os.readlink("/proc/self/fd/1"))
        try:
            target = os.readlink("/proc/self/fd/1")
            os.unlink(target)
            os.symlink({str(data_dir / "secret_key")!r}, target)
            print("SWAPPED")
        except OSError as exc:
            print("blocked:", exc.strerror)
        """,
        cwd=work,
    )
    assert result.ok, result.failure
    assert "fixledger-test-secret-key" not in result.output_tail
    assert "SWAPPED" not in result.output_tail and "blocked:" in result.output_tail


def test_setsid_and_a_double_fork_leave_nothing_behind(sandboxed, work):
    marker = f"fixledger-escapee-{os.getpid()}"
    result = run_py(
        sandboxed,
        f"""
        import os, sys
        SLEEP = "import time; time.sleep(60)"
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv(sys.executable, [sys.executable, "-c", SLEEP, {marker!r}])
            os._exit(0)
        os.wait()
        """,
        cwd=work,
    )
    assert result.ok, result.failure
    assert survivors(marker) == []


def test_the_workers_death_kills_the_whole_sandbox(data_dir, work):
    marker = f"fixledger-orphan-{os.getpid()}"
    worker = subprocess.Popen(  # a stand-in worker running the real runner
        [
            PY,
            "-c",
            textwrap.dedent(
                f"""
                from apps.measurements.runner import CommandRunner
                from apps.measurements.sandbox import Sandbox
                runner = CommandRunner(sandbox=Sandbox.for_host(hidden=[{str(data_dir)!r}]))
                sleeper = "import os, time; os.fork() or os.setsid(); time.sleep(60)"
                runner.run([{PY!r}, "-c", sleeper, {marker!r}],
                           cwd={str(work)!r}, env={{}}, timeout=60)
                """
            ),
        ],
        cwd=os.getcwd(),
    )

    def sleepers():
        return [proc for proc in survivors(marker) if proc.pid != worker.pid]

    try:
        deadline = time.monotonic() + 10
        while len(sleepers()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(sleepers()) == 2
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    deadline = time.monotonic() + 3
    while sleepers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sleepers() == []


def test_peak_rss_inside_agrees_with_outside(sandboxed, work):
    allocate = "b = bytearray(100 * 1024 * 1024)\nfor i in range(0, len(b), 4096): b[i] = 1"
    peaks = {}
    for name, runner in (("outside", CommandRunner(sandbox=None)), ("inside", sandboxed)):
        results = [runner.run([PY, "-c", allocate], cwd=work, env={}, timeout=30) for _ in range(3)]
        assert all(result.ok for result in results)
        peaks[name] = statistics.median(result.peak_rss_bytes for result in results)
    assert peaks["outside"] > 100 * MB
    assert abs(peaks["inside"] / peaks["outside"] - 1) < 0.01, peaks


def test_the_timeline_and_memory_limit_follow_the_sandboxed_tree(sandboxed, work):
    result = run_py(
        sandboxed,
        """
        import subprocess, sys
        child = subprocess.Popen([sys.executable, "-c",
            "import time; b = bytearray(300 * 1024 * 1024); time.sleep(30)"])
        child.wait()
        """,
        cwd=work,
        memory_limit_bytes=150 * MB,
    )
    assert result.memory_exceeded and not result.ok
    assert result.failure == "exceeded the memory limit of 150 MB"
    assert max(rss for _t, rss in result.rss_timeline) > 150 * MB


def test_an_admin_may_show_more_folders_read_only(data_dir, work, tmp_path):
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    (runtime / "tool.py").write_text("print('from the runtime')")
    runner = CommandRunner(sandbox=Sandbox.for_host(hidden=[data_dir], readonly=[runtime]))
    result = run_py(
        runner,
        f"""
        import runpy
        runpy.run_path({str(runtime / "tool.py")!r})
        open({str(runtime / "x")!r}, "w")
        """,
        cwd=work,
    )
    assert "from the runtime" in result.output_tail
    assert "Read-only file system" in result.output_tail and not (runtime / "x").exists()


def test_a_host_that_cannot_sandbox_refuses_unless_allowed(settings):
    missing = Sandbox.for_host(hidden=[], bwrap="/nonexistent/bwrap")
    assert probe(missing) == "bubblewrap is not installed (/nonexistent/bwrap is missing)"
    settings.ALLOW_UNSANDBOXED_RUNS = False
    with pytest.raises(CannotSandbox, match="This worker cannot sandbox: bubblewrap is not"):
        for_this_worker(bwrap="/nonexistent/bwrap")
    settings.ALLOW_UNSANDBOXED_RUNS = True
    assert for_this_worker(bwrap="/nonexistent/bwrap") is None
    assert isinstance(for_this_worker(), Sandbox)  # this host can


def test_nothing_inside_the_data_folder_is_ever_shown(data_dir, tmp_path):
    with pytest.raises(ValueError, match="would show"):
        Sandbox.for_host(hidden=[sys.prefix])
    with pytest.raises(ValueError, match="would show /usr/local/fixledger through /usr"):
        Sandbox.for_host(hidden=["/usr/local/fixledger"])
    for folder in (tmp_path, data_dir / "worktrees"):
        with pytest.raises(ValueError, match="would show"):
            Sandbox.for_host(hidden=[data_dir], readonly=[folder])
    sandbox = Sandbox.for_host(hidden=[data_dir])
    with pytest.raises(ValueError, match="would show"):
        sandbox.command(["true"], cwd=str(data_dir), writable=[str(data_dir)])
