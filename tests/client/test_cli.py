"""`fixledger file` and `fixledger measure --wait` against a live server and a real worker."""

import subprocess
import sys
from pathlib import Path

import pytest

from apps.accounts.services import api_token_create
from apps.changes.models import Change
from apps.core import work
from apps.measurements.models import Measurement
from apps.measurements.reports import measurements_reconcile

from ..measurements.conftest import demo_project, environment, make_profile  # noqa: F401
from ..measurements.test_broker_outage import broker_down
from ..repos import commit_all, git
from .conftest import run_fixledger, start_fixledger


@pytest.fixture
def ci(live_server, engineer):
    """run(*args) -> the command's exit code and output, as the engineer's CI job."""
    _token, key = api_token_create(actor=engineer, user=engineer, name="ci")

    def run(*args: str, token: str = key):
        return run_fixledger(*args, url=live_server.url, token=token)

    run.url, run.token = live_server.url, key
    return run


def memory_profile(project, env):
    """The demo's profile with only peak RSS gating: the times of 5 runs on a busy two-core
    machine can scatter past what a verdict allows, and an inconclusive gate exits 2."""
    quiet = {"role": "informational"}
    return make_profile(project, env, metric_policy={"wall": quiet, "cpu": quiet})


@pytest.fixture
def measuring(worker, environment):  # noqa: F811
    """A real worker on the default and the environment's queues, sharing this test's clones."""
    return worker(queues=("default", environment.queue))


