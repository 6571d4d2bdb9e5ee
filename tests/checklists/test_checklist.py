"""The release checklist: ticking, the ship gate, tagging, final notes and rollback."""

import subprocess

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from apps.changes.models import ChangeStatus
from apps.checklists.models import ChecklistItem, ItemKind, ItemState
from apps.checklists.services import (
    change_rollback,
    change_ship,
    checklist_item_tick,
    template_item_add,
    template_item_move,
    template_item_remove,
)
from apps.core.audit import audit_history
from apps.core.exceptions import Conflict
from apps.measurements.models import Measurement, MeasurementStatus


def items(change):
    return list(change.checklist.order_by("position"))


def settle_all(actor, change):
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
    assert len(messages) == 5
    fix.refresh_from_db()
    assert fix.status == ChangeStatus.DRAFT


def test_a_regression_blocks_shipping(reviewer, fix):
    from apps.measurements.models import Profile
    from apps.projects.models import Environment

    settle_all(reviewer, fix)
    profile = Profile.objects.create(
        project=fix.project,
        name="bench",
        environment=Environment.objects.create(name="staging"),
        argv=["true"],
    )
    Measurement.objects.create(
        change=fix,
        profile=profile,
        status=MeasurementStatus.DONE,
        base_sha=fix.base_sha,
        head_sha=fix.head_sha,
        results=[{"metric": "peak_rss", "verdict": "regressed"}],
    )
    with pytest.raises(ValidationError, match="peak_rss regressed"):
        change_ship(actor=reviewer, change=fix)


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
    assert len(override.after["blockers"]) == 4


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
