"""Importing a file of past fixes files them all at once, with every guarantee of filing one."""

import re
from collections import Counter

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.roles import Role
from apps.changes.imports import ImportRefused, changes_import
from apps.changes.models import Change
from apps.changes.revisions import WAITING_FOR_SYNC
from apps.changes.services import AUDITED_FIELDS, change_create
from apps.checklists.models import ChecklistItem, ItemKind, TemplateItem
from apps.core.audit import snapshot
from apps.core.models import AuditEntry
from apps.projects.models import Environment, Project
from apps.search.models import SearchEntry

from ..factories import ProjectFactory, UserFactory


def record(n: int = 1, **fields) -> dict:
    return {
        "title": f"Bound the puffin cache {n}",
        "project": "billing",
        "owner": "erin",
        "reason": "Puffin bodies pile up in the cache.",
        "expected_result": "peak RSS -20 %",
        "command": "python -m bench.puffin",
        "rollback_note": "Revert; the cache is unbounded again.",
        "files_touched": [f"app/puffin{n}.py"],
        "tags": ["memory", "cache"],
        **fields,
    }


@pytest.fixture
def search_project(db):
    """A second project with a template of its own, one item of it verified on staging."""
    project = ProjectFactory(name="Search API", slug="search")
    staging = Environment.objects.create(name="staging-import")
    TemplateItem.objects.create(project=project, position=0, title="Run the query suite")
    TemplateItem.objects.create(
        project=project,
        position=1,
        title="Run unit tests",
        kind=ItemKind.VERIFY,
        argv=["pytest", "-q"],
        environment=staging,
    )
    TemplateItem.objects.create(
        project=project, position=2, title="Tag the release", kind=ItemKind.TAG_RELEASE
    )
    return project


def refused(**kwargs) -> list[str]:
    with pytest.raises(ImportRefused) as info:
        changes_import(**kwargs)
    return [str(e) for e in info.value.errors]


def test_a_file_of_many_changes_is_filed_whole(
    admin, engineer, other_engineer, project, search_project, found
):
    records = [
        record(n, project="search" if n % 3 == 0 else "billing", owner="ed" if n % 2 else "erin")
        for n in range(1, 31)
    ]
    created = changes_import(actor=admin, records=records)

    assert [c.title for c in created] == [r["title"] for r in records]
    assert all(c.pk for c in created)
    changes = Change.objects.filter(pk__in=[c.pk for c in created])
    assert changes.count() == 30
    # One audit entry each, by the admin, with what change_create would have recorded.
    entries = AuditEntry.objects.filter(
        action="create", content_type=ContentType.objects.get_for_model(Change)
    )
    by_object = {e.object_id: e for e in entries}
    assert len(entries) == 30
    for change in changes.select_related("project", "owner"):
        entry = by_object[str(change.pk)]
        assert entry.actor == admin and entry.actor_name == "ada"
        assert entry.object_label == str(change)
        assert entry.after == snapshot(change, AUDITED_FIELDS)
        assert change.status == "draft" and change.revision_error == ""
    # Each project's own checklist, in its order, with its environment.
    search_change = changes.filter(project=search_project).first()
    assert [
        (i.position, i.title, i.kind, i.environment_id) for i in search_change.checklist.all()
    ] == [(t.position, t.title, t.kind, t.environment_id) for t in search_project.checklist.all()]
    billing_change = changes.filter(project=project).first()
    assert billing_change.checklist.count() == 5
    assert ChecklistItem.objects.count() == 10 * 3 + 20 * 5
    # Searchable at once, by words, path and tag.
    assert sorted(found(q="puffin")) == sorted(c.pk for c in created)
    assert found(q="app/puffin7.py") == [created[6].pk]
    assert len(found(tag="cache")) == 30
    assert SearchEntry.objects.count() == 30


def test_imported_and_hand_filed_changes_look_the_same(admin, engineer, project):
    hand = change_create(actor=admin, owner=engineer, project=project, **_fields(record(1)))
    [imported] = changes_import(actor=admin, records=[record(1)])

    def audit(change):
        return AuditEntry.objects.get(action="create", object_id=str(change.pk)).after

    def checklist(change):
        return list(change.checklist.values_list("position", "title", "kind", "required"))

    assert audit(imported) == audit(hand)
    assert checklist(imported) == checklist(hand)
    assert snapshot(imported, AUDITED_FIELDS) == snapshot(hand, AUDITED_FIELDS)


def _fields(rec: dict) -> dict:
    return {k: v for k, v in rec.items() if k not in ("project", "owner")}


@pytest.mark.parametrize("bad", [[1], [3], [5], [1, 3, 5]], ids=["first", "middle", "last", "all"])
def test_bad_records_anywhere_refuse_the_file_and_are_each_named(admin, engineer, project, bad):
    faults = {
        1: ({"project": "nope"}, "project", "Object with slug=nope does not exist."),
        3: ({"files_touched": ["/etc/passwd"]}, "files_touched", "/etc/passwd: paths are"),
        5: ({"base_revision": "main..evil"}, "base_revision", "is not a commit SHA"),
    }
    records = [record(n, **(faults[n][0] if n in bad else {})) for n in range(1, 6)]

    report = refused(actor=admin, records=records)

    assert len(report) == len(bad)
    for line, n in zip(report, bad, strict=True):
        _fault, field, message = faults[n]
        assert line.startswith(f"record {n} ('Bound the puffin cache {n}'): {field}: ")
        assert message in line
    assert not Change.objects.exists()
    assert not AuditEntry.objects.filter(action="create").exists()
    assert not ChecklistItem.objects.exists()
    assert not SearchEntry.objects.exists()