def test_file_prints_the_number_with_the_installed_command(live_server, engineer, demo_project):  # noqa: F811
    _token, key = api_token_create(actor=engineer, user=engineer, name="ci")
    command = Path(sys.executable).with_name("fixledger")
    assert command.exists(), "the set-up installs the client into the virtualenv"
    done = subprocess.run(
        [
            *(str(command), "file", "--project", "demo", "--title", "Bound the cache"),
            *("--before", "main", "--after", "fix/bounded-cache", "--expected", "peak RSS -20 %"),
        ],
        capture_output=True,
        text=True,
        env={"FIXLEDGER_URL": live_server.url, "FIXLEDGER_TOKEN": key, "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    change = Change.objects.get()
    assert done.stdout == f"{change.number}\n"
    assert change.owner == engineer
    assert change.expected_result == "peak RSS -20 %"
    assert change.head_sha


def test_an_improvement_passes_and_a_regression_fails_the_job(
    measuring,
    ci,
    demo_project,  # noqa: F811
    environment,  # noqa: F811
    tmp_path,
):
    memory_profile(demo_project, environment)
    filed = ci(
        "file", "--project", "demo", "--title", "Bound the response cache", "--before", "main",
        "--after", "fix/bounded-cache", "--expected", "peak RSS -20 %",
    )  # fmt: skip
    assert filed.code == 0, filed.stderr
    number = filed.stdout.strip()
    summary = tmp_path / "summary.md"
    improved = ci(
        "measure", number, "--profile", "handle 20k requests", "--wait", "--interval", "0.3",
        "--fail-on", "regressed,expectation", "--summary", str(summary), "--json",
    )  # fmt: skip
    assert improved.code == 0, improved.stderr
    result = improved.json()
    assert result["exit_code"] == 0
    assert result["measurement"]["status"] == "done"
    peak = next(r for r in result["measurement"]["results"] if r["metric"] == "peak_rss")
    assert peak["verdict"] == "improved"
    assert result["measurement"]["expectation"] == "met"
    assert "% " in improved.stderr, "progress is shown on stderr"
    text = summary.read_text()
    assert f"### ✅ {number} Bound the response cache: passed" in text
    assert "| Metric | Before | After | Change (95 % CI) | Verdict | Role |" in text
    assert "| peak RSS |" in text and "| improved | gating |" in text
    assert "MiB" in text and "95 % CI \u2212" in text
    assert "Expected result: *peak RSS -20 %*: **met**." in text
    assert f"[{number} on fixledger]({ci.url}/changes/{number}/)" in text

    # The fix reverted: after allocates what before freed.
    reverted = ci(
        "file", "--project", "demo", "--title", "Cache every response again", "--before",
        "fix/bounded-cache", "--after", "main", "--expected", "wall time -1 %",
    )  # fmt: skip
    assert reverted.code == 0, reverted.stderr
    regressed = ci(
        "measure", reverted.stdout.strip(), "--profile", "handle 20k requests", "--wait",
        "--interval", "0.3", "--fail-on", "regressed", "--summary", str(summary),
    )  # fmt: skip
    assert regressed.code == 1, regressed.stderr
    assert "peak RSS regressed +" in regressed.stdout
    assert "failed the check" in regressed.stdout
    assert "**regressed**" in summary.read_text(), "the summary is appended, blockers in bold"


def test_inconclusive_or_failed_measurements_exit_2(
    measuring,
    ci,
    demo_project,  # noqa: F811
    environment,  # noqa: F811
):
    # Every second run of a side fails: too many failures for a verdict, but results remain.
    flaky = (
        "import pathlib, sys; p = pathlib.Path('count'); n = int(p.read_text() or 0) "
        "if p.exists() else 0; p.write_text(str(n + 1)); sys.exit(n % 2)"
    )
    make_profile(demo_project, environment, name="flaky", argv=[sys.executable, "-c", flaky])
    make_profile(
        demo_project,
        environment,
        name="broken",
        argv=[sys.executable, "-c", "raise SystemExit(3)"],
        stop_on_failure=True,
    )
    number = ci(
        "file", "--project", "demo", "--title", "t", "--before", "main", "--after",
        "fix/bounded-cache", "--expected", "peak RSS -20 %",
    ).stdout.strip()  # fmt: skip
    inconclusive = ci("measure", number, "--profile", "flaky", "--wait", "--interval", "0.3")
    assert inconclusive.code == 2, inconclusive.stderr + inconclusive.stdout
    assert "inconclusive" in inconclusive.stdout
    failed = ci("measure", number, "--profile", "broken", "--wait", "--interval", "0.3", "--json")
    assert failed.code == 2, failed.stderr
    assert failed.json()["measurement"]["status"] == "failed"
    assert "the profile stops at the first failed run" in failed.json()["reasons"][0]


def test_a_bad_token_an_unknown_profile_or_change_exit_3(ci, demo_project, environment):  # noqa: F811
    memory_profile(demo_project, environment)
    refused = ci("measure", "FIX-1", "--profile", "handle 20k requests", token="not-a-token")
    assert refused.code == 3
    assert "401" in refused.stderr
    number = ci(
        "file", "--project", "demo", "--title", "t", "--before", "main", "--after",
        "fix/bounded-cache", "--expected", "peak RSS -20 %",
    ).stdout.strip()  # fmt: skip
    unknown = ci("measure", number, "--profile", "nope")
    assert unknown.code == 3
    assert "no profile 'nope' in project demo (it has: 'handle 20k requests')" in unknown.stderr
    assert ci("measure", "FIX-999", "--profile", "nope").code == 3
    assert not Measurement.objects.exists()
    bad = ci(
        "file", "--project", "demo", "--title", "t", "--before", "main", "--after", "no-such",
        "--expected", "peak RSS -20 %",
    )  # fmt: skip
    assert bad.code == 3
    assert "head_revision" in bad.stderr


def test_a_measurement_queued_during_a_broker_outage_is_waited_for(
    measuring,
    ci,
    demo_project,  # noqa: F811
    environment,  # noqa: F811
):
    memory_profile(demo_project, environment)
    number = ci(
        "file", "--project", "demo", "--title", "t", "--before", "main", "--after",
        "fix/bounded-cache", "--expected", "peak RSS -20 %",
    ).stdout.strip()  # fmt: skip
    with broker_down():
        waiting = start_fixledger(
            "measure", number, "--profile", "handle 20k requests", "--wait", "--interval", "0.3",
            url=ci.url, token=ci.token,
        )  # fmt: skip
        # Its first words: the measurement was accepted, with the server's 202 detail.
        accepted = waiting.stderr.readline()
    assert f"({work.BROKER_DOWN})" in accepted
    assert Measurement.objects.get().published_at is None
    # The broker is back: beat's next pass publishes it.
    assert measurements_reconcile() == 1
    stdout, stderr = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, stderr
    assert f"{number}: passed" in stdout


def test_a_commit_pushed_after_the_last_sync_is_fetched_then_measured(
    worker,
    ci,
    demo_project,  # noqa: F811
    environment,  # noqa: F811
    tmp_path,
):
    memory_profile(demo_project, environment)
    upstream = tmp_path / "service"
    git(upstream, "checkout", "-q", "fix/bounded-cache")
    (upstream / "NEWS").write_text("Bounded the cache.\n")
    pushed = commit_all(upstream, "Say so", 9)
    filed = ci(
        "file", "--project", "demo", "--title", "t", "--before", "main", "--after", pushed,
        "--expected", "peak RSS -20 %", "--json",
    )  # fmt: skip
    assert filed.code == 0, filed.stderr
    assert filed.json()["revisions_pending"] is True, "not in the clone yet: it waits for a sync"
    waiting = start_fixledger(
        "measure", filed.json()["number"], "--profile", "handle 20k requests", "--wait",
        "--interval", "0.3", url=ci.url, token=ci.token,
    )  # fmt: skip
    assert waiting.stderr.readline().endswith(": Waiting for a worker to sync the repository.\n")
    worker(queues=("default", environment.queue))
    stdout, stderr = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, stderr
    assert f"{filed.json()['number']}: passed" in stdout
    assert Measurement.objects.get().head_sha == pushed


def test_a_job_run_again_waits_for_the_measurement_it_started(ci, demo_project, environment):  # noqa: F811
    profile = memory_profile(demo_project, environment)
    number = ci(
        "file", "--project", "demo", "--title", "t", "--before", "main", "--after",
        "fix/bounded-cache", "--expected", "peak RSS -20 %",
    ).stdout.strip()  # fmt: skip
    first = ci("measure", number, "--profile", str(profile.pk))
    assert first.code == 0, first.stderr
    again = ci("measure", number, "--profile", str(profile.pk))
    assert again.code == 0, again.stderr
    assert again.stdout == first.stdout, "the same measurement"
    assert "already measuring" in again.stderr
    assert Measurement.objects.count() == 1
