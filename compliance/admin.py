from django.contrib import admin

from . import services
from .models import TERM_FIELDS, ExchangeIndicator, Market, ObligationVersion, TierPreset, Venue


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
