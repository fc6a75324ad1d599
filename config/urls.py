from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from dashboard import views as dashboard_views

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", dashboard_views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("alerts/", include("alerts.urls")),
    path("reports/", include("reports.urls")),
    path("", include("dashboard.urls")),
]
