"""Reads of the alerts app: the alerts list with filters, an alert's history, how far evaluation has run,
channels, the digest figures."""
from datetime import date, datetime, time, timedelta, timezone

from django.db.models import Count, Q, QuerySet

from compliance.models import DailyResult
from compliance.selectors import active_markets

from .models import Alert, AlertEvent, Channel, DeliveryStatus, EvaluationClock, EventKind


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


def evaluated_through() -> datetime | None:
    """How far every enabled rule has been evaluated (an alert row is written only when it moves)."""
    return EvaluationClock.objects.values_list("evaluated_through", flat=True).first()


def channels() -> QuerySet[Channel]:
    return Channel.objects.annotate(
        queued=Count("notifications", filter=Q(notifications__status__in=(DeliveryStatus.QUEUED, DeliveryStatus.SENDING))),
        failed=Count("notifications", filter=Q(notifications__status=DeliveryStatus.FAILED)),
    ).prefetch_related("routes__venue", "routes__market")


def daily_compliance(*, day: date) -> list[dict]:
    """Per active market, the closed UTC day as the compliance engine judged it (None = not judged yet)."""
    start = datetime.combine(day, time(0), tzinfo=timezone.utc)
    results = {r.market_id: r for r in DailyResult.objects.filter(day=day, is_closed=True)}
    fired = dict(
        AlertEvent.objects.filter(kind=EventKind.FIRING, at__gte=start, at__lt=start + timedelta(days=1))
        .values_list("alert__rule__market_id").annotate(n=Count("id"))
    )
    return [{"market": str(m), "result": results.get(m.id), "alerts_fired": fired.get(m.id, 0)} for m in active_markets()]
