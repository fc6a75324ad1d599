"""Login everywhere, roles enforced server-side, anonymous sockets refused."""
import re

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group
from django.urls import URLPattern, URLResolver, get_resolver

from config.asgi import application

PUBLIC = {"login", "healthz"}


def _patterns(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _patterns(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


def _concrete(route: str) -> str:
    """Turn a route (path converters or regex) into a URL that resolves, with dummy values."""
    route = re.sub(r"<int:[^>]+>", "1", route)
    route = re.sub(r"<(?:slug|str|path):[^>]+>|<[^>]+>", "x", route)
    route = re.sub(r"\(\?P<[^>]+>[^)]*\)", "1", route)
    route = route.replace("^", "").replace("$", "").replace("\\", "")
    return "/" + route.lstrip("/")


ALL_URLS = sorted({(_concrete(route), p.name or "") for route, p in _patterns()})


@pytest.mark.django_db
@pytest.mark.parametrize("url,name", ALL_URLS)
def test_anonymous_request_is_redirected_or_refused(client, url, name):
    if name in PUBLIC:
        pytest.skip("public by design")
    for method in (client.get, client.post):
        response = method(url)
        assert response.status_code in (301, 302, 401, 403, 404, 405), (url, response.status_code)
        if response.status_code in (301, 302):
            assert "/login/" in response["Location"] or "/admin/login/" in response["Location"], (url, response["Location"])


def test_the_sweep_sees_the_product_urls():
    names = {name for _, name in ALL_URLS}
    assert {"overview", "login", "healthz"} <= names
    assert len(ALL_URLS) > 20  # the admin's URLs are included


@pytest.fixture
def viewer(django_user_model):
    user = django_user_model.objects.create_user("victor-viewer", password="pw-viewer-123456")
    user.groups.add(Group.objects.get(name="viewer"))
    return user


@pytest.mark.django_db
def test_a_viewer_cannot_reach_admin_or_operator_actions(client, viewer):
    client.force_login(viewer)
    assert client.get("/").status_code == 200
    assert client.get("/admin/").status_code == 302  # Django admin: staff only
    guarded = [(route, p) for route, p in _patterns() if getattr(p.callback, "required_role", None) in ("operator", "admin")]
    for route, p in guarded:
        url = _concrete(route)
        for method in (client.get, client.post):
            assert method(url).status_code in (403, 404, 405), url


@pytest.mark.django_db(transaction=True)
async def test_anonymous_websocket_is_refused():
    for path in ("/ws/overview/", "/ws/markets/1/"):
        communicator = WebsocketCommunicator(application, path, headers=[(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")])
        connected, code = await communicator.connect()
        assert not connected and code == 4401
        await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_websocket_from_a_foreign_origin_is_refused():
    communicator = WebsocketCommunicator(application, "/ws/overview/", headers=[(b"origin", b"http://evil.example"), (b"host", b"127.0.0.1")])
    connected, _ = await communicator.connect()
    assert not connected
    await communicator.disconnect()
