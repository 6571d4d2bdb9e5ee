"""Revisions of a change resolved against the project's real repository."""

import pytest
from django.core.exceptions import ValidationError

from apps.changes.revisions import WAITING_FOR_SYNC, files_against_diff
from apps.changes.services import change_create, change_update
from apps.projects.models import JobStatus, RepositoryJob
from apps.projects.services import project_create
from apps.projects.tasks import sync_project

from ..repos import commit_all, make_service_repo

EXPECTED_FILES = ["app/cache.py", "app/helpers.py", "assets/logo.png"]


@pytest.fixture
def upstream(tmp_path):
    path = tmp_path / "upstream"
    return path, make_service_repo(path)


@pytest.fixture
def project(admin, upstream):
    project = project_create(
        actor=admin, name="Billing API", slug="billing", repository_url=str(upstream[0])
    )
    sync_project(project.pk)
    project.refresh_from_db()
    return project


def file_change(actor, project, **values):
    defaults = {"title": "Bound the cache", "reason": "leak", "expected_result": "RSS -20 %"}
    return change_create(actor=actor, project=project, **{**defaults, **values})


def test_revisions_resolve_and_fill_files_touched(engineer, project, upstream):
    _, shas = upstream
    change = file_change(engineer, project, base_revision="main", head_revision="fix/cache")
    assert change.base_sha == shas["main"]
    assert change.head_sha == shas["fix/cache"]
    assert change.files_touched == EXPECTED_FILES
    stats = {f["path"]: f for f in change.diffstat}
    assert stats["app/helpers.py"]["status"] == "R"
    assert stats["app/helpers.py"]["old_path"] == "app/util.py"
    assert stats["assets/logo.png"]["binary"] is True
    assert stats["app/cache.py"]["added"] > 0
    assert [c["subject"] for c in change.commits] == ["Add a logo", "Bound the response cache"]
    assert change.commits[0]["author_name"] == "Erin Engineer"
    assert change.revision_error == ""


def test_tags_and_shas_resolve(engineer, project, upstream):
    _, shas = upstream
    change = file_change(engineer, project, base_revision="v1.0", head_revision=shas["first"][:10])
    assert change.base_sha == shas["main"]
    assert change.head_sha == shas["first"]
    assert change.files_touched == ["app/cache.py", "app/helpers.py"]


def test_files_given_by_hand_are_kept(engineer, project):
    change = file_change(
        engineer,
        project,
        base_revision="main",
        head_revision="fix/cache",
        files_touched=["deploy/cache.conf"],
    )
    assert change.files_touched == ["deploy/cache.conf"]
    assert len(change.diffstat) == 3


def test_new_revisions_refill_files_unless_edited_by_hand(engineer, project, upstream):
    _, shas = upstream
    change = file_change(engineer, project, base_revision="main", head_revision=shas["first"])
    assert change.files_touched == ["app/cache.py", "app/helpers.py"]
    # Unchanged file list + new revision: the list follows the diff.
    change = change_update(
        actor=engineer,
        change=change,
        head_revision="fix/cache",
        files_touched=change.files_touched,
    )
    assert change.files_touched == EXPECTED_FILES
    # Edited by hand: it stays, even when the revisions move again.
    change = change_update(actor=engineer, change=change, files_touched=["only/this.py"])
    change = change_update(actor=engineer, change=change, head_revision=shas["first"])
    assert change.head_sha == shas["first"]
    assert change.files_touched == ["only/this.py"]


def test_unknown_revision_is_refused_with_a_clear_message(engineer, project):
    with pytest.raises(ValidationError) as excinfo:
        file_change(engineer, project, base_revision="main", head_revision="no-such-branch")
    message = excinfo.value.message_dict["head_revision"][0]
    assert "no-such-branch" in message
    assert "the repository of Billing API" in message
    assert "last sync" in message


