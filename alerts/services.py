"""Writes of the alerts app: default rules, evaluation (state machine → events → notifications),
acknowledge/mute (audited), channels and routes, test messages, the daily digest."""
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from compliance.models import Market
from compliance.selectors import NoObligation, active_markets, obligation_in_force, obligation_periods_of_markets

from . import kinds, machine, signals
from .models import Alert, AlertEvent, AlertRule, Channel, EvaluationClock, EventKind, Notification, Route
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

@dataclass(frozen=True)
class Judged:
    """A rule's verdict in one pass and the limit it was judged against (None = not applicable)."""

    rule: AlertRule  # with market and venue loaded
    verdict: kinds.Verdict
    limit: float | None


def evaluate_all(*, now: datetime | None = None) -> int:
    """Judge every enabled rule of every active market, then record the outcome (record_verdicts);
    returns the number of notifications recorded. The reads are one query per kind of signal for
    all markets together, so the pass costs the same number of queries at any number of markets."""
    now = now or timezone.now()
    markets = {m.id: m for m in active_markets()}
    rules = list(AlertRule.objects.filter(enabled=True, market_id__in=list(markets)))
    terms = _terms_in_force(market_ids=sorted({rule.market_id for rule in rules}), now=now)
    observed = signals.signals_of_markets(markets=[markets[m] for m in terms], now=now)
    judged = []
    for rule in rules:
        if rule.market_id in terms:
            rule.market = markets[rule.market_id]  # shared, not one copy per rule
            judged.append(_judge(rule, observed[rule.market_id], terms[rule.market_id]))
    return record_verdicts(judged=judged, now=now)


def _terms_in_force(*, market_ids: list[int], now: datetime) -> dict[int, dict]:
    """{market_id: obligation terms in force at `now`}; markets without an obligation are absent.
    The periods of the instant [now, now + 1 µs) hold exactly the version in force."""
    periods = obligation_periods_of_markets(market_ids=market_ids, start=now, end=now + timedelta(microseconds=1))
    return {market_id: p[-1][2].terms() for market_id, p in periods.items() if p}


def _judge(rule: AlertRule, observed: kinds.MarketSignals, terms: dict) -> Judged:
    kind = kinds.KINDS[rule.kind]
    limit = float(rule.threshold) if rule.threshold is not None else kind.default_limit(terms, rule.market.venue.tier)
    if limit is None:
        return Judged(rule, kinds.Verdict(None, None, "not applicable to this obligation"), None)
    return Judged(rule, kind.judge(observed, limit, terms), limit)


def record_verdicts(*, judged: list[Judged], now: datetime) -> int:
    """Step each rule's state machine (alerts.machine) with its verdict and write only what moved,
    in one transaction: the alerts whose state, mute or shown value changed, their events, and one
    notification per notice and matching channel (unique per event and channel, alerts.models).
    A pass not newer than the last one (EvaluationClock) records nothing. Returns the number of
    notifications recorded."""
    with transaction.atomic():
        if not _advance_clock(now):
            return 0  # a later pass already ran (two evaluators, or a late task)
        by_rule = {j.rule.pk: j for j in judged}
        current = {a.rule_id: a for a in Alert.objects.filter(rule_id__in=list(by_rule))}
        Alert.objects.bulk_create([Alert(rule_id=r) for r in by_rule if r not in current], ignore_conflicts=True)
        # Judged on an unlocked read first, so a quiet pass writes nothing and locks nothing.
        moving = [r for r, j in by_rule.items() if r not in current or _step_alert(current[r], j, now) is not None]
        if not moving:
            return 0
        # Then again on the locked rows: an operator may have acknowledged or muted one meanwhile.
        changed, events = [], []
        for alert in Alert.objects.select_for_update().filter(rule_id__in=moving).order_by("pk"):
            alert.rule = by_rule[alert.rule_id].rule
            stepped = _step_alert(alert, by_rule[alert.rule_id], now)
            if stepped is not None:
                changed.append(alert)
                events.extend(stepped)
        _save_stepped(changed)
        _record_events(events)
        return _record_notifications(events=[e for e in events if e.kind == EventKind.NOTICE])


_STEPPED_FIELDS = [
    Alert._meta.get_field(name) for name in (
        "status", "episode", "breach_since", "firing_since", "clear_since", "resolved_at", "announced", "firing_announced_at",
        "value", "limit", "detail", "evaluated_at", "muted_until", "acknowledged_at", "acknowledged_by", "ack_note",
    )
]


def _save_stepped(alerts: list[Alert]) -> None:
    """One UPDATE by primary key per alert, sent as one pipelined batch (Django's bulk_update
    builds a CASE per field and row in Python, which took seconds for a thousand rows)."""
    if not alerts:
        return
    columns = ", ".join(f"{connection.ops.quote_name(f.column)} = %s" for f in _STEPPED_FIELDS)
    with connection.cursor() as cur:
        cur.executemany(
            f"UPDATE {Alert._meta.db_table} SET {columns} WHERE id = %s",
            [[getattr(a, f.attname) for f in _STEPPED_FIELDS] + [a.pk] for a in alerts],
        )


def _advance_clock(now: datetime) -> bool:
    """Move EvaluationClock to `now` if it is behind; True if this pass may proceed. The row stays
    locked until the pass commits, so a concurrent pass waits and then finds the clock moved."""
    table = EvaluationClock._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            f"""INSERT INTO {table} (id, evaluated_through) VALUES (1, %s)
                ON CONFLICT (id) DO UPDATE SET evaluated_through = EXCLUDED.evaluated_through
                WHERE {table}.evaluated_through < EXCLUDED.evaluated_through RETURNING id""",
            [now],
        )
        return cur.fetchone() is not None


