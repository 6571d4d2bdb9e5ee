"""The release checklist: ticking, the ship gate, tagging, final notes and rollback."""

import subprocess

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from apps.changes.models import ChangeStatus
from apps.checklists.models import ChecklistItem, ItemKind, ItemState
from apps.checklists.rollback import change_rollback
from apps.checklists.shipping import change_ship, ship_blockers
from apps.checklists.templates import template_item_add, template_item_move, template_item_remove
from apps.checklists.ticks import checklist_item_tick
from apps.core.audit import audit_history
from apps.core.exceptions import Conflict
from apps.measurements.models import Measurement, MeasurementStatus
from apps.measurements.profiles import profile_save


def items(change):
    return list(change.checklist.order_by("position"))


def finished_measurement(change, results=None, **values):
    """A finished before/after measurement of the change's current revisions, as a worker
    leaves it (the verdicts themselves are tested in tests/measurements)."""
    from apps.measurements.models import Profile
    from apps.projects.models import Environment

    environment, _ = Environment.objects.get_or_create(name="staging")
    profile, _ = Profile.objects.get_or_create(
        project=change.project, name="bench", defaults={"environment": environment, "argv": ["x"]}
    )
    improved = {
        "metric": "peak_rss",
        "unit": "bytes",
        "lower_is_better": True,
        "verdict": "improved",
        "change_pct": -40.0,
        "ci_low_pct": -45.0,
        "ci_high_pct": -35.0,
        "reason": "peak RSS fell 40 %",
    }
    return Measurement.objects.create(
        **{
            "change": change,
            "profile": profile,
            "status": MeasurementStatus.DONE,
            "base_sha": change.base_sha,
            "head_sha": change.head_sha,
            "results": [improved] if results is None else results,
            "config_at_start": "abc",
            "config_at_end": "abc",
            **values,
        }
    )


def settle_all(actor, change):
    if not change.measurements.exists():
        finished_measurement(change)
    for item in items(change):
        if item.kind != ItemKind.TAG_RELEASE:
            checklist_item_tick(actor=actor, item=item, state="done", version=item.version)


def test_a_filed_change_gets_the_default_checklist(fix):
    assert [i.title for i in items(fix)] == [
        "Run linting",
        "Run unit tests",
        "Run one integration check",
        "Verify staging config",
        "Tag the release",
    ]


def test_tick_untick_skip_are_audited(engineer, fix):
    lint = items(fix)[0]
    lint = checklist_item_tick(actor=engineer, item=lint, state="done", version=1)
    assert (lint.state, lint.actor_name, lint.version) == ("done", "erin", 2)
    lint = checklist_item_tick(actor=engineer, item=lint, state="open", version=2)
    with pytest.raises(ValidationError, match="Say why"):
        checklist_item_tick(actor=engineer, item=lint, state="skipped", version=3)
    lint = checklist_item_tick(
        actor=engineer, item=lint, state="skipped", version=3, reason="no linter in this repo"
    )
    assert [e.action for e in audit_history(lint)] == ["skip", "reopen", "tick"]
    assert audit_history(lint).first().after["reason"] == "no linter in this repo"


def test_a_stale_version_is_a_conflict_not_an_overwrite(engineer, reviewer, fix):
    lint = items(fix)[0]
    checklist_item_tick(actor=reviewer, item=lint, state="done", version=1)
    with pytest.raises(Conflict, match="changed by rita"):
        checklist_item_tick(actor=engineer, item=lint, state="skipped", version=1, reason="x")
    lint.refresh_from_db()
    assert (lint.state, lint.actor_name) == ("done", "rita")


@pytest.mark.parametrize(
    ("persona", "allowed"),
    [("viewer", False), ("other_engineer", False), ("engineer", True), ("reviewer", True)],
)
def test_who_may_tick(request, fix, persona, allowed):
    item = items(fix)[1]
    actor = request.getfixturevalue(persona)
    if allowed:
        checklist_item_tick(actor=actor, item=item, state="done", version=1)
    else:
        with pytest.raises(PermissionDenied):
            checklist_item_tick(actor=actor, item=item, state="done", version=1)


def test_engineers_cannot_ship_their_own_change(engineer, fix):
    settle_all(engineer, fix)
    with pytest.raises(PermissionDenied):
        change_ship(actor=engineer, change=fix)


