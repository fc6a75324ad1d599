"""One evaluation pass over many markets: signals read for all markets at once (and right per
market), a statement count that does not grow with the markets, only moved alerts written, the
evaluation clock (late and concurrent passes), and the audit trail of a mute that ends."""
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts import kinds, services, signals
from alerts.models import Alert, AlertEvent, AlertRule, Channel, Notification, Route
from collectors.models import ApiResponse
from compliance.models import DailyResult, ExchangeIndicator, Market, OwnOrder, Venue, Violation
from compliance.services import change_obligation

from .conftest import write_samples

pytestmark = pytest.mark.django_db


def add_market(venue: Venue, symbol: str) -> Market:
    market = Market.objects.create(venue=venue, symbol=symbol, base_asset=symbol[:-4], quote_asset="USDT", tick_size=Decimal("0.01"))
    change_obligation(market=market, terms={}, changed_by=None, reason="tier preset for the test",
                      effective_from=timezone.now() - timedelta(days=2))
    services.ensure_default_rules(market=market)
    return market


@pytest.fixture
def venue_b():
    return Venue.objects.create(name="Binance USD-M (test)", exchange="binance", market_type="usdm", tier=1,
                                rest_base_url="http://127.0.0.1:9", ws_base_url="ws://127.0.0.1:9")


@pytest.fixture
def markets(market, venue_b):
    """blown: spread 3 %; calm: 0.2 %; invalid: samples, none valid; silent (other venue): none."""
    services.ensure_default_rules(market=market)
    calm, invalid = add_market(market.venue, "ETHUSDT"), add_market(market.venue, "SOLUSDT")
    silent = add_market(venue_b, "XRPUSDT")
    yield {"blown": market, "calm": calm, "invalid": invalid, "silent": silent}
    with connection.cursor() as cur:
        cur.execute("DELETE FROM compliance_sample WHERE market_id = ANY(%s)", [[calm.id, invalid.id, silent.id]])


def test_signals_of_all_markets_in_one_read_are_each_markets_own(markets, venue_b):
    blown, calm, invalid, silent = markets["blown"], markets["calm"], markets["invalid"], markets["silent"]
    now = timezone.now().replace(microsecond=0)
    write_samples(blown.id, now - timedelta(seconds=30), 30, spread_pct=3.0, depth_usd=40_000)
    write_samples(calm.id, now - timedelta(seconds=30), 30, spread_pct=0.2)
    write_samples(invalid.id, now - timedelta(seconds=30), 30, spread_pct=0.2, valid=False)
    for n in range(10):  # blown: 5 of 10 cancelled; the others placed nothing
        OwnOrder.objects.create(market=blown, order_id=n, side="BUY", order_type="LIMIT", price=1, orig_qty=1,
                                status="CANCELED" if n % 2 else "FILLED", placed_at=now - timedelta(hours=1), updated_at=now)
    venue = blown.venue
    ExchangeIndicator.objects.create(venue=venue, indicator="UFR", value=0.5, trigger_value=1.0, observed_at=now - timedelta(minutes=1))
    ExchangeIndicator.objects.create(venue=venue, market=blown, indicator="GCR", value=0.1, trigger_value=1.0,
                                     observed_at=now - timedelta(minutes=5))
    ExchangeIndicator.objects.create(venue=venue, market=blown, indicator="GCR", value=0.9, trigger_value=1.0,
                                     observed_at=now - timedelta(minutes=1))  # the latest GCR row is the one that counts
    for status in (429, 429, 418, 200):
        ApiResponse.objects.create(venue=venue, at=now - timedelta(minutes=1), method="GET", path="/api/v3/depth",
                                   http_status=status, latency_ms=5.0)
    version = blown.obligation_versions.first()
    for days_ago in (3, 10):
        day = (now - timedelta(days=days_ago)).date()
        Violation.objects.create(market=blown, day=day, kind="spread_max", first_minute=now, last_minute=now, minutes=1,
                                 worst_value=1.5, limit_value=0.8, obligation_version=version)
    DailyResult.objects.create(
        market=blown, day=now.date(), is_closed=False, evaluation_methods=["minute"], obligation_versions=[], minutes_elapsed=600,
        compliant_minutes=580, non_compliant_minutes=20, unknown_minutes=0, excused_minutes=0, exempt_minutes=0,
        uptime_raw_pct=96.7, uptime_adjusted_pct=96.7, uptime_required_pct=98.0, passed=None, breach_budget_minutes=8,
        unrecoverable=False, details={"lost_minutes": 20, "budget_allowed_minutes": 28.8}, coverage_pct=100.0,
    )

    markets_list = list(Market.objects.filter(pk__in=[m.id for m in markets.values()]).select_related("venue"))
    observed = signals.signals_of_markets(markets=markets_list, now=now)

    b, c, i, s = (observed[m.id] for m in (blown, calm, invalid, silent))
    assert b.fresh and b.spread_ask_pct == pytest.approx(3.0) and b.depth_bid_usd + b.depth_ask_usd == pytest.approx(40_000)
    assert c.fresh and c.spread_ask_pct == pytest.approx(0.2) and c.latest_sample_age_s == pytest.approx(1.0)
    assert not i.fresh and i.latest_sample_age_s == pytest.approx(1.0) and i.latest_valid_age_s is None and i.spread_ask_pct is None
    assert not s.fresh and s.latest_sample_age_s is None
    assert b.cancel_ratio_pct == pytest.approx(50.0) and c.cancel_ratio_pct is None
    assert b.indicator_ratio == pytest.approx(0.9) and b.indicator_name.startswith("GCR")
    assert c.indicator_ratio == pytest.approx(0.5) and c.indicator_name.startswith("UFR")  # the account's row only
    assert s.indicator_ratio is None and s.locked is None
    assert (b.rate_limit_hits, c.rate_limit_hits, s.rate_limit_hits) == (3, 3, 0)
    assert (b.escalation_step, c.escalation_step) == (2, 0)
    assert (b.uptime_lost_minutes, b.uptime_budget_minutes, c.uptime_lost_minutes) == (20, 8, None)


