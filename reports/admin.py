from django.contrib import admin

from .models import Report, Subscription


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = ("id", "scope", "market", "venue", "period_kind", "period_start", "status", "trigger", "created_at")
    list_filter = ("status", "scope", "period_kind", "trigger")
    readonly_fields = [f.name for f in Report._meta.fields]

    def has_add_permission(self, request):
        return False  # reports are requested from the reports page, which runs the pipeline


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ("user", "email", "scope", "market", "venue", "daily", "monthly", "is_active")
    list_filter = ("scope", "is_active")
