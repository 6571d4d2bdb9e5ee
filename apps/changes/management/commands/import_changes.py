from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import User
from apps.changes.import_formats import ImportFileError, parse_file
from apps.changes.imports import ImportRefused, changes_import


class Command(BaseCommand):
    help = (
        "Import past fixes from JSON files (the API's change shape, one or many) and Markdown "
        "notes. All files import together or not at all; errors name the record and the field."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", type=Path)
        parser.add_argument("--actor", required=True, help="Username of the importing admin.")
        parser.add_argument("--owner", default="", help="Owner for records that name none.")
        parser.add_argument("--project", default="", help="Project slug for records without.")

    def handle(self, *args, files, actor, owner, project, **options):
        try:
            actor_user = User.objects.get(username=actor)
        except User.DoesNotExist as exc:
            raise CommandError(f"No user {actor!r}.") from exc
        records = []
        for path in files:
            try:
                parsed = parse_file(path.name, path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ImportFileError) as exc:
                raise CommandError(f"{path}: {exc}") from exc
            records += parsed
        try:
            created = changes_import(
                actor=actor_user, records=records, default_owner=owner, default_project=project
            )
        except ImportRefused as exc:
            for error in exc.errors:
                self.stderr.write(str(error))
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Imported {len(created)} change(s).")