def test_a_pass_costs_the_same_statements_at_any_number_of_markets_and_judges_each(market, venue_b):
    services.ensure_default_rules(market=market)
    now = timezone.now().replace(microsecond=0)
    write_samples(market.id, now - timedelta(seconds=120), 200, spread_pct=3.0)
    services.evaluate_all(now=now)
    with CaptureQueriesContext(connection) as one_market:
        services.evaluate_all(now=now + timedelta(seconds=5))

    others = [add_market(venue, f"M{n}USDT") for n, venue in enumerate([market.venue] * 3 + [venue_b] * 3)]
    for m in others:
        write_samples(m.id, now - timedelta(seconds=120), 200, spread_pct=0.2)
    services.evaluate_all(now=now + timedelta(seconds=10))
    with CaptureQueriesContext(connection) as seven_markets:
        services.evaluate_all(now=now + timedelta(seconds=15))

    assert len(seven_markets) == len(one_market)
    assert AlertRule.objects.filter(market_id__in=[m.id for m in others]).count() >= 6 * 10
    assert Alert.objects.filter(rule__market=market, rule__kind="spread_breach").get().status == "pending"
    assert not Alert.objects.filter(rule__market__in=others).exclude(status="ok").exists()
    with connection.cursor() as cur:
        cur.execute("DELETE FROM compliance_sample WHERE market_id = ANY(%s)", [[m.id for m in others]])


def writes(queries) -> list[str]:
    """The pass's writes other than moving the clock (an executemany is logged as 'N times: SQL')."""
    statements = [q["sql"].split(" times: ", 1)[-1] for q in queries]
    return [sql for sql in statements if sql.startswith(("UPDATE", "INSERT")) and "alerts_evaluationclock" not in sql]


def test_a_quiet_pass_writes_nothing_and_a_watched_alert_only_its_value(market):
    services.ensure_default_rules(market=market)
    rule = AlertRule.objects.get(market=market, kind="spread_breach")
    now = timezone.now().replace(microsecond=0)
    write_samples(market.id, now - timedelta(seconds=60), 40, spread_pct=0.2)
    write_samples(market.id, now - timedelta(seconds=20), 21, spread_pct=3.0)
    services.evaluate_all(now=now - timedelta(seconds=30))
    quiet_alert = Alert.objects.get(rule__market=market, rule__kind="depth_breach")

    with CaptureQueriesContext(connection) as quiet:
        services.evaluate_all(now=now - timedelta(seconds=25))
    assert writes(quiet) == []
    assert Alert.objects.get(pk=quiet_alert.pk).evaluated_at == quiet_alert.evaluated_at

    services.evaluate_all(now=now - timedelta(seconds=10))  # the spread blew out: pending
    write_samples(market.id, now - timedelta(seconds=5), 6, spread_pct=3.5)
    with CaptureQueriesContext(connection) as watched:
        services.evaluate_all(now=now)
    [update] = writes(watched)  # the value of the three alerts it judges (breach, warning, 72 h clock), nothing else
    assert update.startswith("UPDATE alerts_alert SET")
    assert [q["sql"].split(" times: ")[0] for q in watched if "UPDATE alerts_alert" in q["sql"]] == ["3"]
    alert = Alert.objects.get(rule=rule)
    assert alert.status == "pending" and alert.value == pytest.approx(3.5) and alert.evaluated_at == now
    assert Alert.objects.get(pk=quiet_alert.pk).evaluated_at == quiet_alert.evaluated_at


