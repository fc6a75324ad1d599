"""The order-behaviour selector: the desk's 10-minute cycle beside the exchange's report."""
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from compliance.models import ExchangeIndicator, OwnOrder
from compliance.selectors import order_behaviour
from tests.compliance.engine_support import make_market

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
pytestmark = pytest.mark.django_db


def order(market, n, *, status, tif="GTC", placed=NOW - timedelta(minutes=5), life=timedelta(seconds=30), qty="1",
          executed="0"):
    return OwnOrder.objects.create(
        market=market, order_id=n, side="BUY", order_type="LIMIT", time_in_force=tif, price=Decimal("100"),
        orig_qty=Decimal(qty), executed_qty=Decimal(executed), status=status, placed_at=placed,
        closed_at=None if status == "NEW" else placed + life, updated_at=placed + life,
    )


def test_cancel_ratio_and_indicators_against_limits_and_the_exchange(admin_user):
    market = make_market(at=NOW - timedelta(days=1), user=admin_user)  # cancel ratio limit 8 %
    for n in range(20):
        order(market, n, status="FILLED" if n < 18 else "CANCELED", executed="1" if n < 18 else "0",
              life=timedelta(seconds=1 if n == 19 else 30))
    order(market, 99, status="CANCELED", placed=NOW - timedelta(minutes=11))  # before the cycle
    ExchangeIndicator.objects.create(venue=market.venue, market=market, indicator="UFR", value=0.5, trigger_value=0.995,
                                     observed_at=NOW - timedelta(minutes=1))
    ExchangeIndicator.objects.create(venue=market.venue, market=market, indicator="UFR", value=0.9, trigger_value=0.995,
                                     observed_at=NOW - timedelta(minutes=2))
    b = order_behaviour(market_id=market.pk, now=NOW)
    assert b["orders_placed"] == 20
    assert b["cancel_ratio_pct"] == {"value": 10.0, "limit": 8.0, "status": "breach"}
    ufr = b["indicators"]["UFR"]
    assert ufr["value"] == pytest.approx(0.1) and ufr["trigger_value"] == 0.995  # the exchange's trigger
    assert ufr["status"] == "not_judged"  # 20 orders: far below the recording threshold
    assert ufr["exchange"]["value"] == 0.5 and ufr["exchange"]["status"] == "ok"  # the latest report
    assert b["indicators"]["ICR"]["value"] == pytest.approx(1 / 20)  # one cancel within 5 s
    assert b["indicators"]["DR"]["value"] == 0.0  # $100 orders: not dust


def test_cancel_ratio_warns_at_the_early_warning_fraction(admin_user):
    market = make_market(at=NOW - timedelta(days=1), user=admin_user)
    for n in range(100):
        order(market, n, status="CANCELED" if n < 8 else "FILLED", executed="0" if n < 8 else "1")
    b = order_behaviour(market_id=market.pk, now=NOW)
    assert b["cancel_ratio_pct"]["value"] == 8.0 and b["cancel_ratio_pct"]["status"] == "warning"
