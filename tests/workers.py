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


class Worker:
    """Start, kill and restart one worker; its whole process group goes at the end."""

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

    def start(self, timeout: float = 60) -> "Worker":
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            # The import-time data folder holds the filesystem broker's queues.
            "FIXLEDGER_DATA_DIR": str(configured.DATA_DIR),
            **self.env,
        }
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("a") as log:
            self.proc = subprocess.Popen(
                self.argv(),
                env=env,
                cwd=settings.BASE_DIR,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while " ready." not in self.log_path.read_text()[offset:]:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"worker did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        return self

    def kill9(self) -> None:
        """What the OOM killer or a lost host does: every process of the worker, at once.

        Also how tests stop workers: the answers are in the database already, and an orderly
        Celery shutdown takes seconds.
        """
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def use_worker_data_dir() -> Path:
    """Point the test at the worker's data folder, emptied of earlier tests' clones."""
    data = Path(configured.DATA_DIR)
    for sub in ("repos", "worktrees"):
        shutil.rmtree(data / sub, ignore_errors=True)
    settings.DATA_DIR = data
    return data


def wait_for(predicate, *, timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