def test_a_late_or_repeated_pass_records_nothing(market):
    services.ensure_default_rules(market=market)
    rule = AlertRule.objects.get(market=market, kind="liquidity_alert_clock")
    now = timezone.now()
    slack = services.save_channel(channel=Channel(name="s", kind="webhook", config={"url": "http://127.0.0.1:9/", "secret": "x" * 32}))
    Route.objects.create(channel=slack, rule_kind="liquidity_alert_clock", min_severity="info")
    firing = [services.Judged(rule, kinds.Verdict(True, 2.5), 2.0)]
    assert services.record_verdicts(judged=firing, now=now) == 1
    assert services.record_verdicts(judged=firing, now=now) == 0  # the same instant twice (beat fired twice)
    assert services.record_verdicts(judged=[services.Judged(rule, kinds.Verdict(False, 0.5), 2.0)], now=now - timedelta(seconds=90)) == 0
    assert Alert.objects.get(rule=rule).status == "firing"
    assert list(AlertEvent.objects.order_by("id").values_list("kind", flat=True)) == ["pending", "firing", "notice"]
    assert Notification.objects.count() == 1


def test_a_mute_that_ends_is_audited_and_the_withheld_resolution_goes_out(market, desk_user):
    services.ensure_default_rules(market=market)
    rule = AlertRule.objects.get(market=market, kind="liquidity_alert_clock")
    hook = services.save_channel(channel=Channel(name="h", kind="webhook", config={"url": "http://127.0.0.1:9/", "secret": "x" * 32}))
    Route.objects.create(channel=hook, market=market, min_severity="warning")
    t0 = timezone.now()

    def judge(breached, seconds):
        return services.record_verdicts(judged=[services.Judged(rule, kinds.Verdict(breached, 2.5 if breached else 0.4), 2.0)],
                                        now=t0 + timedelta(seconds=seconds))

    assert judge(True, 0) == 1
    services.mute(alert=Alert.objects.get(rule=rule), actor=desk_user, minutes=2)
    assert judge(False, 10) == 0 and judge(False, 75) == 0  # resolved under the mute: withheld
    assert Alert.objects.get(rule=rule).status == "resolved"
    assert judge(False, 130) == 1  # the mute ended at about +120 s: audited, and the resolution is announced
    alert = Alert.objects.get(rule=rule)
    assert alert.muted_until is None
    trail = list(alert.events.order_by("id").values_list("kind", "notice", "note"))
    assert [k for k, _, _ in trail] == ["pending", "firing", "notice", "muted", "resolved", "unmuted", "notice"]
    assert trail[-2][2] == "the mute window ended" and trail[-1][1] == "resolved"
    assert Notification.objects.filter(event__alert=alert).count() == 2


def test_alert_and_event_read_well(market):
    services.ensure_default_rules(market=market)
    rule = AlertRule.objects.get(market=market, kind="liquidity_alert_clock")
    at = timezone.now().replace(year=2026, month=3, day=1, hour=12, minute=0, second=0, microsecond=0)
    services.record_verdicts(judged=[services.Judged(rule, kinds.Verdict(True, 2.5), 2.0)], now=at)
    alert = Alert.objects.get(rule=rule)
    assert str(alert) == "Binance spot (test):BTCUSDT · Liquidity-alert trigger (72 h clock): firing, episode 1"
    notice = alert.events.get(kind="notice")
    assert str(notice) == "2026-03-01 12:00:00 UTC · Notice sent (firing) · Binance spot (test):BTCUSDT · Liquidity-alert trigger (72 h clock)"


@pytest.mark.django_db(transaction=True)
def test_a_pass_waits_for_a_running_one_and_then_does_nothing_if_it_is_older(market):
    services.ensure_default_rules(market=market)
    now = timezone.now().replace(microsecond=0)
    write_samples(market.id, now - timedelta(seconds=60), 60, spread_pct=3.0)
    holding, release, outcome = threading.Event(), threading.Event(), {}

    def running_pass():  # holds the clock, as a pass in progress does
        with transaction.atomic():
            services._advance_clock(now)
            holding.set()
            release.wait(10)
        connection.close()

    def late_pass():
        outcome["recorded"] = services.evaluate_all(now=now - timedelta(seconds=5))
        outcome["events"] = AlertEvent.objects.count()
        connection.close()

    first = threading.Thread(target=running_pass)
    first.start()
    assert holding.wait(10)
    second = threading.Thread(target=late_pass)
    second.start()
    second.join(1.0)
    assert second.is_alive()  # blocked on the clock row, not interleaving with the running pass
    release.set()
    first.join(10)
    second.join(10)
    assert outcome == {"recorded": 0, "events": 0}
    services.evaluate_all(now=now + timedelta(seconds=1))  # a newer pass proceeds
    assert Alert.objects.get(rule__market=market, rule__kind="liquidity_alert_clock").status == "firing"
