"""The daily digest (once per day and channel, over SMTP) and live toasts over the real Redis channel layer."""
from datetime import date, timedelta

import pytest
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from alerts import delivery, kinds, services
from alerts.models import AlertRule, Channel, Notification
from alerts.routing import websocket_urlpatterns
from compliance.models import DailyResult


@pytest.mark.django_db
def test_daily_digest_is_recorded_once_per_day_and_arrives_by_email(market, smtp_server):
    day = date.today() - timedelta(days=1)
    DailyResult.objects.create(
        market=market, day=day, is_closed=True, evaluation_methods=["minute"], obligation_versions=[], minutes_elapsed=1440,
        compliant_minutes=1411, non_compliant_minutes=29, unknown_minutes=0, excused_minutes=0, exempt_minutes=0,
        uptime_raw_pct=97.99, uptime_adjusted_pct=97.99, uptime_required_pct=98.0, passed=False, breach_budget_minutes=-1,
        unrecoverable=True, coverage_pct=100.0,
    )
    services.save_channel(channel=Channel(name="digest", kind="email", daily_digest=True, config={"recipients": ["desk@example.com"]}))
    services.save_channel(channel=Channel(name="alerts only", kind="email", config={"recipients": ["ops@example.com"]}))
    assert services.record_daily_digest(day=day) == 1
    assert services.record_daily_digest(day=day) == 0  # beat fired twice: still one
    assert delivery.deliver_due() == {"sent": 1}
    [mail] = smtp_server.messages
    assert mail["to"] == ["desk@example.com"]
    assert "uptime 97.99 % (FAIL; required 98 %)" in mail["data"] and "BTCUSDT" in mail["data"]
    assert Notification.objects.get().digest_day == day


@pytest.mark.django_db(transaction=True)
async def test_firing_alert_reaches_logged_in_browsers_as_a_toast(market, django_user_model):
    from asgiref.sync import sync_to_async
    from channels.routing import URLRouter

    user = await sync_to_async(django_user_model.objects.create_user)("toaster", password="pw-123456-x")
    socket = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/alerts/")
    socket.scope["user"] = user
    connected, _ = await socket.connect()
    assert connected

    def fire():
        services.ensure_default_rules(market=market)
        rule = AlertRule.objects.get(market=market, kind="liquidity_alert_clock")  # fires at once (no duration)
        services.record_verdicts(judged=[services.Judged(rule, kinds.Verdict(True, 2.6), 2.0)], now=timezone.now())

    await sync_to_async(fire)()
    toast = await socket.receive_json_from(timeout=5)
    assert toast["event"] == "firing" and toast["severity"] == "critical" and toast["value"] == 2.6
    assert "Liquidity-alert trigger" in toast["title"]
    await socket.disconnect()


async def test_anonymous_sockets_are_refused():
    from channels.routing import URLRouter
    from django.contrib.auth.models import AnonymousUser

    socket = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/alerts/")
    socket.scope["user"] = AnonymousUser()
    connected, code = await socket.connect()
    assert not connected and code == 4401
