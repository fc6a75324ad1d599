"""Delivery as records: retries with backoff, permanent errors, claims, crashes — against real local servers."""
import hashlib
import hmac
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from alerts import delivery, services
from alerts.models import Channel, DeliveryStatus, Notification

pytestmark = pytest.mark.django_db
NO_WAIT = delivery.Policy(lease_seconds=60, retry_base_seconds=0, retry_cap_seconds=0, max_attempts=10)


def slack_channel(url, name="slack"):
    return services.save_channel(channel=Channel(name=name, kind="slack", config={"url": url}))


def test_slack_500_twice_then_200_delivers_exactly_once(http_receiver, desk_user):
    http_receiver.script = [500, 500]
    n = services.send_test(channel=slack_channel(http_receiver.url), actor=desk_user)
    outcomes = [delivery.deliver_due(policy=NO_WAIT) for _ in range(5)]
    assert outcomes[:3] == [{"queued": 1}, {"queued": 1}, {"sent": 1}] and outcomes[3:] == [{}, {}]
    assert [r[0] for r in http_receiver.requests] == [500, 500, 200]
    assert len(http_receiver.delivered) == 1
    n.refresh_from_db()
    assert (n.status, n.attempts, n.last_error) == (DeliveryStatus.SENT, 3, "")


def test_retries_back_off(http_receiver, desk_user):
    http_receiver.script = [503]
    policy = delivery.Policy(lease_seconds=60, retry_base_seconds=30, retry_cap_seconds=600, max_attempts=10)
    n = services.send_test(channel=slack_channel(http_receiver.url), actor=desk_user)
    before = timezone.now()
    assert delivery.deliver_due(policy=policy) == {"queued": 1}
    assert delivery.deliver_due(policy=policy) == {}  # not due yet: no hammering
    n.refresh_from_db()
    assert n.status == DeliveryStatus.QUEUED and "HTTP 503" in n.last_error
    assert timedelta(seconds=29) < n.next_attempt_at - before < timedelta(seconds=40)
    assert [policy.retry_delay(a) for a in (1, 2, 3, 6, 7)] == [30, 60, 120, 600, 600]
    assert policy.retry_delay(1, retry_after_s=90) == 90


def test_slack_410_marks_the_channel_broken_and_stops(http_receiver, desk_user):
    http_receiver.script = [410]
    channel = slack_channel(http_receiver.url)
    first = services.send_test(channel=channel, actor=desk_user)
    assert delivery.deliver_due(policy=NO_WAIT) == {"failed": 1}
    channel.refresh_from_db()
    first.refresh_from_db()
    assert channel.broken_at is not None and "HTTP 410" in channel.broken_reason
    assert first.status == DeliveryStatus.FAILED and first.attempts == 1
    later = services.send_test(channel=channel, actor=desk_user)
    for _ in range(3):
        assert delivery.deliver_due(policy=NO_WAIT) == {}
    assert len(http_receiver.requests) == 1  # no retries, nothing more sent to a broken channel
    later.refresh_from_db()
    assert later.status == DeliveryStatus.QUEUED  # kept, not lost: goes out once the channel is fixed
    services.save_channel(channel=channel)  # an admin fixed it
    assert delivery.deliver_due(policy=NO_WAIT) == {"sent": 1}


def test_unreachable_endpoint_is_transient(desk_user):
    n = services.send_test(channel=slack_channel("http://127.0.0.1:9/hook"), actor=desk_user)
    assert delivery.deliver_due(policy=NO_WAIT) == {"queued": 1}
    n.refresh_from_db()
    assert n.channel.broken_at is None and "ConnectionError" in n.last_error


def test_a_refused_email_address_is_permanent(smtp_server, desk_user):
    async def refuse(server, session, envelope, address, rcpt_options):
        return "550 5.1.1 no such mailbox"

    smtp_server.handle_RCPT = refuse
    channel = services.save_channel(channel=Channel(name="mail", kind="email", config={"recipients": ["nobody@example.com"]}))
    services.send_test(channel=channel, actor=desk_user)
    assert delivery.deliver_due(policy=NO_WAIT) == {"failed": 1}
    channel.refresh_from_db()
    assert channel.broken_at is not None and "refused" in channel.broken_reason


def test_only_one_claim_wins():
    channel = services.save_channel(channel=Channel(name="hook", kind="slack", config={"url": "http://127.0.0.1:9/x"}))
    n = services.send_test(channel=channel, actor=None)
    now = timezone.now()
    assert delivery.claim(n.pk, now=now) is not None
    assert delivery.claim(n.pk, now=now) is None  # a second dispatcher gets nothing
    assert delivery.claim(n.pk, now=now + timedelta(seconds=delivery.DEFAULT_POLICY.lease_seconds + 1)) is not None


def test_webhook_body_is_signed_and_the_delivery_id_is_stable(http_receiver):
    secret = "s3cret-s3cret-s3cret"
    http_receiver.script = [502]
    channel = services.save_channel(channel=Channel(name="hook", kind="webhook", config={"url": http_receiver.url, "secret": secret}))
    n = services.send_test(channel=channel, actor=None)
    delivery.deliver_due(policy=NO_WAIT)
    delivery.deliver_due(policy=NO_WAIT)
    assert len(http_receiver.requests) == 2
    for _, headers, payload, raw in http_receiver.requests:
        expected = hmac.new(secret.encode(), headers["X-LCM-Timestamp"].encode() + b"." + raw, hashlib.sha256).hexdigest()
        assert headers["X-LCM-Signature"] == f"sha256={expected}"
        assert headers["X-LCM-Delivery"] == str(n.pk) == payload["delivery_id"]
        assert payload["notice"] == "test"


@pytest.mark.django_db(transaction=True)
def test_worker_killed_between_claiming_and_sending_still_delivers_exactly_once(http_receiver):
    channel = services.save_channel(channel=Channel(name="slack", kind="slack", config={"url": http_receiver.url}))
    n = services.send_test(channel=channel, actor=None)
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}",
        "ALERTS_CLAIM_LEASE_SECONDS": "2",
    }
    worker = subprocess.Popen([sys.executable, "tests/alerts/claim_and_hang.py", str(n.pk)], env=env,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout.readline().strip() == "claimed"
        n.refresh_from_db()
        assert n.status == DeliveryStatus.SENDING and n.attempts == 1
        assert delivery.deliver_due() == {}  # another dispatcher respects the live claim
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.stdout.close()
    assert http_receiver.requests == []
    time.sleep(2.5)  # the dead worker's lease runs out
    restarted = subprocess.run([sys.executable, "tests/alerts/deliver_once.py"], env=env, capture_output=True, text=True, timeout=60)
    assert restarted.returncode == 0, restarted.stderr
    assert restarted.stdout.strip().splitlines()[-1] == '{"sent": 1}'
    again = subprocess.run([sys.executable, "tests/alerts/deliver_once.py"], env=env, capture_output=True, text=True, timeout=60)
    assert again.stdout.strip().splitlines()[-1] == "{}"
    assert len(http_receiver.requests) == 1 and len(http_receiver.delivered) == 1
    n.refresh_from_db()
    assert (n.status, n.attempts) == (DeliveryStatus.SENT, 2)
    assert Notification.objects.filter(channel=channel).count() == 1
