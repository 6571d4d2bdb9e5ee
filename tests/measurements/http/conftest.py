"""The sample service's repository, made once per module, and one probe per revision."""

import pytest

from apps.measurements.http.plan import parse_plan
from apps.measurements.http.serve import serve_and_probe

from .sample import SERVE_ARGV, SERVE_ENV, make_sample_repo, worktree

# Every endpoint in one plan, so one run per revision answers every question about it: 1,000
# measured requests at 250 req/s (4 s), memory sampled every 10 requests.
MIXED_PLAN = parse_plan(
    {
        "entries": [{"path": p} for p in ("/sleep", "/items", "/cached", "/flaky", "/leak")],
        "requests": 1_000,
        "warmup": 100,
        "rate": 250,
        "memory": {"source": "process"},
    }
)


@pytest.fixture(scope="module")
def sample_repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    return root, make_sample_repo(root / "repo")


@pytest.fixture(scope="module")
def checkout(sample_repo):
    root, shas = sample_repo
    made = {}

    def get(name: str):
        if name not in made:
            made[name] = worktree(root / "repo", shas[name], root / f"wt-{name}")
        return made[name]

    return get


@pytest.fixture(scope="module")
def probed(checkout):
    """``probed("leak")``: the generator's result for that revision under MIXED_PLAN (cached)."""
    done = {}

    def get(name: str) -> dict:
        if name not in done:
            outcome = serve_and_probe(
                argv=SERVE_ARGV, cwd=checkout(name), plan=MIXED_PLAN, env=SERVE_ENV
            )
            assert outcome.ok, outcome.failure
            done[name] = outcome.result
        return done[name]

    return get
