"""Reports: order behaviour in its worst 10-minute cycle, fees against the VIP ladder, stored
liquidity scores reused only while current, and reports left running by a dead worker."""
import json
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from compliance import behaviour, judging
from compliance.models import ExchangeIndicator, Market, OwnFill, OwnOrder, Venue
from compliance.services import change_obligation
from reports import services
from reports.models import Report
from reports.periods import day_period, range_period
from reports.storage import file_path

from .conftest import DAY, DAY_START, UTC, sample_row, seconds, write_samples

pytestmark = pytest.mark.django_db
FAR_FUTURE = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def media(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"


def report_json(**kwargs) -> dict:
    report = services.request_report(enqueue=False, now=FAR_FUTURE, **kwargs)
    report = services.generate_report(report.pk)
    assert report.status == "done", report.error
    return json.loads(file_path(report.directory, "report.json").read_bytes())["markets"][0]


def at(h, m=0, s=0):
    return DAY_START + timedelta(hours=h, minutes=m, seconds=s)


def order(market, order_id, placed, *, status, closed=None, tif="GTC", executed="0"):
    return OwnOrder(market=market, order_id=order_id, side="BUY", order_type="LIMIT", time_in_force=tif,
                    price=Decimal("100"), orig_qty=Decimal("1"), executed_qty=Decimal(executed), status=status,
                    placed_at=placed, closed_at=closed, updated_at=closed or placed)


def test_indicators_are_judged_in_their_worst_ten_minute_cycle_beside_the_exchange(market):
    # A burst of 20 GTC orders cancelled after 1 s at 10:05, then 200 orders filled from 10:20:
    # over the hour the invalid-cancellation ratio is 20/220, but the cycle holding the burst is 1.
    burst = [order(market, i, at(10, 5, i), status="CANCELED", closed=at(10, 5, i + 1)) for i in range(20)]
    filled = [order(market, 100 + i, at(10, 20) + timedelta(seconds=12 * i), status="FILLED",
                    closed=at(10, 20) + timedelta(seconds=12 * i + 30), executed="1") for i in range(200)]
    OwnOrder.objects.bulk_create(burst + filled)
    ExchangeIndicator.objects.bulk_create([
        ExchangeIndicator(venue=market.venue, market=market, indicator="ICR", value=0.3, trigger_value=0.99, observed_at=at(10, 10)),
        ExchangeIndicator(venue=market.venue, market=market, indicator="ICR", value=0.995, trigger_value=0.99, is_locked=True,
                          planned_recover_time=at(11, 30), observed_at=at(10, 30)),
        ExchangeIndicator(venue=market.venue, market=market, indicator="ICR", value=0.1, trigger_value=0.99, observed_at=at(10, 50)),
    ])
    doc = report_json(scope="market", market_id=market.id, period=range_period(at(10), at(11)))
    block = doc["behaviour"]
    assert block["local"]["indicators_over_period"]["ICR"] == {"value": pytest.approx(20 / 220), "orders": 220}
    worst = block["worst_cycle"]["ICR"]
    assert (worst["value"], worst["orders"], worst["cycle_end"]) == (1.0, 20, "2024-08-08T10:06:00Z")
    # The engine's own function over that cycle gives the same value.
    records = [behaviour.OrderRecord(order_id=o.order_id, side=o.side, order_type=o.order_type, time_in_force=o.time_in_force,
                                     price=o.price, orig_qty=o.orig_qty, executed_qty=o.executed_qty, status=o.status,
                                     placed_ms=int(o.placed_at.timestamp() * 1000), closed_ms=int(o.closed_at.timestamp() * 1000))
               for o in burst + filled]
    cycle_end_ms = int(at(10, 6).timestamp() * 1000)
    assert behaviour.quantitative_indicators(records, cycle_end_ms)[behaviour.Indicator.ICR].value == worst["value"]
    # 20 orders are far below the rule's recording threshold (5,000): shown, not judged.
    assert worst["status"] == "not_judged" and worst["min_orders"] == 5000 and worst["trigger_value"] == 0.99
    assert block["worst_cycle"]["UFR"]["value"] == 1.0  # the burst's cycle filled nothing
    assert block["worst_cycle"]["cancel_ratio_pct"]["value"] == 100.0
    (icr,) = block["exchange_reported"]
    assert (icr["value"], icr["highest_value"], icr["highest_observed_at"]) == (0.1, 0.995, "2024-08-08T10:30:00Z")
    assert [(lock["indicator"], lock["observed_at"]) for lock in block["locks"]] == [("ICR", "2024-08-08T10:30:00Z")]


def test_fees_show_the_vip_tier_of_the_30_day_volume_and_the_ladder_against_the_program(db):
    venue = Venue.objects.create(name="OKX swap", exchange="okx", market_type="usdm", tier=1,
                                 rest_base_url="https://www.okx.com", ws_base_url="wss://ws.okx.com:8443")
    market = Market.objects.create(venue=venue, symbol="BTC-USDT-SWAP", base_asset="BTC", quote_asset="USDT",
                                   tick_size=Decimal("0.1"))
    change_obligation(market=market, terms={}, changed_by=None, reason="listing", effective_from=datetime(2024, 1, 1, tzinfo=UTC))

    def fill(trade_id, when, maker):
        notional = Decimal("1200000")
        rate = Decimal("0.016") if maker else Decimal("0.045")
        return OwnFill(market=market, trade_id=trade_id, order_id=trade_id, side="BUY", price=Decimal("60000"), qty=notional / 60000,
                       quote_qty=notional, commission=notional * rate / 100, commission_asset="USDT", is_maker=maker, traded_at=when)

    # $6M over the 30 days to the period's end, 80 % maker: OKX VIP 1 ($5M), maker 0.016 %.
    OwnFill.objects.bulk_create([fill(1, at(-24 * 20), True), fill(2, at(-24 * 10), True), fill(3, at(-24 * 2), True),
                                 fill(4, at(9), True), fill(5, at(12), False),
                                 fill(6, at(-24 * 40), True)])  # older than 30 days: not counted
    fees = report_json(scope="market", market_id=market.id, period=day_period(DAY))["fees"]
    assert fees["period"]["maker_volume_usd"] == 1_200_000 and fees["period"]["taker_volume_usd"] == 1_200_000
    assert fees["period"]["fees_paid_usd"] == pytest.approx(192 + 540)
    vip = fees["vip"]
    assert (vip["tier"], vip["volume_30d_usd"], vip["maker_rate_pct"], vip["next_tier"]) == ("VIP 1", 6_000_000, 0.016, "VIP 2")
    assert vip["volume_to_next_tier_usd"] == 4_000_000
    # The reference's worked example, on this flow: 4.8 M maker at 0.016 % pays 768; at the
    # −0.003 % program it earns 144; the program is worth 912 a month.
    versus = fees["ladder_vs_program"]
    assert (versus["maker_volume_usd"], versus["ladder_maker_fee_usd"], versus["program_maker_fee_usd"], versus["swing_usd"]) == (
        4_800_000, 768, -144, 912)


def test_stored_closed_day_results_are_reused_while_current_and_recomputed_after_the_data_changes(market):
    write_samples(sample_row(market.id, t, 100.0, 100.1) for t in seconds(DAY_START, DAY_START + timedelta(days=1)))
    computed = report_json(scope="market", market_id=market.id, period=day_period(DAY))
    (day,) = computed["liquidity_scores"]
    assert day["source"] == "computed" and day["score"] == computed["liquidity_score"]["score"]
    (verdict,) = computed["daily_results"]
    assert verdict["source"] == "computed" and verdict["uptime_raw_pct"] == computed["total"]["uptime_raw_pct"]

    stored = judging.score_closed_day(market=market, day=DAY)
    judged = judging.judge_day(market=market, day=DAY)
    doc = report_json(scope="market", market_id=market.id, period=day_period(DAY))
    reused = doc["liquidity_scores"][0]
    assert reused["source"] == "stored" and reused["score"] == stored.score == day["score"]
    assert reused["components"] == json.loads(json.dumps(day["components"]))
    assert doc["daily_results"][0] == {**verdict, "source": "stored"} and judged.passed is verdict["passed"]

    # Late samples change an hour of the day: the stored score no longer describes the data.
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("UPDATE compliance_sample SET depth_bid_usd = 1000, depth_ask_usd = 1000 "
                    "WHERE market_id = %s AND ts >= %s AND ts < %s", [market.id, at(6), at(7)])
    doc = report_json(scope="market", market_id=market.id, period=day_period(DAY))
    after = doc["liquidity_scores"][0]
    assert after["source"] == "computed" and after["score"] < stored.score
    assert doc["daily_results"][0]["source"] == "computed" and doc["daily_results"][0]["passed"] is False


def test_a_report_left_running_by_a_dead_worker_is_claimed_again(market, client, admin_user):
    write_samples(sample_row(market.id, t, 100.0, 100.1) for t in seconds(at(10), at(11)))
    now = timezone.now()
    dead = services.request_report(scope="market", market_id=market.id, period=range_period(at(10), at(11)), enqueue=False,
                                   now=FAR_FUTURE)
    alive = services.request_report(scope="market", market_id=market.id, period=range_period(at(10), at(11)), enqueue=False,
                                    now=FAR_FUTURE)
    stale_since = now - services.LEASE - timedelta(minutes=1)
    Report.objects.filter(pk=dead.pk).update(status="running", started_at=stale_since, heartbeat_at=stale_since, progress=40)
    Report.objects.filter(pk=alive.pk).update(status="running", started_at=now, heartbeat_at=now, progress=40)

    # A running report with a live lease is not generated a second time…
    assert services.generate_report(alive.pk).status == "running"
    client.force_login(admin_user)
    assert b"last progress" in client.get(f"/reports/{alive.pk}/").content
    # …one whose worker stopped making progress is queued again and then finished.
    assert services.reclaim_stale_reports(now=now, enqueue=False) == [dead.pk]
    assert Report.objects.get(pk=dead.pk).status == "queued"
    assert services.generate_report(dead.pk).status == "done"
    assert services.reclaim_stale_reports(now=now, enqueue=False) == []

    # The run that lost its lease cannot write over the new claim.
    with pytest.raises(services.LostLease):
        services._set_progress(alive.pk, stale_since, 50, "late progress from a worker that was presumed dead")
    assert Report.objects.get(pk=alive.pk).progress == 40


def test_spread_percentiles_agree_whether_read_by_key_or_by_one_scan(market):
    import statistics

    from reports import evidence

    markets = [market] + [Market.objects.create(venue=market.venue, symbol=f"ALT{i}USDT", base_asset=f"ALT{i}", quote_asset="USDT",
                                                tick_size=Decimal("0.01")) for i in range(evidence.BY_KEY_MAX_MARKETS)]
    start, end = at(9), at(9, 3)
    rows, spreads = [], {}
    for k, m in enumerate(markets):
        for j, t in enumerate(seconds(start, end)):
            rows.append(sample_row(m.id, t, 100.0, 100.0 + 0.01 * ((j * (k + 3)) % 37 + 1), valid=j % 11 != 0))
        spreads[m.id] = [r[6] for r in rows if r[0] == m.id and r[2]]
    write_samples(rows)
    pieces = [(m.id, start, end, "ask", False) for m in markets]
    # A whole-period piece in the mid denominator, as a report spanning versions asks for.
    pieces.append((market.id, start, end, "mid", True))
    scanned = evidence.spread_percentiles(pieces, start, end)
    keyed = [evidence.spread_percentiles([piece], start, end)[0] for piece in pieces]
    assert len(pieces) > evidence.BY_KEY_MAX_MARKETS  # the first call took the one-scan form
    for m, (pcts, _, _), (key_pcts, _, _) in zip(markets, scanned, keyed):
        expected = statistics.quantiles(spreads[m.id], n=100, method="inclusive")
        assert pcts == pytest.approx((statistics.median(spreads[m.id]), expected[94], expected[98]), abs=1e-9)
        assert pcts == pytest.approx(key_pcts, abs=1e-12)
    mids = [r[7] for r in rows if r[0] == market.id and r[2]]
    (pcts, avg, mx), (key_pcts, key_avg, key_mx) = scanned[-1], keyed[-1]
    assert (avg, mx) == (key_avg, key_mx) and avg == pytest.approx(statistics.fmean(mids), abs=1e-12) and mx == max(mids)
    assert pcts[0] == pytest.approx(statistics.median(mids), abs=1e-12)


def test_worst_cycle_search_finds_what_judging_every_cycle_with_the_engine_finds():
    import random

    from reports.evidence import worst_cycles

    rng = random.Random(8)
    t0 = int(at(10).timestamp() * 1000)
    orders = []
    for i in range(400):
        placed = t0 + rng.randrange(0, 45 * 60_000)
        status = rng.choice(["FILLED", "CANCELED", "CANCELED", "EXPIRED", "NEW", "PARTIALLY_FILLED", "REJECTED"])
        qty = Decimal(rng.choice(["0.5", "1", "3"]))
        executed = {"FILLED": qty, "PARTIALLY_FILLED": qty / 2}.get(status, Decimal(0))
        closed = None if status in ("NEW", "PARTIALLY_FILLED") else placed + rng.choice([300, 1500, 4000, 60_000])
        orders.append(behaviour.OrderRecord(
            order_id=i, side="BUY", order_type="LIMIT", time_in_force=rng.choice(["GTC", "GTX", "IOC", "FOK", "GTD"]),
            price=Decimal(rng.choice(["10", "100"])), orig_qty=qty, executed_qty=executed, status=status,
            placed_ms=placed, closed_ms=closed))
    start_ms, end_ms = t0, t0 + 45 * 60_000
    found = worst_cycles(orders, start_ms, end_ms, dust_notional_usd=Decimal(50), quote_usd=Decimal(1), reported_triggers={},
                         warning_fraction=0.8, max_cancel_ratio_pct=8.0, early_warning_fraction=0.9)
    # Brute force: every minute end of the period, each cycle judged by the engine's functions.
    brute: dict[str, tuple] = {}
    for e in range(start_ms + 60_000, end_ms + 1, 60_000):
        values = behaviour.quantitative_indicators(orders, e)  # dust $50, quote 1 USD
        window = behaviour.placed_in_window(orders, e)
        candidates = [(str(k), v.value, v.orders) for k, v in values.items()] + [("cancel_ratio_pct", behaviour.cancel_ratio_pct(window), len(window))]
        for name, value, count in candidates:
            if value is not None and (name not in brute or (value, count) > brute[name]):
                brute[name] = (value, count)
    assert set(brute) == set(found)
    for name, (value, count) in brute.items():
        assert (found[name]["value"], found[name]["orders"]) == (pytest.approx(value, abs=1e-12), count), name


@pytest.mark.django_db(transaction=True)
def test_percentiles_on_their_own_connection_while_judging(market):
    # Outside a caller's transaction (as in the worker) the percentile query runs on a second
    # connection, in parallel with the judging; the numbers are the same.
    import statistics

    write_samples(sample_row(market.id, t, 100.0, 100.0 + 0.01 * (i % 23 + 1)) for i, t in enumerate(seconds(at(10), at(10, 5))))
    total = report_json(scope="market", market_id=market.id, period=range_period(at(10), at(10, 5)))["total"]
    spreads = [(0.01 * (i % 23 + 1)) / (100.0 + 0.01 * (i % 23 + 1)) * 100 for i in range(300)]
    assert total["spread"]["p50_pct"] == pytest.approx(statistics.median(spreads), abs=1e-6)  # JSON: 6 decimals
    assert total["spread"]["p99_pct"] == pytest.approx(statistics.quantiles(spreads, n=100, method="inclusive")[98], abs=1e-6)
