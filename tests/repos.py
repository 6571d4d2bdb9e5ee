"""Real git repositories for tests, built with the git command line."""

import os
import subprocess
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Erin Engineer",
    "GIT_AUTHOR_EMAIL": "erin@example.com",
    "GIT_COMMITTER_NAME": "Erin Engineer",
    "GIT_COMMITTER_EMAIL": "erin@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    result = subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    )
    return result.stdout.strip()


def commit_all(repo: Path, message: str, day: int) -> str:
    date = f"2026-01-{day:02d}T12:00:00+00:00"
    env = {**os.environ, **GIT_ENV, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    subprocess.run(["git", "add", "-A"], cwd=repo, env=env, check=True)
    subprocess.run(["git", "commit", "-q", "-m", message], cwd=repo, env=env, check=True)
    return git(repo, "rev-parse", "HEAD")


def make_service_repo(path: Path) -> dict[str, str]:
    """A small service: `main` has the leak, branch `fix/cache` bounds the cache.

    Between them: app/cache.py modified (+3 -1), app/util.py renamed to app/helpers.py,
    assets/logo.png added (binary), over two commits. Returns the SHAs by name.
    """
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "app").mkdir()
    (path / "app" / "cache.py").write_text("CACHE = {}\n\n\ndef put(k, v):\n    CACHE[k] = v\n")
    (path / "app" / "util.py").write_text("def helper():\n    return 1\n")
    (path / "README.md").write_text("service\n")
    shas = {"main": commit_all(path, "Initial service", 1)}
    git(path, "checkout", "-q", "-b", "fix/cache")
    (path / "app" / "cache.py").write_text(
        "from collections import OrderedDict\n\nCACHE = OrderedDict()\nLIMIT = 512\n\n\n"
        "def put(k, v):\n    CACHE[k] = v\n"
    )
    git(path, "mv", "app/util.py", "app/helpers.py")
    shas["first"] = commit_all(path, "Bound the response cache", 2)
    (path / "assets").mkdir()
    (path / "assets" / "logo.png").write_bytes(bytes(range(256)) * 4)
    shas["fix/cache"] = commit_all(path, "Add a logo", 3)
    git(path, "checkout", "-q", "main")
    git(path, "tag", "-a", "v1.0", "-m", "release 1.0", shas["main"])
    return shas
