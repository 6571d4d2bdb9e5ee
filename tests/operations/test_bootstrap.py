import io
import re
from pathlib import Path

from django.core.management import call_command

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.changes.models import Change
from apps.measurements.models import Profile
from apps.projects.models import Environment, Project


def test_bootstrap_makes_a_fresh_install_usable_once(db, settings):
    out = io.StringIO()
    call_command("bootstrap", "--demo", "--url", "http://127.0.0.1:9000", stdout=out)
    admin = User.objects.get()
    assert admin.check_password(printed_password(out.getvalue()))
    assert admin.role == Role.ADMIN
    # The demo's owner hears of its measurements: the admin has an address to hear at.
    assert admin.email == "admin@localhost"
    assert "http://127.0.0.1:9000/" in out.getvalue()
    assert (settings.DATA_DIR / "demo" / "service" / ".git").is_dir()
    assert Project.objects.get().repository_url.endswith("demo/service")
    assert Environment.objects.get().queue == "measure.local"
    assert Profile.objects.get().runs_per_side == 10
    change = Change.objects.get()
    assert (change.base_revision, change.head_revision) == ("main", "fix/bounded-cache")

    call_command("bootstrap", "--demo", stdout=io.StringIO())
    assert (User.objects.count(), Project.objects.count(), Change.objects.count()) == (1, 1, 1)


def test_without_demo_only_the_admin_is_made(db):
    call_command("bootstrap", stdout=io.StringIO())
    assert User.objects.count() == 1
    assert not Project.objects.exists()


def test_the_password_is_printed_once_and_kept_nowhere(db, settings):
    # What an older bootstrap left behind.
    old_file = settings.DATA_DIR / "initial-admin-password"
    old_file.write_text("from-an-older-version\n")
    first = io.StringIO()
    call_command("bootstrap", "--url", "https://fixledger.example.com", stdout=first)
    password = printed_password(first.getvalue())
    assert User.objects.get().check_password(password)
    assert not old_file.exists(), "no plain-text password in the data folder"
    assert not any(password in p.read_text(errors="ignore") for p in files(settings.DATA_DIR))

    again = io.StringIO()
    call_command("bootstrap", "--url", "https://fixledger.example.com", stdout=again)
    assert "https://fixledger.example.com/" in again.getvalue()
    assert password not in again.getvalue()
    assert "Log in as" not in again.getvalue()


def printed_password(output: str) -> str:
    match = re.search(r"Log in as 'admin' with the password (\S+) \(shown only now\)", output)
    assert match, output
    return match[1]


def files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]
