from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/overview/", consumers.OverviewConsumer.as_asgi()),
    path("ws/markets/<int:market_id>/", consumers.MarketConsumer.as_asgi()),
]
