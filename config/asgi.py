"""ASGI entry point: HTTP through Django, WebSockets through Channels (login + origin checked)."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from alerts.routing import websocket_urlpatterns as alert_sockets  # noqa: E402
from dashboard.routing import websocket_urlpatterns as dashboard_sockets  # noqa: E402

websocket_urlpatterns = dashboard_sockets + alert_sockets

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