@pytest.mark.parametrize(
    "name",
    [
        "--upload-pack=touch pwned",
        "-c core.sshCommand=touch pwned",
        "HEAD@{0}",
        "main..fix",
        "@{-1}",
        "a b",
        "refs/heads/../x",
    ],
)
def test_injection_attempts_are_refused_and_run_nothing(engineer, project, name, tmp_path):
    import os

    os.chdir(tmp_path)
    with pytest.raises(ValidationError) as excinfo:
        file_change(engineer, project, base_revision="main", head_revision=name)
    assert "head_revision" in excinfo.value.message_dict
    assert not (tmp_path / "pwned").exists()


def test_the_form_shows_unknown_revisions(as_user, engineer, project):
    response = as_user(engineer).post(
        "/changes/new/",
        {
            "title": "t",
            "project": project.pk,
            "reason": "r",
            "expected_result": "e",
            "base_revision": "main",
            "head_revision": "nope",
        },
    )
    assert response.status_code == 200
    assert "No commit named &#x27;nope&#x27;" in response.content.decode()


def test_the_api_exposes_revisions_and_refuses_unknown_ones(api_as, engineer, project, upstream):
    _, shas = upstream
    body = {
        "title": "t",
        "project": "billing",
        "reason": "r",
        "expected_result": "e",
        "base_revision": "main",
        "head_revision": "fix/cache",
    }
    created = api_as(engineer).post("/api/changes/", body, format="json").json()
    assert created["head_sha"] == shas["fix/cache"]
    assert created["files_touched"] == EXPECTED_FILES
    assert {f["path"] for f in created["diffstat"]} == set(EXPECTED_FILES)
    assert len(created["commits"]) == 2
    bad = api_as(engineer).post("/api/changes/", {**body, "head_revision": "nope"}, format="json")
    assert bad.status_code == 400
    assert "head_revision" in bad.json()


def test_change_page_shows_commits_and_diffstat(as_user, engineer, project):
    change = file_change(engineer, project, base_revision="main", head_revision="fix/cache")
    page = as_user(engineer).get(change.get_absolute_url()).content.decode()
    assert "Bound the response cache" in page
    assert "app/util.py → app/helpers.py" in page
    assert "binary" in page
    assert change.head_sha[:12] in page


def test_without_a_clone_a_worker_resolves_after_syncing(
    engineer, admin, upstream, django_capture_on_commit_callbacks
):
    project = project_create(
        actor=admin, name="Search", slug="search", repository_url=str(upstream[0])
    )
    # As if the registration's sync had failed: a sync still queued would be joined instead.
    RepositoryJob.objects.filter(project=project).update(status=JobStatus.FAILED)
    with django_capture_on_commit_callbacks() as callbacks:
        change = file_change(engineer, project, base_revision="main", head_revision="fix/cache")
    assert change.head_sha == ""
    assert change.revision_error == WAITING_FOR_SYNC
    assert len(callbacks) == 1
    sync_project(project.pk)
    change.refresh_from_db()
    assert change.head_sha == upstream[1]["fix/cache"]
    assert change.files_touched == EXPECTED_FILES
    assert change.revision_error == ""


def test_a_worker_records_a_revision_that_does_not_exist(engineer, admin, upstream):
    project = project_create(
        actor=admin, name="Search", slug="search", repository_url=str(upstream[0])
    )
    change = file_change(engineer, project, base_revision="main", head_revision="gone")
    sync_project(project.pk)
    change.refresh_from_db()
    assert "gone" in change.revision_error
    assert change.head_sha == ""


def test_a_sha_pushed_since_the_last_sync_waits_for_one_fetch(
    api_as, engineer, project, upstream, django_capture_on_commit_callbacks
):
    path, shas = upstream
    (path / "NEWS").write_text("news\n")
    pushed = commit_all(path, "News", 9)
    body = {
        "title": "t",
        "project": "billing",
        "reason": "r",
        "expected_result": "e",
        "base_revision": shas["main"],
        "head_revision": pushed,
    }
    with django_capture_on_commit_callbacks() as callbacks:
        created = api_as(engineer).post("/api/changes/", body, format="json")
    assert created.status_code == 201
    assert created.json()["revisions_pending"] is True
    assert created.json()["revision_error"] == WAITING_FOR_SYNC
    assert len(callbacks) == 1, "a sync is asked for"
    sync_project(project.pk)
    change = api_as(engineer).get(f"/api/changes/{created.json()['number']}/").json()
    assert change["head_sha"] == pushed
    assert change["revisions_pending"] is False
    assert change["files_touched"] == ["NEWS"]