def test_every_field_of_a_bad_record_is_reported(admin, engineer, project):
    report = refused(
        actor=admin,
        records=[record(1, title="t" * 201, tags=["Not A Tag"], files_touched=["/abs.py"])],
    )
    # The serializer's errors come first, as in the API; the model's follow once it passes.
    assert {line.split(": ")[1] for line in report} == {"title"}
    report = refused(actor=admin, records=[record(1, tags=["Not A Tag"], files_touched=["/a"])])
    assert {line.split(": ")[1] for line in report} == {"tags", "files_touched"}


def test_owner_must_be_an_engineer(admin, engineer, viewer, project):
    UserFactory(username="gone", role=Role.ENGINEER, is_active=False)
    report = refused(
        actor=admin,
        records=[record(1), record(2, owner="vera"), record(3, owner="gone"), record(4, owner="")],
    )
    assert report == [
        "record 2 ('Bound the puffin cache 2'): owner: vera is not an engineer.",
        "record 3 ('Bound the puffin cache 3'): owner: Object with username=gone does not exist.",
        "record 4 ('Bound the puffin cache 4'): owner: Name the owner (a username).",
    ]
    assert not Change.objects.exists()


def test_unknown_project_and_defaults(admin, engineer, viewer, project):
    report = refused(actor=admin, records=[record(1, project="nope"), record(2, project=7)])
    assert report == [
        "record 1 ('Bound the puffin cache 1'): project: Object with slug=nope does not exist.",
        "record 2 ('Bound the puffin cache 2'): project: Object with slug=7 does not exist.",
    ]
    # Records naming nobody take the defaults; records naming someone keep their own.
    created = changes_import(
        actor=admin,
        records=[record(1, project="", owner=""), record(2, project="billing")],
        default_owner="erin",
        default_project="billing",
    )
    assert [(c.project.slug, c.owner.username) for c in created] == [
        ("billing", "erin"),
        ("billing", "erin"),
    ]
    assert refused(actor=admin, records=[record(1, owner="")], default_owner="vera") == [
        "record 1 ('Bound the puffin cache 1'): owner: vera is not an engineer."
    ]


def test_duplicate_tags_are_taken_as_the_api_takes_them(admin, engineer, project, api_as, found):
    tags = ["memory", "cache", "memory"]
    [imported] = changes_import(actor=admin, records=[record(1, tags=tags)])
    response = api_as(admin).post("/api/changes/", record(2, tags=tags), format="json")
    assert response.status_code == 201, response.content
    hand = Change.objects.get(pk=response.json()["id"])
    assert imported.tags == hand.tags == tags
    # Found by their tag either way.
    assert sorted(found(tag="memory")) == sorted([imported.pk, hand.pk])
    # Too many tags are refused the same way too.
    many = [f"t{i}" for i in range(21)]
    assert refused(actor=admin, records=[record(1, tags=many)]) == [
        "record 1 ('Bound the puffin cache 1'): tags: Ensure this field has no more than 20 "
        "elements."
    ]


def test_revisions_wait_for_one_sync_per_project(
    admin,
    engineer,
    project,
    search_project,
    tmp_path,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    from apps.projects.tasks import sync_project

    synced = []
    monkeypatch.setattr(sync_project, "apply_async", lambda args, **kw: synced.append(args[0]))
    Project.objects.filter(pk__in=[project.pk, search_project.pk]).update(
        repository_url=str(tmp_path / "nowhere")
    )
    records = [
        record(
            n, project="search" if n % 2 else "billing", base_revision="main", head_revision="fix"
        )
        for n in range(1, 11)
    ] + [record(11)]
    with django_capture_on_commit_callbacks(execute=True):
        created = changes_import(actor=admin, records=records)
    # No git on import: the changes wait, as on a host without a clone, and each project
    # is synced once (the sync resolves every change waiting for it).
    assert sorted(synced) == sorted([project.pk, search_project.pk])
    assert [c.revision_error for c in created] == [WAITING_FOR_SYNC] * 10 + [""]
    assert not Change.objects.exclude(base_sha="").exists()


def test_queries_do_not_grow_with_the_records(admin, engineer, other_engineer, project):
    def statements(n: int, start: int) -> Counter:
        records = [record(i, owner="ed" if i % 2 else "erin") for i in range(start, start + n)]
        with CaptureQueriesContext(connection) as ctx:
            changes_import(actor=admin, records=records)
        # executemany is captured as "N times: INSERT ...".
        return Counter(
            re.sub(r"^\d+ times: ", "", q["sql"]).split()[0].upper() for q in ctx.captured_queries
        )

    statements(1, 1000)  # content types and the admin's role are cached from then on
    small, large = statements(10, 1), statements(50, 100)
    # Reading and checking cost the same for 10 records as for 50 ...
    assert {k: v for k, v in small.items() if k != "INSERT"} == {
        k: v for k, v in large.items() if k != "INSERT"
    }
    # ... and rows go in batches: SQLite's limit on variables per statement makes a batch
    # about 50 rows; PostgreSQL takes 2,000.
    grown = large["INSERT"] - small["INSERT"]
    assert grown <= (40 // 5 if connection.vendor == "sqlite" else 0), (small, large)
