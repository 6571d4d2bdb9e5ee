"""What changes do when something happens to their project.

Registered in `ChangesConfig.ready()`; each runs after the write that caused it commits.
"""

from apps.projects.events import ProjectSynced
from apps.projects.models import Project

from .services import change_refresh_revisions_pending


def resolve_after_sync(event: ProjectSynced) -> None:
    """A fresh clone may know revisions that changes of the project waited for."""
    project = Project.objects.filter(pk=event.project_id).first()
    if project is not None:
        change_refresh_revisions_pending(project=project)
