from django.contrib import admin

from . import judging, services
from .models import (
    TERM_FIELDS, DailyResult, EscalationStep, ExchangeIndicator, ExcusedOutage, LiquidityAlertClock, LiquidityScore, Market,
    ObligationVersion, TierPreset, Venue, Violation,
)


@admin.register(Venue)
class VenueAdmin(admin.ModelAdmin):
    list_display = ("name", "exchange", "market_type", "tier", "is_active")
    list_filter = ("exchange", "market_type", "tier", "is_active")


@admin.register(Market)
class MarketAdmin(admin.ModelAdmin):
    list_display = ("symbol", "venue", "base_asset", "quote_asset", "tick_size", "is_active")
    list_filter = ("venue", "is_active")
    search_fields = ("symbol",)


@admin.register(TierPreset)
class TierPresetAdmin(admin.ModelAdmin):
    list_display = ("tier", "name", "spread_target_min_pct", "spread_target_max_pct", "spread_max_pct", "depth_min_usd", "uptime_required_pct")


@admin.register(ObligationVersion)
class ObligationVersionAdmin(admin.ModelAdmin):
    """Versions are append-only: 'add' records a new version through the service; nothing is edited."""

    list_display = ("market", "version", "effective_from", "changed_by", "reason")
    list_filter = ("market__venue",)
    readonly_fields = ("version", "changed_by", "created_at")

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        saved = services.change_obligation(
            market=obj.market, terms={n: getattr(obj, n) for n in TERM_FIELDS}, changed_by=request.user,
            reason=obj.reason, effective_from=obj.effective_from, preset=obj.preset,
        )
        obj.pk, obj.version = saved.pk, saved.version


@admin.register(ExchangeIndicator)
class ExchangeIndicatorAdmin(admin.ModelAdmin):
    list_display = ("observed_at", "venue", "market", "indicator", "value", "trigger_value", "is_locked")
    list_filter = ("venue", "indicator", "is_locked")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Judged results are computed, never typed in: re-judge the period instead."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(DailyResult)
class DailyResultAdmin(ReadOnlyAdmin):
    list_display = ("day", "market", "uptime_raw_pct", "uptime_adjusted_pct", "uptime_required_pct", "passed",
                    "breach_budget_minutes", "coverage_pct", "is_closed")
    list_filter = ("passed", "is_closed", "market__venue")


@admin.register(Violation)
class ViolationAdmin(ReadOnlyAdmin):
    list_display = ("day", "market", "kind", "minutes", "worst_value", "limit_value", "first_minute", "last_minute")
    list_filter = ("kind", "market__venue")


@admin.register(EscalationStep)
class EscalationStepAdmin(ReadOnlyAdmin):
    list_display = ("day", "market", "level", "violation_days_90d")
    list_filter = ("level",)


@admin.register(LiquidityAlertClock)
class LiquidityAlertClockAdmin(ReadOnlyAdmin):
    list_display = ("market", "detected_at", "deadline", "peak_spread_pct", "last_above_at")


@admin.register(LiquidityScore)
class LiquidityScoreAdmin(ReadOnlyAdmin):
    list_display = ("window_end", "market", "window", "score")
    list_filter = ("window", "market__venue")


@admin.register(ExcusedOutage)
class ExcusedOutageAdmin(admin.ModelAdmin):
    """Operators excuse outages through the service (audited); a saved excuse is revoked, never edited."""

    list_display = ("market", "start", "end", "created_by", "created_at", "revoked_at")
    readonly_fields = ("created_by", "created_at", "revoked_at", "revoked_by", "revoke_reason")

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        saved = judging.excuse_outage(market=obj.market, start=obj.start, end=obj.end, reason=obj.reason, excused_by=request.user)
        obj.pk = saved.pk
