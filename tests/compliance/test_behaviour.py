"""Hand-computed cases for compliance.behaviour (DESIGN.md 'Order behaviour')."""
import json
from decimal import Decimal

import pytest

from compliance.behaviour import (
    ACCOUNT_BAN_LIMIT,
    FUTURES_THRESHOLDS_2020,
    SPOT_MIN_ORDERS,
    FillRecord,
    Indicator,
    IndicatorStatus,
    OrderRecord,
    bans_in_window,
    cancel_ratio_pct,
    distribution,
    dust_ratio,
    ioc_fok_expiration_ratio,
    judge_indicator,
    maker_taker_pct,
    order_count_usage,
    order_rate_limits,
    own_best_quote_changes,
    placed_in_window,
    quantitative_indicators,
    quick_cancel_ratio,
    quote_refresh_intervals_ms,
    survival_times_ms,
    trigger_for,
    unfilled_ratio,
)

_ids = iter(range(1, 10**9))


def order(status="NEW", tif="GTC", price="100", qty="1", executed="0", placed=0, closed=None, side="BUY", **extra):
    if closed is None and status in {"FILLED", "CANCELED", "EXPIRED", "EXPIRED_IN_MATCH", "REJECTED"}:
        closed = placed + 10_000
    return OrderRecord(
        order_id=next(_ids),
        side=side,
        order_type=extra.pop("order_type", "LIMIT"),
        time_in_force=tif,
        price=price,
        orig_qty=qty,
        executed_qty=executed,
        status=status,
        placed_ms=placed,
        closed_ms=closed,
        **extra,
    )


def fill(quote_qty, is_maker, commission="0", asset="USDT"):
    return FillRecord(
        trade_id=next(_ids), order_id=1, side="BUY", price="100", qty=Decimal(quote_qty) / 100,
        quote_qty=quote_qty, commission=commission, commission_asset=asset, is_maker=is_maker, traded_ms=0,
    )


def test_order_record_keeps_exchange_numbers_exact_and_rejects_bad_ones():
    record = order(price=0.1, qty="3")
    assert record.price == Decimal("0.1") and record.notional == Decimal("0.3")
    with pytest.raises(ValueError, match="unknown status"):
        order(status="DONE")
    with pytest.raises(ValueError, match="exceeds ordered"):
        order(qty="1", executed="2")
    with pytest.raises(ValueError, match="before placed"):
        order(status="CANCELED", placed=1000, closed=999)
    with pytest.raises(ValueError, match="final but closed_ms is missing"):
        OrderRecord(1, "BUY", "LIMIT", "GTC", Decimal(1), Decimal(1), Decimal(1), "FILLED", 0, None)
    with pytest.raises(ValueError, match="non-negative finite"):
        order(price="NaN")
    with pytest.raises(ValueError, match="side"):
        order(side="buy")
    with pytest.raises(ValueError, match="finite number"):
        fill("100", True, commission="Infinity")


def test_cancel_ratio_pct():
    orders = [order("CANCELED")] * 2 + [order("FILLED", executed="1")] * 23 + [order("REJECTED")] * 5
    assert cancel_ratio_pct(orders) == 8.0  # 2 / 25: the LP guide's limit; rejected orders never placed
    assert cancel_ratio_pct([]) is None
    assert cancel_ratio_pct([order("REJECTED")]) is None


def test_placed_in_window_is_the_past_ten_minutes():
    now = 3_600_000
    inside = [order(placed=now - 599_999), order(placed=now)]
    outside = [order(placed=now - 600_000), order(placed=now + 1), order("REJECTED", placed=now)]
    assert placed_in_window(inside + outside, now) == inside


def test_unfilled_ratio():
    orders = [
        order("FILLED", qty="10", executed="10"),
        order("CANCELED", qty="10", executed="0"),
        order("PARTIALLY_FILLED", qty="20", executed="5"),
        order("REJECTED", qty="1000"),
    ]
    value = unfilled_ratio(orders)
    assert value.value == pytest.approx(1 - 15 / 40) and value.orders == 3
    assert unfilled_ratio([]).value is None


