"""Reads of the domain (the HackSoft split: services write, selectors read)."""
from datetime import datetime

from django.db.models import Prefetch

from .models import Market, ObligationVersion


class NoObligation(LookupError):
    """The market had no obligation in force at that instant."""


def obligation_in_force(*, market_id: int, at: datetime) -> ObligationVersion:
    version = (
        ObligationVersion.objects.filter(market_id=market_id, effective_from__lte=at)
        .order_by("-effective_from", "-version")
        .first()
    )
    if version is None:
        raise NoObligation(f"market {market_id} has no obligation in force at {at.isoformat()}")
    return version


def obligation_periods(*, market_id: int, start: datetime, end: datetime) -> list[tuple[datetime, datetime, ObligationVersion]]:
    """The versions in force over [start, end), each with the sub-interval it governs."""
    versions = list(
        ObligationVersion.objects.filter(market_id=market_id, effective_from__lt=end).order_by("effective_from", "version")
    )
    periods = []
    for i, v in enumerate(versions):
        lo = max(v.effective_from, start)
        hi = min(versions[i + 1].effective_from, end) if i + 1 < len(versions) else end
        if lo < hi:
            periods.append((lo, hi, v))
    return periods


def active_markets():
    return Market.objects.filter(is_active=True, venue__is_active=True).select_related("venue", "conversion_market")


def markets_overview() -> list[dict]:
    """One row per active market with the obligation currently in force (newest version)."""
    latest = ObligationVersion.objects.order_by("market_id", "-effective_from", "-version").distinct("market_id")
    by_market = {v.market_id: v for v in latest}
    return [{"market": m, "obligation": by_market.get(m.id)} for m in active_markets()]