def test_the_gate_says_exactly_why(reviewer, fix):
    with pytest.raises(ValidationError) as excinfo:
        change_ship(actor=reviewer, change=fix)
    messages = excinfo.value.messages
    assert messages[0] == "Cannot tag the release yet:"
    assert "“Run linting” is neither done nor skipped." in messages
    assert any(m.startswith("Not measured: measure the change") for m in messages)
    assert len(messages) == 6
    fix.refresh_from_db()
    assert fix.status == ChangeStatus.DRAFT


def test_a_regression_blocks_shipping(reviewer, fix):
    settle_all(reviewer, fix)
    finished_measurement(
        fix,
        [
            {
                "metric": "cpu",
                "unit": "s",
                "lower_is_better": True,
                "verdict": "regressed",
                "change_pct": 12.0,
                "ci_low_pct": 8.0,
                "ci_high_pct": 16.0,
            }
        ],
    )
    with pytest.raises(ValidationError) as excinfo:
        change_ship(actor=reviewer, change=fix)
    latest = fix.measurements.order_by("-id").first()
    assert (
        f"CPU time regressed +12.0 % (95 % CI +8.0…+16.0 %) in measurement {latest.pk} (bench); "
        "the smallest effect that matters is 5 %."
    ) in excinfo.value.messages


def test_only_gating_and_critical_metrics_block(admin, reviewer, fix):
    """FIX-1's case: the user/system split moves by kernel ticks and only informs."""
    settle_all(reviewer, fix)
    regressed = {
        "unit": "s",
        "lower_is_better": True,
        "verdict": "regressed",
        "change_pct": 41.0,
        "ci_low_pct": 30.0,
        "ci_high_pct": 50.0,
    }
    finished_measurement(fix, [{**regressed, "metric": "user_cpu"}])
    assert ship_blockers(fix) == []
    # A gating metric regressed by less than its smallest effect that matters does not block.
    small = {**regressed, "change_pct": 3.0, "ci_low_pct": 1.0, "ci_high_pct": 4.5}
    finished_measurement(fix, [{**small, "metric": "wall"}])
    assert ship_blockers(fix) == []
    # Unless the profile makes it critical: then any significant regression blocks.
    profile = fix.measurements.first().profile
    profile.metric_policy = {"wall time": {"role": "critical"}}
    profile_save(actor=admin, profile=profile)
    assert profile.metric_policy == {"wall": {"role": "critical"}}, "stored by key"
    assert ship_blockers(fix) == [
        f"wall time regressed +3.0 % (95 % CI +1.0…+4.5 %) in measurement "
        f"{fix.measurements.order_by('-id').first().pk} (bench); it is critical: any "
        "regression blocks."
    ]


def test_a_never_measured_change_cannot_be_tagged(reviewer, fix):
    for item in items(fix):
        if item.kind not in (ItemKind.TAG_RELEASE, ItemKind.STAGING_CONFIG):
            checklist_item_tick(actor=reviewer, item=item, state="done", version=item.version)
    staging = next(i for i in items(fix) if i.kind == ItemKind.STAGING_CONFIG)
    with pytest.raises(ValidationError, match="measure the change first"):
        checklist_item_tick(actor=reviewer, item=staging, state="done", version=staging.version)
    checklist_item_tick(
        actor=reviewer, item=staging, state="skipped", version=staging.version, reason="no staging"
    )
    with pytest.raises(ValidationError) as excinfo:
        change_ship(actor=reviewer, change=fix)
    assert excinfo.value.messages == [
        "Cannot tag the release yet:",
        f"Not measured: measure the change at its current revisions "
        f"({fix.base_sha[:10]} → {fix.head_sha[:10]}).",
    ]


def test_a_running_measurement_is_waited_for(reviewer, fix):
    running = finished_measurement(fix, status=MeasurementStatus.RUNNING, results=[])
    assert ship_blockers(fix)[-1] == (
        f"Measurement {running.pk} of the current revisions is still running."
    )


