"""Items that workers verify or tick, and ticks that race each other over real HTTP."""

import sys
import threading
import time
from datetime import timedelta

import psutil
import pytest
import requests
from django.utils import timezone

from apps.checklists.models import ChecklistItem, ItemKind, ItemState, VerificationStatus
from apps.checklists.staging import staging_config_record
from apps.checklists.tasks import verify_item
from apps.checklists.verification import checklist_item_verify_request, verifications_reconcile
from apps.core import work
from apps.core.audit import audit_history

from ..factories import PASSWORD
from ..workers import FAST_RECOVERY, wait_for


def _lint_item(change, argv):
    item = change.checklist.get(title="Run linting")
    ChecklistItem.objects.filter(pk=item.pk).update(argv=argv)
    item.refresh_from_db()
    return item


def test_a_worker_verifies_an_item_at_the_after_revision(engineer, fix, settings):
    # The after revision has app/helpers.py (renamed from app/util.py): the check proves where
    # the command ran.
    item = _lint_item(
        fix,
        [sys.executable, "-c", "import os; assert os.path.exists('app/helpers.py'); print('ok')"],
    )
    item = checklist_item_verify_request(actor=engineer, item=item, version=item.version)
    assert item.verification == VerificationStatus.QUEUED
    verify_item(item.pk)
    item.refresh_from_db()
    assert item.state == ItemState.DONE
    assert item.actor_name == "worker"
    assert item.evidence["exit_code"] == 0
    assert "ok" in item.evidence["output_tail"]
    assert not any((settings.DATA_DIR / "worktrees").rglob("helpers.py"))
    # A second delivery finds nothing queued and does nothing.
    verify_item(item.pk)
    assert audit_history(item).filter(action="tick").count() == 1


def test_a_failed_verification_leaves_the_item_open_with_the_failure(engineer, fix):
    item = _lint_item(fix, [sys.executable, "-c", "print('E501 line too long'); exit(1)"])
    checklist_item_verify_request(actor=engineer, item=item, version=item.version)
    verify_item(item.pk)
    item.refresh_from_db()
    assert item.state == ItemState.OPEN
    assert item.verification == VerificationStatus.FAILED
    assert item.evidence["failure"] == "exited with code 1"
    assert "E501" in item.evidence["output_tail"]
    assert audit_history(item).first().action == "verification failed"


def test_a_verification_runs_in_the_sandbox(engineer, fix, settings):
    secret = settings.DATA_DIR / "secret_key"
    secret.write_text("fixledger-test-key")
    check = (
        f"import os; assert not os.path.exists({str(secret)!r}); assert os.getuid() == 65534; "
        "assert sum(p.isdigit() for p in os.listdir('/proc')) == 2; print('sandboxed')"
    )
    item = _lint_item(fix, [sys.executable, "-c", check])
    checklist_item_verify_request(actor=engineer, item=item, version=item.version)
    verify_item(item.pk)
    item.refresh_from_db()
    assert item.state == ItemState.DONE, item.evidence
    assert item.evidence["output_tail"].strip() == "sandboxed"


def test_a_worker_that_cannot_sandbox_refuses_to_verify_unless_allowed(engineer, fix, settings):
    settings.SANDBOX_READONLY_FOLDERS = [str(settings.DATA_DIR)]  # refused: it holds the data
    settings.ALLOW_UNSANDBOXED_RUNS = False
    item = _lint_item(fix, [sys.executable, "-c", "print('ok')"])
    checklist_item_verify_request(actor=engineer, item=item, version=item.version)
    verify_item(item.pk)
    item.refresh_from_db()
    assert item.verification == VerificationStatus.FAILED
    assert item.evidence["failure"].startswith("This worker cannot sandbox:")

    settings.ALLOW_UNSANDBOXED_RUNS = True
    item = checklist_item_verify_request(actor=engineer, item=item, version=item.version)
    verify_item(item.pk)
    item.refresh_from_db()
    assert item.state == ItemState.DONE
    assert item.evidence["output_tail"].endswith(
        "[ran without a sandbox: this worker cannot sandbox and FIXLEDGER_ALLOW_UNSANDBOXED is on]"
    )


