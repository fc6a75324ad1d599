"""Writes of the alerts app: default rules, evaluation (state machine → events → notifications),
acknowledge/mute (audited), channels and routes, test messages, the daily digest."""
import logging
from datetime import date, datetime, timedelta

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from compliance.models import Market
from compliance.selectors import NoObligation, active_markets, obligation_in_force

from . import kinds, machine, signals
from .models import Alert, AlertEvent, AlertRule, Channel, EventKind, Notification, Route
from .selectors import daily_compliance
from .transports import TRANSPORTS, Message
from .transports.base import site_url

log = logging.getLogger(__name__)

TOAST_GROUP = "alerts"
LIQUIDITY_ALERT_DEADLINE = timedelta(hours=72)  # reference/cex-listing-spread-depth-uptime-compliance.txt, line 2


# --- rules ---------------------------------------------------------------------------------

def ensure_default_rules(*, market: Market) -> list[AlertRule]:
    """One rule per kind that applies to the market's obligation in force (thresholds left to it)."""
    try:
        terms = obligation_in_force(market_id=market.id, at=timezone.now()).terms()
    except NoObligation:
        return []
    created = []
    for kind in kinds.KINDS.values():
        if kind.default_limit(terms, market.venue.tier) is None:
            continue
        rule, was_created = AlertRule.objects.get_or_create(
            market=market, kind=kind.code, defaults={"severity": kind.severity, "for_seconds": kind.for_seconds}
        )
        if was_created:
            created.append(rule)
    return created


@transaction.atomic
def update_rule(*, rule: AlertRule, changes: dict, actor) -> AlertRule:
    before = {name: getattr(rule, name) for name in changes}
    for name, value in changes.items():
        setattr(rule, name, value)
    rule.updated_by = actor
    rule.full_clean()
    rule.save()
    diff = "; ".join(f"{name}: {before[name]} → {value}" for name, value in changes.items() if before[name] != value)
    if diff:
        alert, _ = Alert.objects.get_or_create(rule=rule)
        AlertEvent.objects.create(alert=alert, kind=EventKind.RULE_CHANGED, episode=alert.episode, at=timezone.now(),
                                  actor=actor, note=diff)
    return rule


# --- evaluation ----------------------------------------------------------------------------

def evaluate_all(*, now: datetime | None = None) -> int:
    """Evaluate every enabled rule of every active market; returns the number of notifications recorded."""
    now = now or timezone.now()
    recorded = 0
    for market in active_markets():
        rules = list(AlertRule.objects.filter(market=market, enabled=True))
        if not rules:
            continue
        try:
            terms = obligation_in_force(market_id=market.id, at=now).terms()
        except NoObligation:
            continue
        market_signals = signals.market_signals(market=market, now=now)
        for rule in rules:
            kind = kinds.KINDS[rule.kind]
            limit = float(rule.threshold) if rule.threshold is not None else kind.default_limit(terms, market.venue.tier)
            verdict = kinds.Verdict(None, None, "not applicable to this obligation") if limit is None else kind.judge(
                market_signals, limit, terms
            )
            recorded += evaluate_rule(rule=rule, verdict=verdict, limit=limit, now=now)
    return recorded


@transaction.atomic
def evaluate_rule(*, rule: AlertRule, verdict: kinds.Verdict, limit: float | None, now: datetime) -> int:
    Alert.objects.get_or_create(rule=rule)
    alert = Alert.objects.select_for_update().select_related("rule__market__venue").get(rule=rule)
    if alert.evaluated_at is not None and alert.evaluated_at >= now:
        return 0  # a later evaluation already ran (two evaluators, or a late task)
    if alert.muted_until is not None and alert.muted_until <= now:
        _event(alert, EventKind.UNMUTED, at=now, note="the mute window ended")
        alert.muted_until = None
    timing = machine.Timing(rule.for_seconds, rule.clear_seconds, rule.renotify_seconds)
    result = machine.step(
        alert.machine_state(), breached=verdict.breached, now=now, timing=timing,
        muted=alert.muted_until is not None, acknowledged=alert.acknowledged_at is not None,
    )
    alert.apply_machine_state(result.state)
    alert.value, alert.limit, alert.detail, alert.evaluated_at = verdict.value, limit, verdict.detail[:300], now
    for change in result.changes:
        kind = EventKind.CANCELLED if change == machine.Status.OK else EventKind(change.value)
        if kind == EventKind.FIRING:
            alert.acknowledged_at, alert.acknowledged_by, alert.ack_note = None, None, ""  # a new episode needs a new ack
        _event(alert, kind, at=now, value=verdict.value, limit=limit)
    recorded = 0
    if result.notice is not None:
        event = _event(alert, EventKind.NOTICE, at=now, value=verdict.value, limit=limit, notice=result.notice)
        recorded = _record_notifications(event=event, message=alert_message(alert=alert, notice=result.notice))
    alert.save()
    return recorded


