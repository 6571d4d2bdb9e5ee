"""What happens to a change, for the parts that react (checklists, search, notifications)."""

from dataclasses import dataclass

from apps.core.events import Event


@dataclass(frozen=True)
class ChangesFiled(Event):
    """One change filed from the form or API, or many at once by an import."""

    change_ids: tuple[int, ...]
    actor_id: int | None
    imported: bool = False


@dataclass(frozen=True)
class ChangeEdited(Event):
    """Fields a person wrote were edited (the search index re-reads the change)."""

    change_id: int
    actor_id: int | None


@dataclass(frozen=True)
class RevisionsResolved(Event):
    """The change's base and head revisions, commits and diffstat were read from git."""

    change_id: int
    error: str = ""


@dataclass(frozen=True)
class ChangeReadyForReview(Event):
    """Its measurements are in and nothing is left to measure: reviewers can decide."""

    change_id: int


@dataclass(frozen=True)
class ChangeShipped(Event):
    """Tagged and shipped; `override_reason` says why an admin shipped it over its blockers."""

    change_id: int
    actor_id: int | None
    tag_name: str
    overridden: bool = False
    override_reason: str = ""


@dataclass(frozen=True)
class ChangeRolledBack(Event):
    """``change_id`` was rolled back by the reverse change ``rollback_id``."""

    change_id: int
    rollback_id: int
    actor_id: int | None