def _stale(settings):
    return timezone.now() - timedelta(seconds=settings.WORK_HEARTBEAT_STALE_SECONDS + 1)


def test_a_verification_is_taken_from_a_dead_worker_but_not_from_a_live_one(
    engineer, fix, settings
):
    item = _lint_item(fix, [sys.executable, "-c", "print('ok')"])
    checklist_item_verify_request(actor=engineer, item=item, version=item.version)
    running = {"verification": VerificationStatus.RUNNING, "worker": "w@a", "attempts": 1}
    ChecklistItem.objects.filter(pk=item.pk).update(**running, heartbeat_at=timezone.now())
    verify_item(item.pk)
    item.refresh_from_db()
    assert (item.verification, item.state) == (VerificationStatus.RUNNING, ItemState.OPEN)

    ChecklistItem.objects.filter(pk=item.pk).update(heartbeat_at=_stale(settings))
    verify_item(item.pk)
    item.refresh_from_db()
    assert (item.verification, item.state, item.attempts) == ("", ItemState.DONE, 2)


def test_a_verification_whose_workers_keep_dying_fails_with_the_reason(
    engineer, fix, settings, as_user
):
    item = _lint_item(fix, [sys.executable, "-c", "print('ok')"])
    checklist_item_verify_request(actor=engineer, item=item, version=item.version)
    ChecklistItem.objects.filter(pk=item.pk).update(
        verification=VerificationStatus.RUNNING,
        attempts=work.MAX_ATTEMPTS,
        heartbeat_at=_stale(settings),
        published_at=_stale(settings),
    )
    assert verifications_reconcile() == 0
    item.refresh_from_db()
    assert item.verification == VerificationStatus.FAILED
    assert item.evidence["failure"] == work.GAVE_UP
    page = as_user(engineer).get(f"/changes/{fix.number}/").content.decode()
    assert f"Verification failed: {work.GAVE_UP}" in page
    # Failed, the item can be verified again.
    item = checklist_item_verify_request(actor=engineer, item=item, version=item.version)
    assert (item.verification, item.attempts) == (VerificationStatus.QUEUED, 0)


def test_reconcile_publishes_a_verification_whose_message_was_lost(engineer, fix, settings):
    item = _lint_item(fix, [sys.executable, "-c", "print('ok')"])
    checklist_item_verify_request(actor=engineer, item=item, version=item.version)
    assert verifications_reconcile() == 0, "just published"
    ChecklistItem.objects.filter(pk=item.pk).update(published_at=_stale(settings))
    assert verifications_reconcile() == 1
    assert verifications_reconcile() == 0, "once per period"


# Slow on the first worker (its checkouts are under its name; the sandbox shows the command its
# worktree and nothing else of the host): it starts a process that leaves its session and waits
# far past the kill. Quick on the second.
VERIFY = """
import os, subprocess, sys, time
if "first" in os.getcwd():
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "escapee"],
                     start_new_session=True)
    time.sleep(30)
print("ok")
"""


def _strays() -> list[psutil.Process]:
    return [
        p
        for p in psutil.process_iter(["cmdline"])
        if "escapee" in (p.info["cmdline"] or []) or VERIFY in (p.info["cmdline"] or [])
    ]


@pytest.fixture
def no_stray_outlives_the_test():
    # A failing test stops before the cleanup it checks: its strays must not outlive it.
    yield
    for process in _strays():
        process.kill()