def _step_alert(alert: Alert, judged: Judged, now: datetime) -> list[AlertEvent] | None:
    """Apply one verdict to the alert in memory. The events to record (unsaved), or None when
    nothing worth writing moved: the state, the mute, or — while pending or firing, when someone
    is watching it — the value shown against the limit."""
    state_before, shown_before = alert.machine_state(), (alert.value, alert.limit, alert.detail)
    events = []
    if alert.muted_until is not None and alert.muted_until <= now:
        events.append(_new_event(alert, EventKind.UNMUTED, at=now, note="the mute window ended"))
        alert.muted_until = None
    rule, verdict = judged.rule, judged.verdict
    result = machine.step(
        state_before, breached=verdict.breached, now=now,
        timing=machine.Timing(rule.for_seconds, rule.clear_seconds, rule.renotify_seconds),
        muted=alert.muted_until is not None, acknowledged=alert.acknowledged_at is not None,
    )
    alert.apply_machine_state(result.state)
    alert.value, alert.limit, alert.detail = verdict.value, judged.limit, verdict.detail[:300]
    for change in result.changes:
        kind = EventKind.CANCELLED if change == machine.Status.OK else EventKind(change.value)
        if kind == EventKind.FIRING:
            alert.acknowledged_at, alert.acknowledged_by, alert.ack_note = None, None, ""  # a new episode needs a new ack
        events.append(_new_event(alert, kind, at=now, value=verdict.value, limit=judged.limit))
    if result.notice is not None:
        events.append(_new_event(alert, EventKind.NOTICE, at=now, value=verdict.value, limit=judged.limit, notice=result.notice))
    watched = alert.status in (machine.Status.PENDING, machine.Status.FIRING)
    shown_moved = (alert.value, alert.limit, alert.detail) != shown_before
    if not events and result.state == state_before and not (watched and shown_moved) and alert.evaluated_at is not None:
        return None
    alert.evaluated_at = now
    return events


def _new_event(alert: Alert, kind: str, *, at: datetime, value=None, limit=None, notice=None, actor=None, note="") -> AlertEvent:
    return AlertEvent(
        alert=alert, kind=kind, notice=notice or "", episode=alert.episode, at=at, value=value, limit=limit, actor=actor, note=note
    )


def _record_events(events: list[AlertEvent]) -> None:
    """Insert in order (the history lists them by time, then id) and toast what browsers should see."""
    AlertEvent.objects.bulk_create(events)
    toasts = {}  # one per alert: its first event worth showing (a firing and its notice are one toast)
    for e in events:
        if e.kind not in (EventKind.CANCELLED, EventKind.PENDING):
            toasts.setdefault(e.alert.pk, e)
    if toasts:
        transaction.on_commit(lambda: _toast(list(toasts.values())))


def _record_notifications(*, events: list[AlertEvent]) -> int:
    """One notification per notice event and matching channel, its message frozen now."""
    if not events:
        return 0
    routes = list(Route.objects.select_related("channel").filter(channel__enabled=True))
    notifications = []
    for event in events:
        message = alert_message(alert=event.alert, notice=event.notice).to_payload()
        channels = {r.channel for r in routes if r.matches(event.alert.rule)}
        notifications += [
            Notification(channel=c, event=event, payload=message, next_attempt_at=event.at, created_at=event.at) for c in channels
        ]
    Notification.objects.bulk_create(notifications)
    return len(notifications)


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


def _toast(events: list[AlertEvent]) -> None:
    """Live browser toasts; best effort (the alerts page and the notifications are the record).
    Sent from one event loop, so a storm of state changes costs one hop to Redis per toast, not
    a loop and a connection each."""
    payloads = [
        {
            "alert_id": e.alert.pk, "event": e.kind, "notice": e.notice, "severity": e.alert.rule.severity,
            "title": f"{kinds.KINDS[e.alert.rule.kind].label} — {e.alert.rule.market}", "status": e.alert.status,
            "value": e.alert.value, "limit": e.alert.limit, "at": e.at.isoformat(), "url": f"/alerts/{e.alert.pk}/",
        }
        for e in events
    ]
    try:
        async_to_sync(_send_toasts)(payloads)
    except Exception as exc:  # a down Redis must not undo an evaluation
        log.warning("could not publish %d alert toast(s): %s", len(payloads), exc)


async def _send_toasts(payloads: list[dict]) -> None:
    layer = get_channel_layer()
    for payload in payloads:
        await layer.group_send(TOAST_GROUP, {"type": "alert.event", "payload": payload})


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
    _record_events([_new_event(alert, EventKind.ACKNOWLEDGED, at=alert.acknowledged_at, actor=actor, note=alert.ack_note)])
    return alert


@transaction.atomic
def mute(*, alert: Alert, actor, minutes: int, note: str = "") -> Alert:
    if minutes <= 0:
        raise ValidationError({"minutes": "Mute for at least one minute."})
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    now = timezone.now()
    alert.muted_until = now + timedelta(minutes=minutes)
    alert.save(update_fields=["muted_until"])
    _record_events([
        _new_event(alert, EventKind.MUTED, at=now, actor=actor, note=f"until {alert.muted_until:%Y-%m-%d %H:%M} UTC. {note}".strip())
    ])
    return alert


@transaction.atomic
def unmute(*, alert: Alert, actor) -> Alert:
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    alert.muted_until = None
    alert.save(update_fields=["muted_until"])
    _record_events([_new_event(alert, EventKind.UNMUTED, at=timezone.now(), actor=actor)])
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
