"""Create the demo administrator once, with a generated password kept in var/demo-admin.txt.

Running it again prints the same login (safe to repeat). --reset generates a new password.
"""
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from dashboard.roles import ADMIN


class Command(BaseCommand):
    help = "Create (or show) the demo administrator's login."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--reset", action="store_true", help="generate a new password")

    def handle(self, *args, username, reset, **options):
        secret_file = settings.VAR_DIR / "demo-admin.txt"
        secret_file.parent.mkdir(parents=True, exist_ok=True)
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        password = secret_file.read_text().strip() if secret_file.exists() and not reset else ""
        if user is None or reset or not password or not user.check_password(password):
            password = secrets.token_urlsafe(12)
            if user is None:
                user = User.objects.create_user(username=username, password=password, is_staff=True)
            else:
                user.set_password(password)
                user.save(update_fields=["password"])
            secret_file.write_text(password + "\n")
            secret_file.chmod(0o600)
        if not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
        user.groups.add(Group.objects.get(name=ADMIN))
        self.stdout.write(f"Demo administrator: username {username!r}, password {password!r} (kept in {secret_file})")
