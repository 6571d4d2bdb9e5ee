import factory

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.accounts.services import user_set_role
from apps.changes.models import Change
from apps.measurements.models import Measurement, MeasurementStatus, Run, RunStatus, Side
from apps.projects.models import Project

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if create and extracted:
            user_set_role(actor=None, user=self, role=Role(extracted))


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Service {n}")
    slug = factory.Sequence(lambda n: f"service-{n}")


class ChangeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Change

    title = factory.Sequence(lambda n: f"Stop cache {n} from growing without bound")
    project = factory.SubFactory(ProjectFactory)
    owner = factory.SubFactory(UserFactory, role=Role.ENGINEER)
    reason = "The LRU cache holds every response body; RSS grows 40 MB an hour."
    expected_result = "peak RSS -20 %"
    command = "python -m bench.cache --requests 10000"
    rollback_note = "Revert the commit; the cache size goes back to unbounded."
    files_touched = factory.LazyFunction(lambda: ["app/cache.py", "app/settings.py"])
    base_revision = "main"
    head_revision = "fix/cache-bound"
    tags = factory.LazyFunction(lambda: ["memory", "cache"])


def measurement_with_runs(change, profile, values, *, per_side: int = 10) -> Measurement:
    """A measurement a worker holds with every run done, as `measurement_finish` finds it:
    `per_side` runs a side, interleaved, run `i` of `side` measured as `values(i, side)` (the
    Run fields: peak_rss_bytes, wall_seconds, ...)."""
    measurement = Measurement.objects.create(
        change=change,
        profile=profile,
        status=MeasurementStatus.RUNNING,
        worker="w1",
        base_sha="a" * 40,
        head_sha="b" * 40,
    )
    Run.objects.bulk_create(
        Run(
            measurement=measurement,
            sequence=2 * i + j,
            side=side,
            status=RunStatus.DONE,
            **{"user_seconds": 0.5, "system_seconds": 0.1, **values(i, side)},
        )
        for i in range(per_side)
        for j, side in enumerate((Side.BEFORE, Side.AFTER))
    )
    return measurement


def project_not_synced(admin, path) -> Project:
    """A project over a real repository at `path`, its first sync queued but not run: this
    host has no clone of it yet."""
    from apps.projects.services import project_create

    from .repos import make_service_repo

    make_service_repo(path)
    return project_create(actor=admin, name="Search", slug="search", repository_url=str(path))


def change_between_branches(engineer, project) -> Change:
    """A change filed from `main` to `fix/cache` (the branches `make_service_repo` makes)."""
    from apps.changes.services import change_create

    return change_create(
        actor=engineer,
        project=project,
        title="Bound the cache",
        reason="leak",
        expected_result="peak RSS -20 %",
        base_revision="main",
        head_revision="fix/cache",
    )