def test_a_sha_that_even_a_fetch_does_not_bring_is_recorded_as_unknown(engineer, project):
    change = file_change(engineer, project, base_revision="main", head_revision="deadbeef12")
    assert change.revision_error == WAITING_FOR_SYNC
    sync_project(project.pk)
    change.refresh_from_db()
    assert change.head_sha == ""
    assert "No commit named 'deadbeef12'" in change.revision_error
    assert "last sync" in change.revision_error


def test_hand_typed_files_that_disagree_with_git_are_flagged(as_user, engineer, project):
    change = file_change(
        engineer,
        project,
        base_revision="main",
        head_revision="fix/cache",
        files_touched=["app/cache.py", "app/util.py", "deploy/cache.conf"],
    )
    check = files_against_diff(change)
    # app/util.py was renamed to app/helpers.py: the old name still counts as in the diff.
    assert check.not_in_diff == ["deploy/cache.conf"]
    assert check.not_listed == ["app/helpers.py", "assets/logo.png"]
    page = as_user(engineer).get(change.get_absolute_url()).content.decode()
    assert "These files disagree with the git diff" in page
    assert "Listed, but not in the diff:" in page
    assert "In the diff, but not listed:" in page

    agreeing = file_change(engineer, project, base_revision="main", head_revision="fix/cache")
    assert files_against_diff(agreeing) is None
    page = as_user(engineer).get(agreeing.get_absolute_url()).content.decode()
    assert "disagree with the git diff" not in page


def test_clearing_files_touched_refills_them_from_git(as_user, engineer, project):
    change = file_change(
        engineer,
        project,
        base_revision="main",
        head_revision="fix/cache",
        files_touched=["deploy/cache.conf"],
    )
    change_update(actor=engineer, change=change, files_touched=[])
    change.refresh_from_db()
    assert change.files_touched == EXPECTED_FILES
    assert files_against_diff(change) is None

    # The same through the edit form: an empty box is filled from git.
    change_update(actor=engineer, change=change, files_touched=["deploy/cache.conf"])
    form = {
        "title": change.title,
        "project": project.pk,
        "reason": change.reason,
        "expected_result": change.expected_result,
        "base_revision": "main",
        "head_revision": "fix/cache",
        "files_touched": "",
        "tags": "",
    }
    response = as_user(engineer).post(f"/changes/{change.number}/edit/", form)
    assert response.status_code == 302
    change.refresh_from_db()
    assert change.files_touched == EXPECTED_FILES


def test_the_change_page_asks_again_while_a_sync_resolves_its_revisions(
    as_user, engineer, admin, upstream
):
    project = project_create(
        actor=admin, name="Search", slug="search", repository_url=str(upstream[0])
    )
    RepositoryJob.objects.filter(project=project).update(status=JobStatus.FAILED)
    change = file_change(engineer, project, base_revision="main", head_revision="fix/cache")
    client = as_user(engineer)
    poll = f'hx-get="{change.get_absolute_url()}" hx-trigger="every 2s"'
    page = client.get(change.get_absolute_url()).content.decode()
    assert WAITING_FOR_SYNC in page
    assert poll in page
    # What the poll brings once resolved: the record, the commits and the release panel.
    assert 'hx-select-oob="#change-git,#release:innerHTML,#release-summary:innerHTML"' in page
    sync_project(project.pk)
    page = client.get(change.get_absolute_url()).content.decode()
    assert poll not in page
    assert '<div id="change-git">' in page and "Bound the response cache" in page
    assert 'id="release"' in page and 'id="release-summary"' in page
