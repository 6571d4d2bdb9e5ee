"""The demo a fresh install shows: a service that leaks, its fix, a profile and a filed change."""

import subprocess
import sys
import textwrap
from pathlib import Path

from django.conf import settings
from django.db import transaction

from apps.accounts.models import User
from apps.changes.services import change_create
from apps.projects.models import Environment, Project
from apps.projects.services import environment_save, project_create

from .models import Profile
from .profiles import profile_save

LEAKY = textwrap.dedent(
    '''
    """A toy request handler whose response cache is never bounded."""
    CACHE = {}


    def handle(i):
        body = ("response %d " % i).encode() * 200
        CACHE[i] = body
        return len(body)


    if __name__ == "__main__":
        total = sum(handle(i) for i in range(20000))
        print("METRIC bytes_served=%d bytes" % total)
    '''
).lstrip()

FIXED = LEAKY.replace(
    "    CACHE[i] = body\n",
    "    CACHE[i] = body\n    if len(CACHE) > 512:\n        CACHE.pop(next(iter(CACHE)))\n",
).replace("is never bounded", "keeps the 512 newest entries")
if FIXED.count("CACHE.pop") != 1:  # the demo must show a real fix
    raise RuntimeError("the demo fix did not apply")


def _git(repo: Path, *args: str) -> None:
    env = {
        "GIT_AUTHOR_NAME": "fixledger demo",
        "GIT_AUTHOR_EMAIL": "demo@fixledger.invalid",
        "GIT_COMMITTER_NAME": "fixledger demo",
        "GIT_COMMITTER_EMAIL": "demo@fixledger.invalid",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(repo),
        "PATH": "/usr/bin:/bin",
    }
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)  # noqa: S603, S607


def make_demo_repository(path: Path) -> None:
    """main: the leak; fix/bounded-cache: the fix."""
    path.mkdir(parents=True, exist_ok=True)
    _git(path, "init", "-q", "-b", "main")
    (path / "service.py").write_text(LEAKY)
    _git(path, "add", "service.py")
    _git(path, "commit", "-q", "-m", "Cache every response")
    _git(path, "checkout", "-q", "-b", "fix/bounded-cache")
    (path / "service.py").write_text(FIXED)
    _git(path, "commit", "-q", "-am", "Keep only the 512 newest responses")
    _git(path, "checkout", "-q", "main")


@transaction.atomic
def seed_demo(*, owner: User) -> None:
    """Create the demo once; a project named `demo` already there means it was done."""
    if Project.objects.filter(slug="demo").exists():
        return
    repo = settings.DATA_DIR / "demo" / "service"
    if not (repo / ".git").exists():
        make_demo_repository(repo)
    environment = Environment.objects.filter(name="local").first() or environment_save(
        actor=None,
        environment=Environment(name="local", description="This host (the embedded worker)."),
    )
    project = project_create(actor=None, name="Demo service", slug="demo", repository_url=str(repo))
    profile_save(
        actor=None,
        profile=Profile(
            project=project,
            name="handle 20k requests",
            environment=environment,
            argv=[sys.executable, "service.py"],
            runs_per_side=10,
            warmups=1,
            timeout_seconds=60,
            memory_limit_mb=1024,
            attribution=True,
        ),
    )
    change_create(
        actor=owner,
        project=project,
        title="Bound the response cache",
        reason="The handler caches every response body and never evicts: RSS grows with traffic.",
        expected_result="peak RSS -30 %",
        command="python service.py",
        rollback_note="Revert the commit; the cache is unbounded again.",
        base_revision="main",
        head_revision="fix/bounded-cache",
        tags=["memory", "cache", "demo"],
    )
