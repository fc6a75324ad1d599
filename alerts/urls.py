from django.urls import path

from . import views

app_name = "alerts"
urlpatterns = [
    path("", views.alert_list, name="list"),
    path("<int:alert_id>/", views.alert_detail, name="detail"),
    path("<int:alert_id>/acknowledge/", views.acknowledge, name="acknowledge"),
    path("<int:alert_id>/mute/", views.mute, name="mute"),
    path("<int:alert_id>/unmute/", views.unmute, name="unmute"),
    path("rules/", views.rule_list, name="rules"),
    path("rules/<int:rule_id>/", views.rule_edit, name="rule_edit"),
    path("channels/", views.channel_list, name="channels"),
    path("channels/new/<str:kind>/", views.channel_edit, name="channel_new"),
    path("channels/<int:channel_id>/", views.channel_edit, name="channel_edit"),
    path("channels/<int:channel_id>/test/", views.channel_test, name="channel_test"),
    path("channels/<int:channel_id>/routes/", views.route_add, name="route_add"),
    path("routes/<int:route_id>/delete/", views.route_delete, name="route_delete"),
]
