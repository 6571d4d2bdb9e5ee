from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.services import api_token_create


class Command(BaseCommand):
    help = "Create an API token for a user and print its key (shown only once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="command line", help="what the token is for")
        parser.add_argument(
            "--expires-days", type=int, default=None, help="refuse the token after N days"
        )
        parser.add_argument(
            "--read-only", action="store_true", help="only reads (GET); any write is refused"
        )

    def handle(self, *args, username, name, expires_days, read_only, **options):
        try:
            user = User.objects.get(username=username)
        except User.DoesNotExist:
            raise CommandError(f"No user named {username!r}.") from None
        try:
            # The operator at the console acts as the user the token is for.
            _token, key = api_token_create(
                actor=user,
                user=user,
                name=name,
                expires_at=timezone.now() + timedelta(days=expires_days)
                if expires_days is not None
                else None,
                read_only=read_only,
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(key)
