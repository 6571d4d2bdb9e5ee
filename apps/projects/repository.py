"""A project's clone on this host: where it lives, one git job at a time, and checkouts.

Each worker host keeps its own bare clone under the data folder. Work on a clone (clone, fetch,
worktrees, tags) takes an exclusive file lock, so two tasks on one host never write to the same
clone at once; reads (resolving a revision in a web request) need no lock.
"""

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
from django.conf import settings
from django.core.exceptions import ValidationError

from . import git
from .models import Project

LOCK_TIMEOUT_SECONDS = 900

log = logging.getLogger(__name__)


def clone_path(project: Project) -> Path:
    return settings.DATA_DIR / "repos" / f"{project.pk}.git"


def has_clone(project: Project) -> bool:
    return (clone_path(project) / "HEAD").exists()


@contextlib.contextmanager
def locked(project: Project, *, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[Path]:
    """Hold this host's lock on the project's clone; yields the clone's path."""
    path = clone_path(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock_file:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise git.GitError(
                        f"The repository of {project} is busy; try again in a few minutes."
                    ) from None
                time.sleep(0.2)
        try:
            yield path
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def sync(project: Project, *, fresh: bool = False) -> None:
    """Clone the project's repository, or fetch into the existing clone. Raises GitError.

    `fresh` drops the existing clone first (the project's repository URL changed).
    """
    if not project.repository_url:
        raise git.GitError(f"{project} has no repository.")
    with locked(project) as path:
        if fresh and path.exists():
            shutil.rmtree(path)
        if (path / "HEAD").exists():
            git.fetch(path)
        else:
            if path.exists():
                # A clone that never finished (or a corrupt one) is started again from scratch.
                shutil.rmtree(path)
            git.clone(project.repository_url, path)


def worktree_root(worker: str) -> Path:
    """Where one worker keeps its checkouts; everything here is stale when it starts."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", worker)
    return settings.DATA_DIR / "worktrees" / safe


@contextlib.contextmanager
def checkout(project: Project, sha: str, *, worker: str, name: str | None = None) -> Iterator[Path]:
    """Check `sha` out in a fresh worktree for the length of the block; always removed.

    `name` fixes the folder's name, for passes that need two revisions at one path in turn.
    """
    name = name or f"{project.pk}-{sha[:12]}-{uuid.uuid4().hex[:8]}"
    dest = worktree_root(worker) / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    owner = _owner_file(dest)
    me = psutil.Process()
    owner.write_text(
        json.dumps(
            {
                "host": socket.gethostname(),
                "pid": me.pid,
                "started": me.create_time(),
                "project": project.pk,
            }
        )
    )
    try:
        with locked(project) as path:
            _fetch_if_unknown(project, path, sha)
            git.worktree_add(path, dest, sha)
        try:
            yield dest
        finally:
            with locked(project) as path:
                git.worktree_remove(path, dest)
    finally:
        owner.unlink(missing_ok=True)


def _fetch_if_unknown(project: Project, path: Path, sha: str) -> None:
    """Fetch once when this clone lacks `sha`: another host resolved it after a later sync (a
    commit pushed moments ago). Raises GitError when the fetch does not bring it either."""
    try:
        git.resolve(path, sha)
        return
    except git.GitError:
        pass
    git.fetch(path)
    try:
        git.resolve(path, sha)
    except git.GitError:
        raise git.GitError(
            f"Commit {sha[:12]} is not in the repository of {project}, even after fetching it "
            "again: was it pushed, or was its branch rewritten?"
        ) from None


def _owner_file(dest: Path) -> Path:
    # Beside the checkout, not in it: the measured command must not be able to rewrite it.
    return dest.with_name(f"{dest.name}.owner")


def _owner_alive(owner: dict) -> bool:
    try:
        process = psutil.Process(owner["pid"])
        # A pid the system handed out again is another process.
        return process.status() != psutil.STATUS_ZOMBIE and (
            abs(process.create_time() - owner["started"]) < 1
        )
    except psutil.NoSuchProcess:
        return False


def _kill_processes_in(tree: Path) -> int:
    """Kill what still runs in `tree` (a command that escaped its launcher's process group)."""
    killed = []
    for process in psutil.process_iter(["cwd"]):
        cwd = process.info["cwd"]
        if cwd and process.pid != os.getpid() and Path(cwd).is_relative_to(tree):
            with contextlib.suppress(psutil.Error):
                process.kill()
                killed.append(process)
    psutil.wait_procs(killed, timeout=5)
    return len(killed)


def remove_dead_worktrees() -> list[Path]:
    """Remove the checkouts, and whatever still runs in them, of processes on this host that
    died without cleaning up (kill -9, the OOM killer). A live process's checkouts stay.

    Workers call it when they start and when they claim work, and beat calls it, so a dead
    worker's litter is gone within a minute even if that worker never comes back.
    """
    removed = []
    for owner_file in sorted((settings.DATA_DIR / "worktrees").glob("*/*.owner")):
        try:
            owner = json.loads(owner_file.read_text())
        except (OSError, ValueError):
            continue
        if owner.get("host") != socket.gethostname() or _owner_alive(owner):
            continue
        tree = owner_file.with_name(owner_file.name.removesuffix(".owner"))
        killed = _kill_processes_in(tree)
        project = Project.objects.filter(pk=owner.get("project")).first()
        try:
            if project is not None and has_clone(project):
                with locked(project) as path:
                    git.worktree_remove(path, tree)
        except git.GitError as exc:
            log.warning("could not remove the worktree %s: %s", tree, exc)
        shutil.rmtree(tree, ignore_errors=True)
        owner_file.unlink(missing_ok=True)
        log.info("removed %s of a dead process (pid %s), killing %d", tree, owner["pid"], killed)
        removed.append(tree)
    return removed


def prune_worktrees(*, root: Path, older_than_seconds: float) -> list[Path]:
    """Remove worktrees under `root` older than the threshold, in every project's clone."""
    removed: list[Path] = []
    if root.exists():
        for project in Project.objects.exclude(repository_url=""):
            if has_clone(project):
                with locked(project) as path:
                    removed += git.worktree_prune_stale(path, root, older_than_seconds)
    return removed


def clear_worker_worktrees(worker: str) -> list[Path]:
    """At a worker's start, nothing it checked out before can still be in use: remove it all."""
    root = worktree_root(worker)
    removed = prune_worktrees(root=root, older_than_seconds=0)
    if root.exists():
        # Folders of a clone that has since gone belong to no repository any more.
        for leftover in root.iterdir():
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
                removed.append(leftover)
            else:
                leftover.unlink(missing_ok=True)
    return removed


class NoClone(Exception):
    """This host has no clone of the project yet; a worker has to sync it first."""


def resolve_revisions(project: Project, base: str, head: str) -> dict:
    """Resolve the before/after names against this host's clone (read-only, no lock).

    Returns base_sha, head_sha and, when both are given, the diffstat and commit log between
    them. An unknown name raises ValidationError on that field; no clone raises NoClone.
    """
    if not has_clone(project):
        raise NoClone(str(project))
    path = clone_path(project)
    shas, errors = {}, {}
    for field, name in (("base_revision", base), ("head_revision", head)):
        if not name:
            shas[field] = ""
            continue
        try:
            shas[field] = git.resolve(path, name)
        except git.GitError as exc:
            when = project.synced_at.strftime("%Y-%m-%d %H:%M UTC") if project.synced_at else "?"
            # People know the project, not where some worker keeps its clone.
            reason = str(exc).replace(str(path), f"the repository of {project}").rstrip(".")
            errors[field] = f"{reason} (as of the last sync, {when})."
    if errors:
        raise ValidationError(errors)
    result = {"base_sha": shas["base_revision"], "head_sha": shas["head_revision"]}
    if base and head:
        result["files"] = git.diff_stats(path, result["base_sha"], result["head_sha"])
        result["commits"] = git.commit_log(path, result["base_sha"], result["head_sha"])
    return result


def config_fingerprint(environment) -> str:
    """A digest of the environment's configuration files as this host sees them, or "".

    A missing or unreadable file is part of the fingerprint too: it is a configuration.
    """
    import hashlib

    if not environment.config_files:
        return ""
    digest = hashlib.sha256()
    for name in sorted(environment.config_files):
        try:
            content = hashlib.sha256(Path(name).read_bytes()).hexdigest()
        except OSError as exc:
            content = f"unreadable: {exc.strerror}"
        digest.update(f"{name}\0{content}\n".encode())
    return digest.hexdigest()
