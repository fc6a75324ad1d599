from django.apps import AppConfig
from django.db.models.signals import post_migrate


def grant_admin_role_all_permissions(sender, **kwargs):
    """The admin role manages everything in Django's admin; keep its group complete as models are added."""
    from django.contrib.auth.models import Group, Permission

    from .roles import ADMIN

    group, _ = Group.objects.get_or_create(name=ADMIN)
    group.permissions.set(Permission.objects.all())


class DashboardConfig(AppConfig):
    name = "dashboard"

    def ready(self):
        post_migrate.connect(grant_admin_role_all_permissions, sender=self)
