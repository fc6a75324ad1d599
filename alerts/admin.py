from django.contrib import admin

from . import services
from .models import Alert, AlertEvent, AlertRule, Channel, Notification, Route


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ("market", "kind", "threshold", "severity", "for_seconds", "clear_seconds", "renotify_seconds", "enabled")
    list_filter = ("kind", "severity", "enabled", "market__venue")


class RouteInline(admin.TabularInline):
    model = Route
    extra = 1


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "enabled", "daily_digest", "broken_at", "broken_reason")
    inlines = [RouteInline]

    def save_model(self, request, obj, form, change):
        services.save_channel(channel=obj)


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    """Read-only: the state belongs to the state machine; operators act from the alerts page."""

    list_display = ("rule", "status", "episode", "firing_since", "acknowledged_by", "muted_until")
    list_filter = ("status",)

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(AlertEvent)
class AlertEventAdmin(AlertAdmin):
    list_display = ("at", "alert", "kind", "notice", "episode", "actor", "note")
    list_filter = ("kind",)

    def has_delete_permission(self, request, obj=None):
        return False  # the audit trail


@admin.register(Notification)
class NotificationAdmin(AlertAdmin):
    list_display = ("created_at", "channel", "status", "attempts", "sent_at", "last_error")
    list_filter = ("status", "channel")
