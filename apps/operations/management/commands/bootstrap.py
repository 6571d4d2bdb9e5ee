import secrets

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.accounts.services import user_set_role
from apps.measurements.demo import seed_demo

# Where an older bootstrap kept the initial password in plain text; removed when found.
OLD_PASSWORD_FILE = "initial-admin-password"  # noqa: S105 (a file name)


class Command(BaseCommand):
    help = (
        "Make a fresh install usable: an admin account, whose password is printed once, when it "
        "is made; with --demo, a demo project with a leaking revision, its fix, a profile and a "
        "change."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", default=settings.SITE_URL, help="where fixledger is served")
        parser.add_argument(
            "--demo", action="store_true", help="also create the demo project (once)"
        )

    @transaction.atomic
    def handle(self, *args, url, demo, **options):
        # The password is printed, never stored: `make run` and upgrades run this every time,
        # and neither a log nor the data folder should keep it.
        (settings.DATA_DIR / OLD_PASSWORD_FILE).unlink(missing_ok=True)
        password = None
        if not User.objects.exists():
            password = secrets.token_urlsafe(12)
            # An address, so the demo's notifications reach the mail folder; theirs to change.
            admin = User.objects.create_superuser(
                "admin", email="admin@localhost", password=password
            )
            user_set_role(actor=None, user=admin, role=Role.ADMIN)
        admin = User.objects.filter(is_superuser=True).order_by("pk").first()
        if demo and admin is not None:
            seed_demo(owner=admin)
        self.stdout.write(f"\nfixledger at {url}/")
        if password is not None:
            self.stdout.write(
                f"Log in as 'admin' with the password {password} (shown only now); change it "
                f"under {url}/admin/password_change/"
            )