def test_a_measurement_of_older_revisions_no_longer_counts(reviewer, engineer, fix, upstream):
    from apps.changes.services import change_update

    settle_all(reviewer, fix)
    old = fix.measurements.get()
    assert ship_blockers(fix) == []
    moved = change_update(actor=engineer, change=fix, head_revision="main")
    assert moved.head_sha != old.head_sha
    assert ship_blockers(moved) == [
        f"Measurement {old.pk} measured older revisions "
        f"({old.base_sha[:10]} → {old.head_sha[:10]}); measure the current ones "
        f"({moved.base_sha[:10]} → {moved.head_sha[:10]}) again."
    ]
    with pytest.raises(ValidationError, match="measured older revisions"):
        change_ship(actor=reviewer, change=moved)
    finished_measurement(moved)
    assert change_ship(actor=reviewer, change=moved).status == ChangeStatus.SHIPPED


def test_no_override_is_offered_when_it_could_not_work(as_user, admin, fix):
    from apps.changes.models import Change

    page = as_user(admin).get(fix.get_absolute_url()).content.decode()
    assert "Override and tag the release" in page
    Change.objects.filter(pk=fix.pk).update(head_sha="")
    fix.refresh_from_db()
    page = as_user(admin).get(fix.get_absolute_url()).content.decode()
    assert "Override and tag the release" not in page
    with pytest.raises(ValidationError, match="No override can tag this release"):
        change_ship(actor=admin, change=fix, override_reason="urgent")