def test_a_verification_whose_worker_is_killed_finishes_on_another_within_90_s(
    worker, beat, engineer, fix, settings, no_stray_outlives_the_test
):
    settings.WORK_HEARTBEAT_STALE_SECONDS = int(FAST_RECOVERY["WORK_HEARTBEAT_STALE_SECONDS"])
    item = _lint_item(fix, [sys.executable, "-c", VERIFY])
    beat(env=FAST_RECOVERY)
    first = worker(env=FAST_RECOVERY, name="first@%h")
    checklist_item_verify_request(actor=engineer, item=item, version=item.version)
    wait_for(lambda: len(_strays()) == 2, what="the command and its escapee", timeout=30)
    first.kill9()
    killed_at = time.monotonic()
    item.refresh_from_db()
    assert item.verification == VerificationStatus.RUNNING
    worktrees = settings.DATA_DIR / "worktrees"
    assert list(worktrees.glob("*/*")), "kill -9 runs no cleanup: the checkout is left"

    worker(env=FAST_RECOVERY, name="second@%h")
    wait_for(
        lambda: ChecklistItem.objects.get(pk=item.pk).state == ItemState.DONE,
        what="the verification to finish on the new worker",
        timeout=90 - (time.monotonic() - killed_at),
    )
    item.refresh_from_db()
    assert item.evidence["worker"].startswith("second@")
    assert item.attempts == 2
    assert list(worktrees.glob("*/*")) == []
    assert _strays() == [], "a process of the dead worker's verification survived"


def test_only_admin_commands_are_run(engineer, fix):
    from django.core.exceptions import ValidationError

    item = fix.checklist.get(title="Run unit tests")  # the default template has no command
    with pytest.raises(ValidationError, match="has not given this item a command"):
        checklist_item_verify_request(actor=engineer, item=item, version=item.version)


def test_staging_config_item_follows_the_fingerprints(fix):
    staging = fix.checklist.get(kind=ItemKind.STAGING_CONFIG)
    staging_config_record(change=fix, start="aaa", end="bbb")
    staging.refresh_from_db()
    assert staging.state == ItemState.OPEN
    assert "changed during the measurement" in staging.evidence["warning"]
    staging_config_record(change=fix, start="aaa", end="aaa")
    staging.refresh_from_db()
    assert staging.state == ItemState.DONE
    assert staging.evidence == {"fingerprint": "aaa"}


def test_fingerprint_of_config_files(tmp_path):
    from apps.projects.models import Environment
    from apps.projects.repository import config_fingerprint

    conf = tmp_path / "app.conf"
    conf.write_text("workers = 4\n")
    env = Environment(name="staging", config_files=[str(conf)])
    first = config_fingerprint(env)
    assert first == config_fingerprint(env)
    conf.write_text("workers = 8\n")
    assert config_fingerprint(env) != first
    assert config_fingerprint(Environment(name="x")) == ""


def _session(live_server, username):
    session = requests.Session()
    session.get(f"{live_server.url}/login/")
    session.post(
        f"{live_server.url}/login/",
        {
            "username": username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": f"{live_server.url}/login/"},
    )
    return session


@pytest.mark.django_db(transaction=True)
def test_two_reviewers_tick_at_once_and_a_stale_page_conflicts(live_server, reviewer, admin, fix):
    first, second = fix.checklist.order_by("position")[:2]
    sessions = {"rita": _session(live_server, "rita"), "ada": _session(live_server, "ada")}
    barrier = threading.Barrier(2)
    answers = {}

    def tick(username, item):
        session = sessions[username]
        barrier.wait()
        answers[username] = session.post(
            f"{live_server.url}/checklists/items/{item.pk}/",
            {
                "state": "done",
                "version": item.version,
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
            },
            headers={"HX-Request": "true", "Referer": live_server.url},
        )

    threads = [
        threading.Thread(target=tick, args=("rita", first)),
        threading.Thread(target=tick, args=("ada", second)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {r.status_code for r in answers.values()} == {200}
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, first.actor_name) == ("done", "rita")
    assert (second.state, second.actor_name) == ("done", "ada")

    # Both pages were loaded at version 1; the second writer to the same item is refused.
    barrier = threading.Barrier(2)
    third = fix.checklist.order_by("position")[2]
    threads = [
        threading.Thread(target=tick, args=("rita", third)),
        threading.Thread(target=tick, args=("ada", third)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status_code for r in answers.values()) == [200, 409]
    third.refresh_from_db()
    assert third.version == 2
    assert audit_history(third).filter(action="tick").count() == 1