def test_ioc_fok_expiration_ratio():
    orders = [
        order("EXPIRED", tif="IOC"),
        order("EXPIRED_IN_MATCH", tif="IOC"),
        order("FILLED", tif="IOC", executed="1"),
        order("EXPIRED", tif="FOK"),
        order("EXPIRED", tif="GTC"),  # not an IOC/FOK order
    ]
    value = ioc_fok_expiration_ratio(orders)
    assert (value.value, value.orders) == (0.75, 4)


def test_invalid_cancellation_ratio_and_the_older_gtc_rule():
    orders = [
        order("CANCELED", tif="GTC", placed=0, closed=1_000),  # quick under both rules
        order("CANCELED", tif="GTC", placed=0, closed=3_000),  # < 5 s: ICR only
        order("CANCELED", tif="GTX", placed=0, closed=1_000),  # GTX: ICR only
        order("CANCELED", tif="GTD", placed=0, closed=4_999),  # just under 5 s
        order("CANCELED", tif="GTD", placed=0, closed=5_000),  # not under 5 s
        order("FILLED", tif="GTC", executed="1"),
        order("CANCELED", tif="IOC", placed=0, closed=1),  # neither rule counts IOC
    ]
    icr = quick_cancel_ratio(orders)
    assert (icr.indicator, icr.value, icr.orders) == (Indicator.ICR, 4 / 6, 6)
    gcr = quick_cancel_ratio(orders, "GCR")
    assert (gcr.indicator, gcr.value, gcr.orders) == (Indicator.GCR, 1 / 3, 3)
    with pytest.raises(ValueError, match="not a cancellation indicator"):
        quick_cancel_ratio(orders, "UFR")
    with pytest.raises(ValueError):
        quick_cancel_ratio(orders, "XYZ")


def test_dust_ratio():
    orders = [
        order(price="49.99", qty="1"),  # $49.99: dust
        order(price="25", qty="2"),  # $50: not dust
        order("FILLED", price="0", qty="0.2", executed="0.2", order_type="MARKET", cum_quote_qty="20"),  # $20: dust
    ]
    assert dust_ratio(orders).value == pytest.approx(2 / 3)
    # A quote worth $2: $99.98, $100, $40.
    assert dust_ratio(orders, quote_usd=Decimal(2)).value == pytest.approx(1 / 3)
    assert dust_ratio(orders, dust_notional_usd=Decimal(10)).value == 0.0


def test_quantitative_indicators_use_only_the_cycle():
    now = 10 * 60_000 + 5
    orders = [
        order("EXPIRED", tif="IOC", placed=1),  # placed before the cycle
        order("FILLED", tif="IOC", executed="1", placed=now - 1),
        order("CANCELED", tif="GTC", placed=now - 10, closed=now),
    ]
    indicators = quantitative_indicators(orders, now)
    assert set(indicators) == set(Indicator)
    assert indicators[Indicator.IFER].value == 0.0 and indicators[Indicator.IFER].orders == 1
    assert indicators[Indicator.UFR].value == pytest.approx(0.5)
    assert indicators[Indicator.ICR].value == 1.0 and indicators[Indicator.GCR].value == 1.0


def test_recording_threshold_decides_whether_a_symbol_is_judged():
    threshold = FUTURES_THRESHOLDS_2020[Indicator.UFR]
    assert (threshold.trigger_value, threshold.min_orders) == (0.99, 10_000)
    now = 600_000
    unfilled = [order(placed=now - i % 500_000) for i in range(threshold.min_orders)]
    for orders, expected in [(unfilled[:-1], IndicatorStatus.NOT_JUDGED), (unfilled, IndicatorStatus.TRIGGERED)]:
        ufr = quantitative_indicators(orders, now)[Indicator.UFR]
        assert ufr.value == 1.0
        status = judge_indicator(
            ufr.value, trigger_value=threshold.trigger_value, orders=ufr.orders, min_orders=threshold.min_orders
        )
        assert status == expected


