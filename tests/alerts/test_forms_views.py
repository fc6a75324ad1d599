"""Forms reject bad input with clear messages; pages need the right role; ack and mute are audited."""
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from alerts import kinds, services
from alerts.forms import ChannelForm, MuteForm, RuleForm
from alerts.models import Alert, AlertRule, Channel, Notification

pytestmark = pytest.mark.django_db


def errors(form):
    assert not form.is_valid()
    return {**form.errors, **getattr(form, "config_form", form).errors}


@pytest.mark.parametrize("url", ["hooks.slack.com/services/x", "not a url", "ftp://example.com/hook", "https://"])
def test_channel_form_rejects_a_malformed_webhook_url(url):
    for kind in ("slack", "webhook"):
        form = ChannelForm({"name": "x", "enabled": "on", "config-url": url, "config-secret": "0123456789abcdef"}, instance=Channel(), kind=kind)
        assert "is not a web address; enter the full URL" in errors(form)["url"][0]


def test_channel_form_rejects_empty_and_bad_recipients():
    form = ChannelForm({"name": "mail", "config-recipients": " , \n"}, instance=Channel(), kind="email")
    assert errors(form)["recipients"] == ["Enter at least one recipient address."]
    form = ChannelForm({"name": "mail", "config-recipients": "desk@example.com, not-an-address"}, instance=Channel(), kind="email")
    assert errors(form)["recipients"] == ["Not a valid email address: not-an-address."]
    form = ChannelForm({"name": "mail", "config-recipients": "desk@example.com;\nops@example.com"}, instance=Channel(), kind="email")
    assert form.is_valid() and form.save_values().config == {"recipients": ["desk@example.com", "ops@example.com"]}


def test_webhook_needs_a_real_secret():
    form = ChannelForm({"name": "hook", "config-url": "https://example.com/hook", "config-secret": "short"}, instance=Channel(), kind="webhook")
    assert errors(form)["secret"] == ["The signing secret must be at least 16 characters."]


def test_rule_form_rejects_negative_durations_and_thresholds(market):
    services.ensure_default_rules(market=market)
    rule = AlertRule.objects.get(market=market, kind="spread_breach")
    data = {"threshold": "-1", "severity": "critical", "for_seconds": "-5", "clear_seconds": "-1", "renotify_seconds": "10", "enabled": "on"}
    e = errors(RuleForm(data, instance=rule))
    assert e["threshold"] == ["A threshold cannot be negative; leave it empty to follow the obligation."]
    assert e["for_seconds"] == ["The duration before firing cannot be negative (got -5 s)."]
    assert e["clear_seconds"] == ["The duration before resolving cannot be negative (got -1 s)."]
    assert e["renotify_seconds"] == ["The re-notify interval must be at least 60 s (got 10 s), or alerts would spam."]
    assert RuleForm({**data, "threshold": "", "for_seconds": "0", "clear_seconds": "30", "renotify_seconds": "600"}, instance=rule).is_valid()


def test_mute_form_bounds():
    assert MuteForm({"minutes": "0"}).errors["minutes"] == ["Mute for at least one minute."]


def test_stored_config_that_does_not_parse_is_refused():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="at least one recipient"):
        services.save_channel(channel=Channel(name="m", kind="email", config={"recipients": []}))


@pytest.fixture
def firing_alert(market):
    services.ensure_default_rules(market=market)
    rule = AlertRule.objects.get(market=market, kind="spread_breach")
    now = timezone.now()
    services.record_verdicts(judged=[services.Judged(rule, kinds.Verdict(True, 2.0), 0.8)], now=now - timedelta(minutes=2))
    services.record_verdicts(judged=[services.Judged(rule, kinds.Verdict(True, 2.1), 0.8)], now=now)
    alert = Alert.objects.get(rule=rule)
    assert alert.status == "firing"
    return alert


