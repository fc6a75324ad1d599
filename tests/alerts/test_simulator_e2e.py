"""End to end with every part real: the simulator (in-process) blows out XRPUSDT's spread on
binance-usdm → the collector runner streams that book and stores 1 s samples → alert evaluation
and delivery, called each second as the beat calls them → once the rule's duration has passed an
email reaches a local SMTP server and a Slack message a local HTTP server; when the scenario ends
and the spread has been back in range for the clear time, both announce the resolution.

XRPUSDT's demo contract caps the spread at 1.0 % (simulator/catalog.py DEMO_OBLIGATION_OVERRIDES);
its calm spread is ~0.6 % and spread_blowout(factor=3) pushes it to ~1.8 %.
"""
import asyncio
import io
import re
from datetime import timedelta
from email import message_from_string
from email.header import decode_header, make_header

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from alerts import delivery, services
from alerts.models import Alert, AlertRule, Channel, DeliveryStatus, Notification, Route
from collectors.runner import ShardRunner, shard_of
from collectors.sink import TimeSeriesSink
from collectors.stream import Backoff
from compliance.models import Market
from tests.simulator.conftest import sim_factory  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db(transaction=True)

VENUE, SYMBOL = "binance-usdm", "XRPUSDT"
MARKET = f"{VENUE}:{SYMBOL}"
SPREAD_MAX_PCT = 1.0
FOR_SECONDS, CLEAR_SECONDS = 6, 4
BLOWOUT_SECONDS = 16  # comfortably longer than FOR_SECONDS plus the sampling and evaluation lag
VALUE_VS_LIMIT = re.compile(r"spread %:?\*?:? ([\d.,]+) \(limit ([\d.,]+)\)")


@pytest.fixture(autouse=True)
def empty_tables():
    yield
    with connection.cursor() as cur:
        cur.execute("TRUNCATE compliance_sample, compliance_book_snapshot")


@pytest.fixture
async def database_thread():
    """Closes the connection of the thread sync_to_async runs the ORM in (evaluation, delivery and
    the collector's API recorder share it), so the test database can be dropped afterwards."""
    yield
    await sync_to_async(lambda: connection.close())()


def subject(mail) -> str:
    return str(make_header(decode_header(message_from_string(mail["data"])["Subject"])))


def body(mail) -> str:
    return message_from_string(mail["data"]).get_payload(decode=True).decode()


def value_and_limit(text: str) -> tuple[float, float]:
    match = VALUE_VS_LIMIT.search(text)
    assert match, text
    return float(match.group(1).replace(",", "")), float(match.group(2).replace(",", ""))


def seed(sim_base: str, http_receiver_url: str) -> tuple[Market, AlertRule]:
    """The demo's rows for the running simulator, the market's default rules (spread breach made
    quick to fire and clear), and an email and a Slack channel routed for that rule."""
    call_command("seed_demo", sim_url=sim_base, stdout=io.StringIO())
    market = Market.objects.select_related("venue").get(venue__name=VENUE, symbol=SYMBOL)
    services.ensure_default_rules(market=market)
    rule = AlertRule.objects.get(market=market, kind="spread_breach")
    services.update_rule(rule=rule, changes={"for_seconds": FOR_SECONDS, "clear_seconds": CLEAR_SECONDS}, actor=None)
    for channel in (
        Channel(name="desk email", kind="email", config={"recipients": ["desk@example.com"]}),
        Channel(name="desk slack", kind="slack", config={"url": http_receiver_url}),
    ):
        services.save_channel(channel=channel)
        Route.objects.create(channel=channel, market=market, rule_kind="spread_breach", min_severity="critical")
    return market, rule


def samples_since(market_id, since) -> list[tuple]:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT ts, valid, spread_ask_pct FROM compliance_sample WHERE market_id = %s AND ts >= %s ORDER BY ts",
            [market_id, since],
        )
        return cur.fetchall()


def beat(rule_id) -> tuple:
    """One beat: evaluate every rule and deliver what is due (alerts.tasks, without the queue hop)."""
    now = timezone.now()
    services.evaluate_all(now=now)
    delivery.deliver_due()
    alert = Alert.objects.get(rule_id=rule_id)
    return now, alert.status, alert.value


def events(rule_id) -> dict:
    alert = Alert.objects.get(rule_id=rule_id)
    return {kind: list(alert.events.filter(kind=kind).order_by("at")) for kind in ("pending", "firing", "resolved", "notice", "cancelled")}


async def wait_for(predicate, timeout_s, what):
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


