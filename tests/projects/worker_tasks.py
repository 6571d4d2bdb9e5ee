"""Tasks the worker tests load into a real worker with `--include`."""

import time
from pathlib import Path

from celery import shared_task

from apps.projects import repository
from apps.projects.models import Project


@shared_task(bind=True)
def hold_worktree(self, project_id: int, sha: str, flag_dir: str) -> None:
    """Check `sha` out, say where, and keep it until told to let go (or two minutes pass)."""
    project = Project.objects.get(pk=project_id)
    flags = Path(flag_dir)
    with repository.checkout(project, sha, worker=self.request.hostname) as path:
        (flags / "checked-out").write_text(str(path))
        deadline = time.monotonic() + 120
        while not (flags / "release").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