def test_ship_tags_the_after_revision_and_writes_final_notes(
    reviewer, fix, repo_project, upstream, django_capture_on_commit_callbacks
):
    from apps.projects import repository
    from apps.projects.models import JobStatus, RepositoryJob
    from apps.projects.tasks import push_tag

    settle_all(reviewer, fix)
    with django_capture_on_commit_callbacks() as callbacks:
        shipped = change_ship(actor=reviewer, change=fix)
    assert len(callbacks) == 1, "the push is published once the shipping commits"
    push_tag(shipped.project_id, shipped.tag_name)
    job = RepositoryJob.objects.get(ref=shipped.tag_name)
    # The test's upstream is a local folder the push may write to.
    assert (job.status, job.error) == (JobStatus.DONE, "")
    assert shipped.status == ChangeStatus.SHIPPED
    assert shipped.tag_name == f"fixledger/{fix.number}"
    clone = repository.clone_path(repo_project)
    tagged = subprocess.run(
        ["git", "--git-dir", str(clone), "rev-parse", f"{shipped.tag_name}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert tagged == fix.head_sha
    kind = subprocess.run(
        ["git", "--git-dir", str(clone), "cat-file", "-t", shipped.tag_name],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert kind == "tag", "an annotated tag"
    # The worker's push put the tag in the origin too.
    pushed = subprocess.run(
        ["git", "-C", str(upstream[0]), "tag", "--list", shipped.tag_name],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert pushed == shipped.tag_name
    notes = shipped.final_notes
    assert notes.startswith(f"# {fix.number} Bound the response cache")
    assert "It never evicts." in notes
    assert "`app/cache.py`" in notes
    assert "python -m bench.cache" in notes
    assert "- [x] Run linting — rita" in notes
    # Metrics by their labels, changes with their signs.
    assert (
        "| peak RSS | — | — | \u221240.0 % (95 % CI \u221245.0 … \u221235.0 %) | improved |"
        in notes
    )
    assert "Revert; the cache is unbounded again." in notes
    assert items(fix)[-1].state == ItemState.DONE
    with pytest.raises(ValidationError):
        checklist_item_tick(actor=reviewer, item=items(fix)[0], state="open", version=2)


def test_admin_override_is_audited(admin, reviewer, fix):
    with pytest.raises(PermissionDenied):
        change_ship(actor=reviewer, change=fix, override_reason="hotfix")
    shipped = change_ship(actor=admin, change=fix, override_reason="hotfix for the outage")
    assert shipped.status == ChangeStatus.SHIPPED
    override = next(e for e in audit_history(fix) if e.action == "override")
    assert override.after["reason"] == "hotfix for the outage"
    assert len(override.after["blockers"]) == 5


def test_rollback_files_the_reverse_change(admin, engineer, fix):
    with pytest.raises(ValidationError, match="Only a shipped change"):
        change_rollback(actor=engineer, change=fix)
    change_ship(actor=admin, change=fix, override_reason="test")
    reverse = change_rollback(actor=engineer, change=fix)
    assert reverse.rollback_of == fix
    assert (reverse.base_revision, reverse.head_revision) == ("fix/cache", "main")
    assert (reverse.base_sha, reverse.head_sha) == (fix.head_sha, fix.base_sha)
    assert reverse.reason == fix.rollback_note
    assert len(items(reverse)) == 5
    with pytest.raises(ValidationError, match="already has a rollback"):
        change_rollback(actor=engineer, change=fix)
    change_ship(actor=admin, change=reverse, override_reason="test")
    fix.refresh_from_db()
    assert fix.status == ChangeStatus.ROLLED_BACK


def test_admins_edit_templates(admin, reviewer, repo_project, engineer):
    with pytest.raises(PermissionDenied):
        template_item_add(actor=reviewer, project=repo_project, title="Load test")
    added = template_item_add(
        actor=admin,
        project=repo_project,
        title="Load test",
        kind=ItemKind.VERIFY,
        argv=["make", "load"],
        required=False,
    )
    titles = [t.title for t in repo_project.checklist.order_by("position")]
    assert titles[-2:] == ["Load test", "Tag the release"], "tagging stays last"
    template_item_move(actor=admin, item=added, offset=-1)
    assert [t.title for t in repo_project.checklist.order_by("position")][-3] == "Load test"
    lint = repo_project.checklist.get(title="Run linting")
    template_item_remove(actor=admin, item=lint)
    with pytest.raises(ValidationError):
        template_item_remove(actor=admin, item=repo_project.checklist.get(kind="tag_release"))
    from apps.changes.services import change_create

    later = change_create(
        actor=engineer, project=repo_project, title="t", reason="r", expected_result="e"
    )
    assert "Run linting" not in [i.title for i in items(later)]
    assert items(later)[-3].argv == ["make", "load"]


def test_page_tick_in_place_and_conflict(as_user, engineer, reviewer, fix):
    item = items(fix)[0]
    client = as_user(engineer)
    page = client.get(fix.get_absolute_url()).content.decode()
    assert 'hx-post="/checklists/items/' in page
    response = client.post(
        f"/checklists/items/{item.pk}/", {"state": "done", "version": 1}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert "done by erin" in response.content.decode()
    stale = as_user(reviewer).post(
        f"/checklists/items/{item.pk}/", {"state": "open", "version": 1}, HTTP_HX_REQUEST="true"
    )
    assert stale.status_code == 409
    assert "changed by erin meanwhile" in stale.content.decode()


def test_ship_page_and_notes_download(as_user, admin, reviewer, fix):
    page = as_user(reviewer).get(fix.get_absolute_url()).content.decode()
    assert "Cannot tag the release yet" in page
    as_user(admin).post(f"/checklists/changes/{fix.pk}/ship/", {"override": "demo"})
    fix.refresh_from_db()
    notes = as_user(reviewer).get(f"/checklists/changes/{fix.pk}/notes.md")
    assert notes["Content-Type"].startswith("text/markdown")
    assert notes.content.decode() == fix.final_notes


def test_api(api_as, engineer, reviewer, viewer, fix):
    listed = api_as(viewer).get(f"/api/changes/{fix.number}/checklist/").json()
    assert next(i["title"] for i in listed) == "Run linting"
    url = f"/api/changes/{fix.pk}/checklist/{listed[0]['id']}/"
    assert (
        api_as(viewer).patch(url, {"state": "done", "version": 1}, format="json").status_code == 403
    )
    ok = api_as(engineer).patch(url, {"state": "done", "version": 1}, format="json")
    assert ok.status_code == 200
    assert ok.json()["version"] == 2
    stale = api_as(reviewer).patch(url, {"state": "open", "version": 1}, format="json")
    assert stale.status_code == 409
    blocked = api_as(reviewer).post(f"/api/changes/{fix.pk}/ship/", {}, format="json")
    assert blocked.status_code == 400
    assert "Cannot tag the release yet:" in str(blocked.json())
    assert ChecklistItem.objects.get(pk=listed[0]["id"]).state == "done"


def test_a_shipped_change_is_history(as_user, admin, engineer, fix):
    from apps.changes.services import change_update

    change_ship(actor=admin, change=fix, override_reason="test")
    page = as_user(engineer).get(fix.get_absolute_url()).content.decode()
    assert f"/changes/FIX-{fix.pk}/edit/" not in page
    with pytest.raises(ValidationError, match="has shipped"):
        change_update(actor=engineer, change=fix, title="Rewritten history")
