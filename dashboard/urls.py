from django.urls import path

from . import views

app_name = "dashboard"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("markets/<int:market_id>/", views.market_detail, name="market"),
    path("obligations/", views.obligations, name="obligations"),
    path("obligations/<int:market_id>/", views.obligation_detail, name="obligation"),
    path("api/overview/", views.api_overview, name="api_overview"),
    path("api/markets/<int:market_id>/live/", views.api_market_live, name="api_market_live"),
    path("api/markets/<int:market_id>/history/", views.api_market_history, name="api_market_history"),
    path("api/markets/<int:market_id>/state/", views.api_market_state, name="api_market_state"),
    path("api/api-health/export-24h.csv", views.api_health_csv, name="api_health_csv"),
]
