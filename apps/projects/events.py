"""What happens to a project, for the parts that react (changes resolve revisions after a sync)."""

from dataclasses import dataclass

from apps.core.events import Event


@dataclass(frozen=True)
class ProjectSynced(Event):
    """A worker cloned or fetched the project's repository: revisions it lacked may resolve now."""

    project_id: int