def test_judge_indicator_levels():
    judge = dict(trigger_value=0.99, warning_fraction=0.8, orders=5_000, min_orders=5_000)
    assert judge_indicator(0.5, **judge) == IndicatorStatus.OK
    assert judge_indicator(0.792, **judge) == IndicatorStatus.WARNING  # exactly 0.8 × 0.99
    assert judge_indicator(0.7919, **judge) == IndicatorStatus.OK
    # The obligation stores the warning fraction as a Decimal.
    assert judge_indicator(0.8, trigger_value=0.99, warning_fraction=Decimal("0.8")) == IndicatorStatus.WARNING
    assert judge_indicator(0.99, **judge) == IndicatorStatus.TRIGGERED
    assert judge_indicator(None, **judge) == IndicatorStatus.NOT_JUDGED
    # The exchange's own report: threshold already applied, a locked symbol is triggered.
    assert judge_indicator(0.05, trigger_value=0.995) == IndicatorStatus.OK
    assert judge_indicator(0.05, trigger_value=0.995, is_locked=True) == IndicatorStatus.TRIGGERED
    with pytest.raises(ValueError, match="trigger_value"):
        judge_indicator(0.5, trigger_value=0)
    with pytest.raises(ValueError, match="warning_fraction"):
        judge_indicator(0.5, trigger_value=0.99, warning_fraction=1.5)


def test_trigger_for_prefers_the_exchange_and_accepts_both_cancellation_names():
    # The documented apiTradingStatus example reports UFR 0.995 and GCR 0.99.
    reported = {"UFR": 0.995, "GCR": 0.99}
    assert trigger_for("UFR", reported) == 0.995
    assert trigger_for(Indicator.ICR, reported) == 0.99  # reported under the older name
    assert trigger_for("DR", reported) == 0.9  # not reported: the configured 2020 rule
    assert trigger_for("ICR", {"ICR": 0.98}) == 0.98
    with pytest.raises(ValueError):
        trigger_for("TMV", reported)


def test_spot_trigger_conditions_are_the_documented_ones():
    assert SPOT_MIN_ORDERS == {Indicator.GCR: 150, Indicator.IFER: 150, Indicator.UFR: 300}


def test_account_ban_count_in_24_hours():
    now = 2 * 86_400_000
    bans = [now - 86_400_000] + [now - i * 3_600_000 for i in range(10)]  # the first is 24 h old: out
    count = bans_in_window(bans, now)
    assert count == 10
    assert judge_indicator(count, trigger_value=ACCOUNT_BAN_LIMIT) == IndicatorStatus.TRIGGERED
    assert judge_indicator(bans_in_window(bans[:9], now), trigger_value=ACCOUNT_BAN_LIMIT) == IndicatorStatus.WARNING
    with pytest.raises(ValueError, match="epoch milliseconds"):
        bans_in_window([1.5], now)


def _exchange_info_rate_limits(name):
    with open(f"/work/shared/data/multi-exchange-recordings/{name}") as recording:
        line = next(line for line in recording if "/exchangeInfo -> " in line)
    return json.loads(line.split(": ", 1)[1])["rateLimits"]


