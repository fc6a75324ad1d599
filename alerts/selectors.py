"""Reads of the alerts app: the alerts list with filters, an alert's history, channels, the digest figures."""
from datetime import date, datetime, time, timedelta, timezone

from django.db import connection
from django.db.models import Count, Q, QuerySet

from compliance.selectors import NoObligation, active_markets, obligation_in_force

from .models import Alert, AlertEvent, Channel, DeliveryStatus, EventKind, Notification
from .signals import minutes_compliant


def alerts(*, status: str = "", severity: str = "", market_id: int | None = None, kind: str = "") -> QuerySet[Alert]:
    rows = Alert.objects.select_related("rule__market__venue", "acknowledged_by").exclude(status="ok", episode=0)
    if status:
        rows = rows.filter(status=status)
    if severity:
        rows = rows.filter(rule__severity=severity)
    if market_id:
        rows = rows.filter(rule__market_id=market_id)
    if kind:
        rows = rows.filter(rule__kind=kind)
    return rows.order_by("-evaluated_at")


def history(*, alert: Alert, limit: int = 200) -> list[AlertEvent]:
    return list(alert.events.select_related("actor").prefetch_related("notifications__channel")[:limit])


def channels() -> QuerySet[Channel]:
    return Channel.objects.annotate(
        queued=Count("notifications", filter=Q(notifications__status__in=(DeliveryStatus.QUEUED, DeliveryStatus.SENDING))),
        failed=Count("notifications", filter=Q(notifications__status=DeliveryStatus.FAILED)),
    ).prefetch_related("routes__venue", "routes__market")


def recent_notifications(*, channel: Channel, limit: int = 20) -> list[Notification]:
    return list(channel.notifications.order_by("-created_at")[:limit])


def daily_compliance(*, day: date) -> list[dict]:
    """Per active market, the closed UTC day's uptime against the obligation in force at its end."""
    start = datetime.combine(day, time(0), tzinfo=timezone.utc)
    end = start + timedelta(days=1)
    rows = []
    for market in active_markets():
        try:
            terms = obligation_in_force(market_id=market.id, at=end - timedelta(microseconds=1)).terms()
        except NoObligation:
            continue
        elapsed, compliant = minutes_compliant(market_id=market.id, terms=terms, start=start, end=end)
        required = terms["uptime_required_pct"]
        uptime = compliant / elapsed * 100
        rows.append({
            "market": str(market), "uptime_pct": uptime, "required": required,
            "passed": None if required is None else uptime >= float(required),
            "unknown_minutes": _unknown_minutes(market_id=market.id, start=start, end=end),
            "alerts_fired": AlertEvent.objects.filter(alert__rule__market=market, kind=EventKind.FIRING, at__gte=start, at__lt=end).count(),
        })
    return rows


def _unknown_minutes(*, market_id: int, start: datetime, end: datetime) -> int:
    with connection.cursor() as cur:
        cur.execute(
            """SELECT count(DISTINCT date_trunc('minute', ts)) FROM compliance_sample
               WHERE market_id = %s AND valid AND ts >= %s AND ts < %s""",
            [market_id, start, end],
        )
        with_data = cur.fetchone()[0]
    return int((end - start).total_seconds() // 60) - with_data