async def test_simulated_spread_blowout_alerts_by_email_and_slack_then_resolves(
    sim_factory, smtp_server, http_receiver, database_thread, tmp_path  # noqa: F811
):
    sim = await sim_factory(scenario="calm", seed=3)
    market, rule = await sync_to_async(seed)(sim.base, http_receiver.url)
    shard = await sync_to_async(shard_of)("e2e", market.venue, [market])
    runner = ShardRunner(shard, sink=TimeSeriesSink(name="e2e", spill_dir=tmp_path), channel_layer=get_channel_layer(),
                         backoff_factory=lambda: Backoff(base_s=0.2, cap_s=1.0))
    stop = asyncio.Event()
    collecting = asyncio.create_task(runner.run(stop))
    beats = []  # (now, status, value, emails so far, Slack posts so far)

    async def one_beat():
        beats.append((*await sync_to_async(beat)(rule.id), len(smtp_server.messages), len(http_receiver.requests)))
        return beats[-1]

    try:
        started = timezone.now()

        async def calm_and_valid():
            rows = await sync_to_async(samples_since)(market.id, started)
            return sum(1 for _, valid, _ in rows if valid) >= 2

        await wait_for(calm_and_valid, 20, "valid samples from the collector")
        for _ in range(2):  # calm: judged, in range, nothing sent
            _, status, value = (await one_beat())[:3]
            assert status == "ok" and value is not None and value < SPREAD_MAX_PCT
            await asyncio.sleep(1)

        blowout_at = timezone.now()
        await sim.control("/_sim/scenario", {"scenario": f"spread_blowout(duration={BLOWOUT_SECONDS},factor=3,market={VENUE}/{SYMBOL})"})
        deadline = blowout_at + timedelta(seconds=BLOWOUT_SECONDS + CLEAR_SECONDS + 20)
        while timezone.now() < deadline:
            if (await one_beat())[1] == "resolved":
                break
            await asyncio.sleep(1)
        for _ in range(2):  # resolved stays resolved: nothing more is sent
            await asyncio.sleep(1)
            await one_beat()
    finally:
        stop.set()
        await collecting

    assert beats[-1][1] == "resolved", beats
    history = await sync_to_async(events)(rule.id)
    rows = await sync_to_async(samples_since)(market.id, blowout_at)
    breaching = [(ts, spread) for ts, valid, spread in rows if valid and spread > SPREAD_MAX_PCT]
    assert breaching, "the collector never saw the blow-out"
    first_breach = breaching[0][0]
    back_in_range = next(ts for ts, valid, spread in rows if valid and ts > breaching[-1][0])
    assert breaching[-1][0] - first_breach >= timedelta(seconds=BLOWOUT_SECONDS - 3)  # the scenario's window, as stored

    # Fired only after the rule's duration, counted from the first breaching evaluation, and
    # nothing was sent before it fired; it fired while the blow-out was still on.
    [pending], [firing], [resolved] = history["pending"], history["firing"], history["resolved"]
    assert not history["cancelled"]
    assert pending.at >= first_breach
    assert firing.at - pending.at >= timedelta(seconds=FOR_SECONDS)
    assert firing.at <= breaching[-1][0] + timedelta(seconds=1)
    assert all(emails == 0 and posts == 0 for now, _, _, emails, posts in beats if now < firing.at)
    assert all(status in ("ok", "pending") for now, status, *_ in beats if now < firing.at)

    # Exactly one firing notice on each channel, naming the market, the KPI and the value vs the limit.
    assert [e.notice for e in history["notice"]] == ["firing", "resolved"]
    assert len(smtp_server.messages) == 2 and len(http_receiver.requests) == 2 and len(http_receiver.delivered) == 2
    fired_mail, resolved_mail = smtp_server.messages
    fired_post, resolved_post = (r[2]["text"] for r in http_receiver.delivered)
    observed_spreads = {round(spread, 4) for _, spread in breaching}
    assert fired_mail["to"] == ["desk@example.com"]
    assert subject(fired_mail) == f"[CRITICAL] Spread above the maximum — {MARKET}"
    for text in (body(fired_mail), fired_post):
        assert MARKET in text and "spread %" in text
        value, limit = value_and_limit(text)
        assert limit == SPREAD_MAX_PCT and value > limit
        assert value == pytest.approx(firing.value, rel=1e-3)  # the stored sample the alert judged...
        assert any(abs(value - s) <= 1e-3 * s for s in observed_spreads)  # ...as the collector wrote it
    assert fired_post.startswith(":rotating_light: *[CRITICAL] Spread above the maximum")
    assert f"*Market:* {MARKET}" in fired_post and "*Since:*" in fired_post
    assert http_receiver.delivered[0][2]["blocks"][0]["text"]["text"] == fired_post

    # Resolution: only after the spread was back in range for the clear time, announced on both.
    assert resolved.at >= back_in_range + timedelta(seconds=CLEAR_SECONDS)
    assert resolved.at >= blowout_at + timedelta(seconds=BLOWOUT_SECONDS)
    assert subject(resolved_mail) == f"[RESOLVED] Spread above the maximum — {MARKET}"
    assert "Back in range since" in body(resolved_mail) and MARKET in body(resolved_mail)
    assert resolved_post.startswith(":white_check_mark: *[RESOLVED] Spread above the maximum")
    assert MARKET in resolved_post and "*Back in range since:*" in resolved_post
    assert resolved.value is not None and resolved.value <= SPREAD_MAX_PCT

    statuses = await sync_to_async(list)(Notification.objects.values_list("status", flat=True))
    assert statuses == [DeliveryStatus.SENT] * 4
