"""Repository work on a real worker process, over the real broker."""

import subprocess
from pathlib import Path

from apps.projects import repository
from apps.projects.models import Project, SyncStatus
from apps.projects.tasks import sync_project

from ..repos import make_service_repo
from ..workers import wait_for
from .worker_tasks import hold_worktree


def test_a_real_worker_clones_a_registered_repository(worker, api_as, admin, tmp_path):
    make_service_repo(tmp_path / "upstream")
    worker()
    response = api_as(admin).post(
        "/api/projects/",
        {"name": "Billing", "slug": "billing", "repository_url": str(tmp_path / "upstream")},
        format="json",
    )
    assert response.status_code == 201
    wait_for(
        lambda: Project.objects.get().sync_status == SyncStatus.OK,
        what="the worker to clone the repository",
    )
    assert repository.has_clone(Project.objects.get())


def _worktrees(project) -> list[str]:
    out = subprocess.run(
        ["git", "--git-dir", str(repository.clone_path(project)), "worktree", "list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line for line in out.splitlines() if "(bare)" not in line]


def test_worktrees_of_a_killed_worker_are_removed_when_it_starts_again(worker, admin, tmp_path):
    shas = make_service_repo(tmp_path / "upstream")
    project = Project.objects.create(
        name="Billing", slug="billing", repository_url=str(tmp_path / "upstream")
    )
    sync_project(project.pk)
    flags = tmp_path / "flags"
    flags.mkdir()
    first = worker(include=("tests.projects.worker_tasks",))
    hold_worktree.delay(project.pk, shas["fix/cache"], str(flags))
    wait_for(lambda: (flags / "checked-out").exists(), what="the task to check out")
    checkout = Path((flags / "checked-out").read_text())
    assert checkout.is_dir()
    assert len(_worktrees(project)) == 1

    first.kill9()
    assert checkout.is_dir(), "kill -9 runs no cleanup: the worktree is left behind"

    (flags / "checked-out").unlink()
    worker(include=("tests.projects.worker_tasks",))
    assert not checkout.exists()
    # A redelivered task may check out again; whatever it does, it must clean up after itself.
    (flags / "release").write_text("")
    wait_for(lambda: not _worktrees(project), what="every worktree to be removed")