def test_order_rate_limits_from_real_exchange_info():
    spot = order_rate_limits(_exchange_info_rate_limits("BINANCE.0"))
    assert [(limit.label, limit.limit) for limit in spot] == [("10S", 50), ("1D", 160000)]
    futures = order_rate_limits(_exchange_info_rate_limits("BINANCE_FUTURES.0"))
    assert [(limit.label, limit.limit) for limit in futures] == [("1M", 1200), ("10S", 300)]

    usage = order_count_usage(spot, {"10S": 45})
    assert usage[0].count == 45 and usage[0].used_pct == 90.0
    assert usage[1].count is None and usage[1].used_pct is None
    with pytest.raises(ValueError, match="non-negative int"):
        order_count_usage(spot, {"10S": "45"})
    with pytest.raises(ValueError, match="Malformed ORDERS rate limit"):
        order_rate_limits([{"rateLimitType": "ORDERS", "interval": "WEEK", "intervalNum": 1, "limit": 5}])
    with pytest.raises(ValueError, match="limit must be a positive int"):
        order_rate_limits([{"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 0}])


def test_distribution_and_survival_times():
    orders = [
        order("FILLED", executed="1", placed=0, closed=100),
        order("CANCELED", placed=1000, closed=1300),
        order("CANCELED", placed=0, closed=200),
        order("EXPIRED", tif="IOC", placed=50, closed=450),
        order("NEW", placed=0),  # still resting: no survival time yet
        order("REJECTED", placed=0, closed=0),
    ]
    times = survival_times_ms(orders)
    assert sorted(times) == [100, 200, 300, 400]
    stats = distribution(times)
    assert (stats.count, stats.mean, stats.median, stats.p90, stats.max) == (4, 250.0, 250.0, 400, 400)
    assert distribution([7]).p90 == 7
    assert distribution(range(1, 11)).p90 == 9  # nearest rank: the 9th of 10
    assert distribution([]) is None


def test_best_own_quote_changes_and_refresh_intervals():
    bids = [
        order("CANCELED", price="100", placed=0, closed=300),
        order("FILLED", price="101", executed="1", placed=100, closed=250),
        order("NEW", price="100.5", placed=300),  # cancel-replace of the first within one ms
        order("NEW", price="99", placed=400),  # deeper: the best does not change
        order("NEW", price="102", side="SELL", placed=50),  # the other side
    ]
    changes = own_best_quote_changes(bids, "BUY")
    assert changes == [(0, Decimal("100")), (100, Decimal("101")), (250, Decimal("100")), (300, Decimal("100.5"))]
    assert quote_refresh_intervals_ms(changes) == [100, 150, 50]

    asks = [order("CANCELED", price="102", side="SELL", placed=0, closed=500), order("NEW", price="101", side="SELL", placed=200)]
    assert own_best_quote_changes(asks, "SELL") == [(0, Decimal("102")), (200, Decimal("101"))]
    assert own_best_quote_changes([order("CANCELED", price="102", side="SELL", placed=0, closed=500)], "SELL") == [
        (0, Decimal("102")),
        (500, None),
    ]
    with pytest.raises(ValueError, match="time order"):
        quote_refresh_intervals_ms([(10, Decimal(1)), (5, Decimal(2))])
    with pytest.raises(ValueError, match="side"):
        own_best_quote_changes(bids, "BID")


def test_maker_ratio_and_taker_proportion():
    fills = [fill("8000", True), fill("2000", False)]
    assert maker_taker_pct(fills) == pytest.approx((80.0, 20.0))
    assert maker_taker_pct([]) is None


def _real_futures_orders_and_fills():
    """Fold the real ORDER_TRADE_UPDATE events (data/user-data-samples/portfolio-margin-2024-09-26)
    into records the way a collector would: last state per order, one fill per TRADE event."""
    path = "/work/shared/data/user-data-samples/portfolio-margin-2024-09-26/ORDER_TRADE_UPDATE.log"
    with open(path) as log:
        events = [json.loads(line)["o"] for line in log]
    placed, last, fills = {}, {}, []
    for event in events:
        placed.setdefault(event["i"], event["T"])
        last[event["i"]] = event
        if event["x"] == "TRADE":
            fills.append(
                FillRecord(event["t"], event["i"], event["S"], event["L"], event["l"], Decimal(event["L"]) * Decimal(event["l"]),
                           event["n"], event["N"], event["m"], event["T"])
            )
    orders = [
        OrderRecord(
            order_id, e["S"], e["o"], e["f"], e["p"], e["q"], e["z"], e["X"], placed[order_id],
            e["T"] if e["X"] in {"FILLED", "CANCELED", "EXPIRED"} else None,
            Decimal(e["ap"]) * Decimal(e["z"]),
        )
        for order_id, e in last.items()
    ]
    return events, orders, fills


def test_real_futures_user_data():
    events, orders, fills = _real_futures_orders_and_fills()
    final = {e["i"]: e["X"] for e in events}  # dict keeps each order's last status
    assert len(orders) == 29 and len(fills) == 27
    assert cancel_ratio_pct(orders) == pytest.approx(sum(s == "CANCELED" for s in final.values()) / len(final) * 100)
    maker_quote = sum(Decimal(e["L"]) * Decimal(e["l"]) for e in events if e["x"] == "TRADE" and e["m"])
    all_quote = sum(Decimal(e["L"]) * Decimal(e["l"]) for e in events if e["x"] == "TRADE")
    maker_pct, taker_pct = maker_taker_pct(fills)
    assert maker_pct == pytest.approx(float(maker_quote / all_quote * 100)) and 0 < maker_pct < 100
    ufr = unfilled_ratio(orders)
    ordered = sum(Decimal(e["q"]) for e in {e["i"]: e for e in events}.values())
    filled = sum(Decimal(e["z"]) for e in {e["i"]: e for e in events}.values())
    assert ufr.value == pytest.approx(float(1 - filled / ordered))
    # Every market order has a notional from what it filled, so DR judges them too.
    assert all(order.notional > 0 for order in orders if order.order_type == "MARKET" and order.executed_qty > 0)
