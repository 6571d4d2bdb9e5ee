import secrets

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.accounts.services import user_set_role
from apps.measurements.demo import seed_demo

PASSWORD_FILE = "initial-admin-password"  # noqa: S105 (a file name)


class Command(BaseCommand):
    help = (
        "Make a fresh install usable: an admin account (password written to the data folder); "
        "with --demo, a demo project with a leaking revision, its fix, a profile and a change."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", default=settings.SITE_URL, help="where fixledger is served")
        parser.add_argument(
            "--demo", action="store_true", help="also create the demo project (once)"
        )

    @transaction.atomic
    def handle(self, *args, url, demo, **options):
        password_file = settings.DATA_DIR / PASSWORD_FILE
        if not User.objects.exists():
            password = secrets.token_urlsafe(12)
            # An address, so the demo's notifications reach the mail folder; theirs to change.
            admin = User.objects.create_superuser(
                "admin", email="admin@localhost", password=password
            )
            user_set_role(actor=None, user=admin, role=Role.ADMIN)
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
        admin = User.objects.filter(is_superuser=True).order_by("pk").first()
        if demo and admin is not None:
            seed_demo(owner=admin)
        self.stdout.write(f"\nfixledger is starting at {url}/")
        if password_file.exists():
            initial = password_file.read_text().strip()
            first_admin = User.objects.filter(username="admin").first()
            if first_admin is not None and first_admin.check_password(initial):
                self.stdout.write(
                    f"Log in as 'admin' with the password in {password_file} ({initial}); "
                    f"change it under {url}/admin/password_change/"
                )
            else:
                # Changed (or the account is gone): the file would only leak an old password.
                password_file.unlink()
        self.stdout.write("Press Ctrl-C to stop.\n")
