import pytest


@pytest.fixture
def admin_user(django_user_model):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user("alice-admin", password="pw-admin-123456")
    user.groups.add(Group.objects.get(name="admin"))
    return user