def login(client, django_user_model, role):
    user = django_user_model.objects.create_user(f"u-{role}", password="pw-123456-x")
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    client.force_login(user)
    return user


def test_viewer_sees_alerts_but_cannot_ack_or_mute(client, django_user_model, firing_alert):
    login(client, django_user_model, "viewer")
    page = client.get("/alerts/")
    assert page.status_code == 200 and b"Spread above the maximum" in page.content
    detail = client.get(f"/alerts/{firing_alert.pk}/")
    assert detail.status_code == 200
    assert f"all rules evaluated through {firing_alert.evaluated_at:%Y-%m-%d %H:%M:%S}" in detail.content.decode()
    assert client.post(f"/alerts/{firing_alert.pk}/acknowledge/", {"note": "on it"}).status_code == 403
    assert client.post(f"/alerts/{firing_alert.pk}/mute/", {"minutes": "30"}).status_code == 403
    assert client.get("/alerts/channels/").status_code == 403


def test_operator_acknowledges_with_a_note_and_mutes_audited(client, django_user_model, firing_alert):
    operator = login(client, django_user_model, "operator")
    response = client.post(f"/alerts/{firing_alert.pk}/acknowledge/", {"note": ""}, follow=True)
    assert b"Say what is being done about it" in response.content
    client.post(f"/alerts/{firing_alert.pk}/acknowledge/", {"note": "widening quotes, desk notified"})
    client.post(f"/alerts/{firing_alert.pk}/mute/", {"minutes": "30", "note": "maintenance"})
    firing_alert.refresh_from_db()
    assert firing_alert.acknowledged_by == operator and firing_alert.ack_note == "widening quotes, desk notified"
    assert firing_alert.muted_until > timezone.now() + timedelta(minutes=29)
    trail = list(firing_alert.events.filter(actor=operator).values_list("kind", flat=True))
    assert sorted(trail) == ["acknowledged", "muted"]
    history = client.get(f"/alerts/{firing_alert.pk}/")
    assert b"widening quotes" in history.content and b"Muted until" in history.content
    assert client.get("/alerts/?status=firing&severity=critical").content.count(b"alert-firing") == 1


def test_admin_edits_a_rule_and_the_change_is_audited(client, django_user_model, firing_alert):
    admin = login(client, django_user_model, "admin")
    rule = firing_alert.rule
    response = client.post(f"/alerts/rules/{rule.pk}/", {"threshold": "1.2", "severity": "critical", "for_seconds": "-3",
                                                         "clear_seconds": "60", "renotify_seconds": "600", "enabled": "on"})
    assert b"cannot be negative (got -3 s)" in response.content
    client.post(f"/alerts/rules/{rule.pk}/", {"threshold": "1.2", "severity": "critical", "for_seconds": "30",
                                              "clear_seconds": "60", "renotify_seconds": "600", "enabled": "on"})
    rule.refresh_from_db()
    assert (float(rule.threshold), rule.for_seconds) == (1.2, 30)
    change = firing_alert.events.get(kind="rule_changed")
    assert change.actor == admin and "for_seconds: 60 → 30" in change.note


def test_channel_page_send_test_and_broken_channel_shown(client, django_user_model):
    login(client, django_user_model, "admin")
    response = client.post("/alerts/channels/new/slack/", {"name": "desk", "enabled": "on", "config-url": "https://hooks.example/x"})
    assert response.status_code == 302
    channel = Channel.objects.get(name="desk")
    client.post(f"/alerts/channels/{channel.pk}/test/")
    assert Notification.objects.filter(channel=channel, is_test=True).count() == 1
    Channel.objects.filter(pk=channel.pk).update(broken_at=timezone.now(), broken_reason="HTTP 410: channel_is_archived")
    page = client.get("/alerts/channels/")
    assert b"Broken since" in page.content and b"channel_is_archived" in page.content
    assert client.get("/alerts/channels/new/pager/").status_code == 404
