import pytest

from apps.changes.models import Change
from apps.core.audit import audit_history
from apps.core.models import AuditEntry
from apps.projects.models import Project


@pytest.fixture
def admin_client_(as_user, admin):
    return as_user(admin)


@pytest.mark.parametrize(
    "url",
    [
        "/admin/",
        "/admin/changes/change/",
        "/admin/projects/project/",
        "/admin/accounts/user/",
        "/admin/accounts/apitoken/",
        "/admin/core/auditentry/",
        "/admin/changes/change/add/",
    ],
)
def test_admin_pages_render(admin_client_, change, url):
    assert admin_client_.get(url).status_code == 200


def test_admin_edits_go_through_services_and_are_audited(admin_client_, admin, change):
    response = admin_client_.post(
        f"/admin/changes/change/{change.pk}/change/",
        {
            "title": "Edited in admin",
            "project": change.project_id,
            "owner": change.owner_id,
            "reason": change.reason,
            "expected_result": change.expected_result,
            "command": change.command,
            "rollback_note": change.rollback_note,
            "files_touched": "app/cache.py\napp/views.py",
            "base_revision": change.base_revision,
            "head_revision": change.head_revision,
            "tags": "memory, Cache",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = audit_history(Change.objects.get()).first()
    assert entry.actor == admin
    assert entry.after["title"] == "Edited in admin"
    saved = Change.objects.get()
    assert saved.files_touched == ["app/cache.py", "app/views.py"]
    assert saved.tags == ["memory", "cache"]


def test_admin_creates_projects_through_the_service(admin_client_, admin):
    response = admin_client_.post(
        "/admin/projects/project/add/", {"name": "Search", "slug": "search"}
    )
    assert response.status_code == 302
    project = Project.objects.get(slug="search")
    assert audit_history(project).get().actor == admin


def test_audit_trail_is_read_only_in_admin(admin_client_, change):
    entry = AuditEntry.objects.create(
        action="create",
        content_type_id=1,
        object_id="1",
        object_label="x",
        actor_name="someone",
    )
    assert admin_client_.get(f"/admin/core/auditentry/{entry.pk}/delete/").status_code == 403
    assert admin_client_.get("/admin/core/auditentry/add/").status_code == 403


@pytest.mark.parametrize(
    ("model", "deletable"),
    [
        ("core.AuditEntry", False),
        ("search.SearchEntry", False),
        ("checklists.TemplateItem", True),
        ("checklists.ChecklistItem", False),
        ("measurements.Measurement", True),
    ],
)
def test_service_written_records_are_read_only_in_the_admin(rf, admin, model, deletable):
    from django.apps import apps
    from django.contrib.admin import site

    request = rf.get("/admin/")
    request.user = admin
    model_admin = site._registry[apps.get_model(model)]
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert model_admin.has_view_permission(request)
    assert model_admin.has_delete_permission(request) is deletable
