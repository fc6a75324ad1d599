import os

import pytest

# Redis pub/sub channels are global across database numbers, so two test runs on one Redis
# (parallel sessions, a developer's `make demo`) would hear each other's group messages.
# Each run gets its own channel-layer prefix; subprocesses the tests start inherit it.
os.environ["CHANNELS_PREFIX"] = f"lcm-test-{os.getpid()}"


@pytest.fixture(autouse=True, scope="session")
def _own_channel_layer_prefix():
    from channels.layers import channel_layers
    from django.conf import settings

    settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = os.environ["CHANNELS_PREFIX"]
    channel_layers.backends.clear()
    yield


@pytest.fixture
def admin_user(django_user_model):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user("alice-admin", password="pw-admin-123456")
    user.groups.add(Group.objects.get(name="admin"))
    return user
