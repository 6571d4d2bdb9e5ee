"""Where a verification runs and what fingerprints an environment are audited when changed."""

from apps.checklists.models import ItemKind
from apps.checklists.templates import template_item_add, template_item_update
from apps.core.audit import audit_history
from apps.projects.models import Environment
from apps.projects.services import environment_save


def test_an_environments_config_files_are_audited(admin):
    staging = environment_save(actor=admin, environment=Environment(name="staging"))
    staging.config_files = ["/etc/service/app.toml"]
    environment_save(actor=admin, environment=staging)
    entry = audit_history(staging).filter(action="update").get()
    assert entry.actor == admin
    assert (entry.before, entry.after) == (
        {"config_files": []},
        {"config_files": ["/etc/service/app.toml"]},
    )


def test_a_template_items_environment_is_audited(admin, repo_project):
    staging = environment_save(actor=admin, environment=Environment(name="staging"))
    item = template_item_add(
        actor=admin, project=repo_project, title="Load test", kind=ItemKind.VERIFY, argv=["true"]
    )
    template_item_update(actor=admin, item=item, environment=staging)
    entry = audit_history(item).filter(action="update").get()
    assert (entry.before, entry.after) == ({"environment": None}, {"environment": "staging"})
