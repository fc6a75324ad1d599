"""A spread blow-out written as 1 s samples → the alert fires after its duration → an email
reaches a local SMTP server and a Slack message a local HTTP server; recovery is announced."""
from datetime import timedelta
from email import message_from_string
from email.header import decode_header, make_header

import pytest
from django.utils import timezone

from alerts import delivery, services
from alerts.models import Alert, AlertRule, Channel, DeliveryStatus, Notification, Route

from .conftest import write_samples

pytestmark = pytest.mark.django_db


def subject(mail) -> str:
    return str(make_header(decode_header(message_from_string(mail["data"])["Subject"])))


def route_spread_breach(market, *channels):
    services.ensure_default_rules(market=market)
    for channel in channels:
        services.save_channel(channel=channel)
        Route.objects.create(channel=channel, market=market, rule_kind="spread_breach", min_severity="warning")
    return AlertRule.objects.get(market=market, kind="spread_breach")


def test_default_rules_follow_the_obligation(market):
    created = {r.kind for r in services.ensure_default_rules(market=market)}
    # Tier 1 with depth and uptime clauses; no per-side depth in the preset.
    assert {"spread_breach", "spread_warning", "depth_breach", "liquidity_alert_clock", "uptime_unrecoverable"} <= created
    assert "depth_side_breach" not in created
    assert services.ensure_default_rules(market=market) == []  # idempotent


def test_spread_blowout_fires_after_its_duration_then_resolves(market, smtp_server, http_receiver):
    email = Channel(name="desk email", kind="email", config={"recipients": ["desk@example.com", "ops@example.com"]})
    slack = Channel(name="desk slack", kind="slack", config={"url": http_receiver.url})
    rule = route_spread_breach(market, email, slack)
    assert (rule.for_seconds, rule.clear_seconds) == (60, 60)

    base = timezone.now().replace(microsecond=0) - timedelta(minutes=6)
    write_samples(market.id, base, 60, spread_pct=0.2)
    write_samples(market.id, base + timedelta(seconds=60), 120, spread_pct=3.0)  # the blow-out
    write_samples(market.id, base + timedelta(seconds=180), 150, spread_pct=0.2)

    def at(seconds):
        services.evaluate_all(now=base + timedelta(seconds=seconds))
        delivery.deliver_due()
        return Alert.objects.get(rule=rule)

    assert at(30).status == "ok"
    assert at(65).status == "pending"
    assert at(100).status == "pending" and not smtp_server.messages and not http_receiver.requests
    alert = at(126)  # 61 s after the first breaching evaluation
    assert alert.status == "firing" and alert.value == pytest.approx(3.0) and alert.limit == pytest.approx(0.8)

    assert len(smtp_server.messages) == 1 and len(http_receiver.delivered) == 1
    mail = smtp_server.messages[0]
    assert sorted(mail["to"]) == ["desk@example.com", "ops@example.com"]
    assert subject(mail) == "[CRITICAL] Spread above the maximum — Binance spot (test):BTCUSDT"
    text = http_receiver.delivered[0][2]["text"]
    assert "CRITICAL" in text and "Binance spot (test):BTCUSDT" in text and "spread %" in text
    assert "3 (limit 0.8)" in text and "Since:" in text and f"/alerts/{alert.pk}/" in text

    assert at(190).status == "firing"  # back in range at 180 s, but not yet for clear_seconds
    assert at(251).status == "resolved"  # in range since the 190 s evaluation, for 61 s
    assert len(smtp_server.messages) == 2 and len(http_receiver.delivered) == 2
    assert "RESOLVED" in http_receiver.delivered[1][2]["text"] and "Back in range since" in http_receiver.delivered[1][2]["text"]
    assert subject(smtp_server.messages[1]).startswith("[RESOLVED] Spread above the maximum")
    assert set(Notification.objects.values_list("status", flat=True)) == {DeliveryStatus.SENT}

    at(300)  # stays resolved, nothing more to say
    assert len(http_receiver.requests) == 2


def test_flapping_metric_sends_at_most_one_notification_per_renotify_interval(market, http_receiver):
    slack = Channel(name="flap slack", kind="slack", config={"url": http_receiver.url})
    rule = route_spread_breach(market, slack)
    services.update_rule(rule=rule, changes={"for_seconds": 10, "clear_seconds": 10, "renotify_seconds": 240}, actor=None)
    AlertRule.objects.filter(market=market).exclude(pk=rule.pk).update(enabled=False)

    base = timezone.now().replace(microsecond=0) - timedelta(minutes=15)
    for cycle in range(0, 12 * 60, 60):  # 40 s blown out, 20 s back in range, for 20 minutes
        write_samples(market.id, base + timedelta(seconds=cycle), 40, spread_pct=2.5)
        write_samples(market.id, base + timedelta(seconds=cycle + 40), 20, spread_pct=0.2)
    for seconds in range(0, 12 * 60, 5):
        now = base + timedelta(seconds=seconds)
        services.evaluate_all(now=now)
        delivery.deliver_due()

    alert = Alert.objects.get(rule=rule)
    assert alert.episode > 4  # it really flapped: several firing episodes
    firing_notices = alert.events.filter(kind="notice").exclude(notice="resolved").order_by("at")
    times = [e.at for e in firing_notices]
    assert len(times) >= 2
    assert all(b - a >= timedelta(seconds=240) for a, b in zip(times, times[1:]))
    sent_texts = [r[2]["text"] for r in http_receiver.delivered]
    assert len([t for t in sent_texts if "RESOLVED" not in t]) == len(times)
    assert len(http_receiver.delivered) <= 2 * (12 * 60 // 240 + 1)  # one firing + its resolution per interval at most