def _event(alert: Alert, kind: str, *, at: datetime, value=None, limit=None, notice=None, actor=None, note="") -> AlertEvent:
    event = AlertEvent.objects.create(
        alert=alert, kind=kind, notice=notice or "", episode=alert.episode, at=at, value=value, limit=limit, actor=actor, note=note
    )
    if kind != EventKind.CANCELLED and kind != EventKind.PENDING:
        transaction.on_commit(lambda: _toast(alert, event))
    return event


def _record_notifications(*, event: AlertEvent, message: Message) -> int:
    rule = event.alert.rule
    channels = {r.channel for r in Route.objects.select_related("channel").filter(channel__enabled=True) if r.matches(rule)}
    for channel in channels:
        Notification.objects.create(
            channel=channel, event=event, payload=message.to_payload(), next_attempt_at=event.at, created_at=event.at
        )
    return len(channels)


def alert_message(*, alert: Alert, notice: str) -> Message:
    rule = alert.rule
    kind = kinds.KINDS[rule.kind]
    headline = {"firing": rule.severity.upper(), "reminder": "STILL FIRING", "resolved": "RESOLVED"}[notice]
    since = alert.breach_since or alert.firing_since
    value = "n/a" if alert.value is None else f"{alert.value:,.4g}"
    limit = "n/a" if alert.limit is None else f"{alert.limit:,.4g}"
    lines = [f"{kind.label} on {rule.market}.", f"{kind.kpi}: {value} (limit {limit})."]
    if notice == "resolved":
        lines.append(f"Back in range since {alert.resolved_at:%Y-%m-%d %H:%M:%S} UTC (fired {alert.firing_since:%Y-%m-%d %H:%M:%S} UTC).")
    elif since:
        lines.append(f"Since {since:%Y-%m-%d %H:%M:%S} UTC.")
    if rule.kind == "liquidity_alert_clock" and notice != "resolved" and since:
        lines.append(f"The exchange may tag the market within 72 h of detection: by {since + LIQUIDITY_ALERT_DEADLINE:%Y-%m-%d %H:%M} UTC.")
    if alert.detail:
        lines.append(alert.detail)
    at = alert.resolved_at if notice == "resolved" else since
    return Message(
        title=f"[{headline}] {kind.label} — {rule.market}", text="\n".join(lines), severity=rule.severity, notice=notice,
        market=str(rule.market), kpi=kind.kpi, value=alert.value, limit=alert.limit,
        since=at.isoformat() if at else "",
        url=site_url(f"/alerts/{alert.pk}/"), fingerprint=rule.fingerprint, episode=alert.episode,
    )


def _toast(alert: Alert, event: AlertEvent) -> None:
    """Live browser toast; best effort (the alerts page and the notifications are the record)."""
    payload = {
        "alert_id": alert.pk, "event": event.kind, "notice": event.notice, "severity": alert.rule.severity,
        "title": f"{kinds.KINDS[alert.rule.kind].label} — {alert.rule.market}", "status": alert.status,
        "value": alert.value, "limit": alert.limit, "at": event.at.isoformat(), "url": f"/alerts/{alert.pk}/",
    }
    try:
        async_to_sync(get_channel_layer().group_send)(TOAST_GROUP, {"type": "alert.event", "payload": payload})
    except Exception as exc:  # a down Redis must not undo an evaluation
        log.warning("could not publish alert toast: %s", exc)


# --- operators -----------------------------------------------------------------------------

