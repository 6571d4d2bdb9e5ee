import io
import stat

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
    password_file = settings.DATA_DIR / "initial-admin-password"
    assert admin.check_password(password_file.read_text().strip())
    assert admin.role == Role.ADMIN
    # The demo's owner hears of its measurements: the admin has an address to hear at.
    assert admin.email == "admin@localhost"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
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


def test_the_initial_password_is_shown_only_until_it_is_changed(db, settings):
    out = io.StringIO()
    call_command("bootstrap", stdout=out)
    password_file = settings.DATA_DIR / "initial-admin-password"
    initial = password_file.read_text().strip()
    assert initial in out.getvalue()

    again = io.StringIO()
    call_command("bootstrap", stdout=again)
    assert initial in again.getvalue(), "still the password until it is changed"

    admin = User.objects.get()
    admin.set_password("a much better one, 2026")
    admin.save()
    after = io.StringIO()
    call_command("bootstrap", stdout=after)
    assert initial not in after.getvalue()
    assert not password_file.exists(), "the plain-text file of an old password is removed"
