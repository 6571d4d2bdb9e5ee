"""A real Celery worker process for tests, on the same database and broker as the test."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

import apps.settings as configured


def database_url() -> str:
    """The URL of the database the test runs on (the test database, not the configured one)."""
    conf = connection.settings_dict
    if conf["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{conf['NAME']}"
    auth = conf["USER"] + (f":{conf['PASSWORD']}" if conf["PASSWORD"] else "")
    return f"postgres://{auth}@{conf['HOST']}:{conf['PORT'] or 5432}/{conf['NAME']}"


# Recovery timing for tests: a worker presumed dead after 3 s, beat reconciling every 2 s.
FAST_RECOVERY = {
    "WORK_HEARTBEAT_SECONDS": "1",
    "WORK_HEARTBEAT_STALE_SECONDS": "3",
    "WORK_RECONCILE_SECONDS": "2",
}


def process_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment of a worker or beat process on the test's database and broker."""
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        # The test's own keys on a Redis shared with other checkouts' test runs.
        "CELERY_BROKER_KEY_PREFIX": getattr(settings, "CELERY_BROKER_KEY_PREFIX", ""),
        # The import-time data folder holds the filesystem broker's queues.
        "FIXLEDGER_DATA_DIR": str(configured.DATA_DIR),
        **extra,
    }


class Process:
    """A Celery process started in its own group, ready once its log says `ready`."""

    ready = ""
    proc: subprocess.Popen | None = None
    log_path: Path
    env: dict[str, str]

    def argv(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 60):
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("a") as log:
            self.proc = subprocess.Popen(
                self.argv(),
                env=process_env(self.env),
                cwd=settings.BASE_DIR,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while self.ready not in self.log_path.read_text()[offset:]:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        return self

    def kill9(self) -> None:
        """What the OOM killer or a lost host does: every process of the group, at once.

        Also how tests stop workers: the answers are in the database already, and an orderly
        Celery shutdown takes seconds.
        """
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class Beat(Process):
    """Celery beat, publishing the periodic tasks (the reconcile passes) of the settings."""

    ready = "beat: Starting"

    def __init__(self, log_path: Path, env: dict[str, str] | None = None):
        self.log_path = log_path
        self.env = env or {}

    def argv(self) -> list[str]:
        argv = [sys.executable, "-m", "celery", "--app", "apps", "beat", "--loglevel", "INFO"]
        return [*argv, "--schedule", str(self.log_path.with_suffix(".schedule"))]


class Worker(Process):
    """Start, kill and restart one worker; its whole process group goes at the end."""

    ready = " ready."

    def __init__(
        self,
        name: str,
        log_path: Path,
        include: tuple[str, ...] = (),
        queues: tuple[str, ...] = ("default",),
        env: dict[str, str] | None = None,
    ):
        self.name = name
        self.log_path = log_path
        self.include = include
        self.queues = queues
        self.env = env or {}
        self.proc: subprocess.Popen | None = None

    def argv(self) -> list[str]:
        argv = [sys.executable, "-m", "celery", "--app", "apps", "worker"]
        argv += ["--concurrency", "1", "--queues", ",".join(self.queues), "--loglevel", "INFO"]
        argv += ["--hostname", self.name, "--without-mingle", "--without-gossip"]
        for module in self.include:
            argv += ["--include", module]
        return argv


def use_worker_data_dir() -> Path:
    """Point the test at the worker's data folder, emptied of earlier tests' clones."""
    data = Path(configured.DATA_DIR)
    for sub in ("repos", "worktrees"):
        shutil.rmtree(data / sub, ignore_errors=True)
    settings.DATA_DIR = data
    return data


def purge(queues) -> int:
    """Drop the messages waiting in `queues`; how many there were.

    Environment queues are named at run time, so Celery's own purge (the configured queues)
    does not reach them: a message a test leaves there would reach the next test's worker,
    for a row of the same id.
    """
    from apps.celery_app import app

    with app.connection_for_write() as conn:
        return sum(conn.default_channel.queue_purge(queue) or 0 for queue in set(queues))


def wait_for(predicate, *, timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