@transaction.atomic
def acknowledge(*, alert: Alert, actor, note: str) -> Alert:
    if not note.strip():
        raise ValidationError({"note": "Say what is being done about it; the note goes into the audit trail."})
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    if alert.status != machine.Status.FIRING:
        raise ValidationError("Only a firing alert can be acknowledged.")
    alert.acknowledged_at, alert.acknowledged_by, alert.ack_note = timezone.now(), actor, note.strip()
    alert.save(update_fields=["acknowledged_at", "acknowledged_by", "ack_note"])
    _event(alert, EventKind.ACKNOWLEDGED, at=alert.acknowledged_at, actor=actor, note=alert.ack_note)
    return alert


@transaction.atomic
def mute(*, alert: Alert, actor, minutes: int, note: str = "") -> Alert:
    if minutes <= 0:
        raise ValidationError({"minutes": "Mute for at least one minute."})
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    now = timezone.now()
    alert.muted_until = now + timedelta(minutes=minutes)
    alert.save(update_fields=["muted_until"])
    _event(alert, EventKind.MUTED, at=now, actor=actor, note=f"until {alert.muted_until:%Y-%m-%d %H:%M} UTC. {note}".strip())
    return alert


@transaction.atomic
def unmute(*, alert: Alert, actor) -> Alert:
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    alert.muted_until = None
    alert.save(update_fields=["muted_until"])
    _event(alert, EventKind.UNMUTED, at=timezone.now(), actor=actor)
    return alert


# --- channels ------------------------------------------------------------------------------

def save_channel(*, channel: Channel) -> Channel:
    """Create or edit a channel; its config must parse. Saving clears a 'broken' mark (it was fixed)."""
    TRANSPORTS[channel.kind].parse_config(channel.config)
    channel.broken_at, channel.broken_reason = None, ""
    channel.full_clean()
    channel.save()
    return channel


def send_test(*, channel: Channel, actor) -> Notification:
    now = timezone.now()
    message = Message(
        title=f"Test message from the liquidity compliance monitor ({channel.name})",
        text=f"{actor} sent this test at {now:%Y-%m-%d %H:%M:%S} UTC. If you can read it, the channel works.",
        severity="info", notice="test", url=site_url("/alerts/channels/"),
    )
    return Notification.objects.create(channel=channel, is_test=True, payload=message.to_payload(), next_attempt_at=now, created_at=now)


# --- daily digest --------------------------------------------------------------------------

def record_daily_digest(*, day: date) -> int:
    """The closed day's compliance per market, one notification per digest channel (once per day)."""
    rows = daily_compliance(day=day)
    lines = [f"Compliance for {day:%Y-%m-%d} (UTC day, closed)."]
    for r in rows:
        if r["result"] is None:
            lines.append(f"- {r['market']}: not judged yet; alerts fired {r['alerts_fired']}")
            continue
        d = r["result"]
        uptime = "n/a" if d.uptime_adjusted_pct is None else f"{d.uptime_adjusted_pct:.2f} %"
        verdict = {True: "PASS", False: "FAIL", None: "not enforced"}[d.passed]
        required = "n/a" if d.uptime_required_pct is None else f"{d.uptime_required_pct:g} %"
        lines.append(
            f"- {r['market']}: uptime {uptime} ({verdict}; required {required}), raw {d.uptime_raw_pct or 0:.2f} %, "
            f"unknown {d.unknown_minutes} min, coverage {d.coverage_pct:.1f} %, alerts fired {r['alerts_fired']}"
        )
    if not rows:
        lines.append("No active markets.")
    message = Message(title=f"Daily compliance digest {day:%Y-%m-%d}", text="\n".join(lines), severity="info",
                      notice="digest", url=site_url("/"))
    now = timezone.now()
    recorded = 0
    for channel in Channel.objects.filter(daily_digest=True, enabled=True):
        try:
            with transaction.atomic():
                Notification.objects.create(channel=channel, digest_day=day, payload=message.to_payload(),
                                            next_attempt_at=now, created_at=now)
            recorded += 1
        except IntegrityError:
            continue  # already recorded for this day (beat fired twice, or a rerun)
    return recorded
