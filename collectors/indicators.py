"""The exchange's own view of the desk's order behaviour: apiTradingStatus, polled on a schedule.

- USDⓈ-M GET /fapi/v1/apiTradingStatus (reference/binance-api/derivatives_usds_margined_futures_
  account_rest_api_Futures_Trading_Quantitative_Rules_Indicators.md): per symbol
  {isLocked, plannedRecoverTime, indicator, value, triggerValue}; weight 10 without `symbol`,
  so one call per account per poll;
- spot GET /sapi/v1/account/apiTradingStatus: an account-level lock and per symbol {i, c, v, t}.
A poll is skipped while the venue's last recorded X-MBX-USED-WEIGHT-1M is above 80 % of its
limit, so the poller never competes with the collectors' snapshots.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from asgiref.sync import sync_to_async

from collectors.api_health import recorder_for
from collectors.models import ApiResponse, ExchangeCredential
from collectors.rest import BinanceRest, ExchangeError, RateLimited, Unreachable
from collectors.runner import TIME_PATH, WEIGHT_LIMIT, WEIGHT_SHARE
from compliance.models import ExchangeIndicator, Market, MarketType

log = logging.getLogger(__name__)

STATUS_PATH = {MarketType.USDM: "/fapi/v1/apiTradingStatus", MarketType.SPOT: "/sapi/v1/account/apiTradingStatus"}


class UnusableStatus(ValueError):
    pass


@dataclass(frozen=True)
class IndicatorReading:
    symbol: str | None  # None: account level (TMV)
    indicator: str
    value: float
    trigger_value: float
    is_locked: bool
    planned_recover_ms: int


def parse_futures_status(body: dict) -> list[IndicatorReading]:
    try:
        readings = []
        for symbol, rows in body["indicators"].items():
            for r in rows:
                readings.append(IndicatorReading(
                    None if symbol == "ACCOUNT" else symbol, str(r["indicator"]), float(r["value"]),
                    float(r["triggerValue"]), bool(r.get("isLocked", False)), int(r.get("plannedRecoverTime") or 0),
                ))
        return readings
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UnusableStatus(f"futures apiTradingStatus unusable ({exc!r}): {str(body)[:200]}") from None


def parse_spot_status(body: dict) -> list[IndicatorReading]:
    try:
        data = body["data"]
        locked, recover = bool(data.get("isLocked", False)), int(data.get("plannedRecoverTime") or 0)
        return [
            IndicatorReading(symbol, str(r["i"]), float(r["v"]), float(r["t"]), locked, recover)
            for symbol, rows in data["indicators"].items() for r in rows
        ]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UnusableStatus(f"spot apiTradingStatus unusable ({exc!r}): {str(body)[:200]}") from None


def store_readings(*, venue_id: int, readings: list[IndicatorReading], observed_at: datetime) -> int:
    market_ids = dict(Market.objects.filter(venue_id=venue_id).values_list("symbol", "pk"))
    rows = [
        ExchangeIndicator(
            venue_id=venue_id, market_id=market_ids.get(r.symbol), indicator=r.indicator[:8], value=r.value,
            trigger_value=r.trigger_value, is_locked=r.is_locked,
            planned_recover_time=datetime.fromtimestamp(r.planned_recover_ms / 1000, tz=timezone.utc) if r.planned_recover_ms else None,
            observed_at=observed_at,
        )
        for r in readings
        if r.symbol is None or r.symbol in market_ids  # symbols the monitor does not follow are not stored
    ]
    ExchangeIndicator.objects.bulk_create(rows)
    return len(rows)


def weight_headroom(venue) -> bool:
    """False while the last minute's recorded weight is above our share of the venue's limit."""
    since = datetime.now(timezone.utc) - timedelta(minutes=1)
    last = ApiResponse.objects.filter(venue=venue, at__gte=since, used_weight_1m__isnull=False).order_by("-at").first()
    return last is None or last.used_weight_1m < WEIGHT_LIMIT.get(venue.market_type, 1200) * WEIGHT_SHARE


async def poll_credential(credential: ExchangeCredential) -> int:
    venue = credential.venue
    if not await sync_to_async(weight_headroom)(venue):
        log.info("indicators %s: request weight near the limit; poll skipped", venue.name)
        return 0
    secret = await sync_to_async(credential.secret)()
    async with BinanceRest(venue.rest_base_url, time_path=TIME_PATH[venue.market_type], api_key=credential.api_key,
                           secret=secret, recorder=recorder_for(venue.pk)) as rest:
        await rest.sync_clock()
        body = await rest.request("GET", STATUS_PATH[venue.market_type], signed=True)
    parse = parse_futures_status if venue.market_type == MarketType.USDM else parse_spot_status
    return await sync_to_async(store_readings)(venue_id=venue.pk, readings=parse(body), observed_at=datetime.now(timezone.utc))


async def poll_all() -> int:
    credentials = await sync_to_async(list)(
        ExchangeCredential.objects.filter(is_active=True, venue__is_active=True, venue__market_type__in=list(STATUS_PATH))
        .select_related("venue")
    )
    stored = 0
    for credential in credentials:
        try:
            stored += await poll_credential(credential)
        except (ExchangeError, RateLimited, Unreachable, UnusableStatus) as exc:
            log.warning("indicators %s: poll failed: %s", credential.venue.name, exc)
    return stored
