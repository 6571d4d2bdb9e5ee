"""Repository work on a real worker process, over the real broker."""

import contextlib
import json
import subprocess
from pathlib import Path

import psutil

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


def test_checkouts_of_dead_processes_go_with_what_runs_in_them_and_live_ones_stay(admin, tmp_path):
    shas = make_service_repo(tmp_path / "upstream")
    project = Project.objects.create(
        name="Billing", slug="billing", repository_url=str(tmp_path / "upstream")
    )
    sync_project(project.pk)
    with contextlib.ExitStack() as stack:
        live = stack.enter_context(repository.checkout(project, shas["main"], worker="live@h"))
        # A checkout whose process was killed -9: entered, never left, its owner gone.
        never_left = repository.checkout(project, shas["fix/cache"], worker="dead@h")
        dead = never_left.__enter__()
        stack.callback(never_left.__exit__, None, None, None)
        gone = subprocess.Popen(["true"])
        gone.wait()
        owner = dead.with_name(f"{dead.name}.owner")
        owner.write_text(json.dumps({**json.loads(owner.read_text()), "pid": gone.pid}))
        escaped = subprocess.Popen(["sleep", "300"], cwd=dead, start_new_session=True)
        try:
            assert repository.remove_dead_worktrees() == [dead]
            assert not psutil.pid_exists(escaped.pid), "what ran in it was killed (and reaped)"
        finally:
            escaped.kill()
        assert not dead.exists()
        assert not owner.exists()
        assert live.is_dir()
        assert len(_worktrees(project)) == 1
    assert not _worktrees(project)
