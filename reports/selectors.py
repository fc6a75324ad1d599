"""Reads for reports: which markets a scope covers, stored reports, subscribers."""
from django.db.models import Q

from compliance.models import Market

from .models import Report, Scope, Subscription


def markets_in_scope(*, scope: str, market_id: int | None = None, venue_id: int | None = None) -> list[Market]:
    markets = Market.objects.select_related("venue").order_by("id")
    if scope == Scope.MARKET:
        return list(markets.filter(pk=market_id))
    if scope == Scope.VENUE:
        return list(markets.filter(venue_id=venue_id, is_active=True))
    return list(markets.filter(is_active=True, venue__is_active=True))


def recent_reports(limit: int = 100):
    return Report.objects.select_related("market__venue", "venue", "requested_by")[:limit]


def subscribers_for(report: Report) -> list[Subscription]:
    """Active subscriptions to this report's scope that want its period kind."""
    subs = Subscription.objects.filter(is_active=True, scope=report.scope).select_related("user", "market__venue", "venue")
    if report.scope == Scope.MARKET:
        subs = subs.filter(market_id=report.market_id)
    elif report.scope == Scope.VENUE:
        subs = subs.filter(venue_id=report.venue_id)
    return [s for s in subs if s.wants(report.period_kind) and s.address]


def subscribed_scopes() -> list[tuple[str, int | None, int | None]]:
    """Distinct (scope, market_id, venue_id) that someone subscribes to, in a stable order."""
    rows = Subscription.objects.filter(is_active=True).filter(Q(daily=True) | Q(monthly=True))
    return sorted(set(rows.values_list("scope", "market_id", "venue_id")), key=lambda r: (r[0], r[1] or 0, r[2] or 0))
