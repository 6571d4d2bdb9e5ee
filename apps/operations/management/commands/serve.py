"""Serve the embedded default: one web process and one Celery worker, stopped together."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

STOP_GRACE_SECONDS = 10


class Command(BaseCommand):
    help = (
        "Run gunicorn and one Celery worker for a single host. Ctrl-C (or SIGTERM) stops both "
        "and everything they started; if either exits, the other is stopped too."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))

    def handle(self, *args, host, port, **options):
        bindir = Path(sys.executable).parent
        env = {**os.environ, "HOST": host, "PORT": str(port)}
        commands = {
            "web": [
                str(bindir / "gunicorn"),
                "apps.wsgi",
                "--config",
                str(settings.BASE_DIR / "deploy" / "gunicorn.conf.py"),
            ],
            "worker": [
                str(bindir / "celery"),
                "--app",
                "apps",
                "worker",
                "--concurrency",
                "1",
                "--loglevel",
                "INFO",
                "--queues",
                ",".join(["default", *_measurement_queues()]),
                "--hostname",
                "worker@%h",
                # One host, one worker: it also runs the periodic tasks.
                "--beat",
                "--schedule",
                str(settings.DATA_DIR / "celerybeat-schedule"),
            ],
        }
        # Links in mail and chat messages lead where this serves, unless SITE_URL says where
        # people reach it (a proxy in front).
        env["SITE_URL"] = os.environ.get("SITE_URL") or f"http://{host}:{port}"
        self.stdout.write(mail_destination())
        self.stdout.write(f"Links in notifications lead to {env['SITE_URL'].rstrip('/')}/.")
        # Each child leads its own process group, so stopping it reaches its own children
        # (gunicorn's workers, Celery's pool) and a terminal's Ctrl-C reaches only us.
        procs = {
            name: subprocess.Popen(argv, env=env, start_new_session=True)  # noqa: S603
            for name, argv in commands.items()
        }
        stopping = False

        def request_stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        self.stdout.write(f"Serving http://{host}:{port}/ with one worker; Ctrl-C stops both.")
        try:
            while not stopping and all(p.poll() is None for p in procs.values()):
                time.sleep(0.2)
        finally:
            exited = [name for name, p in procs.items() if p.poll() is not None]
            if exited and not stopping:
                self.stderr.write(f"{', '.join(exited)} exited; stopping the rest.")
            self._stop(procs)
        self.stdout.write("fixledger stopped.")

    def _stop(self, procs: dict[str, subprocess.Popen]) -> None:
        # Leaders first: gunicorn and Celery each stop their own children in order.
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for proc in procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        # Whatever is left in the groups (a hung task, a pool child) goes now.
        for proc in procs.values():
            _signal_group(proc, signal.SIGKILL)
            proc.wait()


def mail_destination() -> str:
    """Where the mail notifications go, in words."""
    backend = settings.EMAIL_BACKEND
    if backend.endswith(".filebased.EmailBackend"):
        return (
            f"Mail is written to files in {settings.EMAIL_FILE_PATH}, not sent: set "
            "EMAIL_HOST to send it (deploy/env.example)."
        )
    if backend.endswith(".smtp.EmailBackend"):
        return f"Mail goes out by SMTP through {settings.EMAIL_HOST}:{settings.EMAIL_PORT}."
    if backend.endswith(".console.EmailBackend"):
        return "Mail is printed here, not sent."
    return f"Mail goes through {backend}."


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def _measurement_queues() -> list[str]:
    """On one host, the one worker measures for every environment registered."""
    from apps.projects.models import Environment

    return [env.queue for env in Environment.objects.all()]
