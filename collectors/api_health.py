"""API health: every REST response recorded, error counts per hour, the last 24 h as CSV."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

from asgiref.sync import sync_to_async
from django.db.models import Count, Q
from django.db.models.functions import TruncHour

from collectors.models import ApiResponse
from collectors.rest import TIMESTAMP_OUTSIDE_RECV_WINDOW, ApiCall

# The failures that say something about the desk's API usage (DESIGN.md, 'Order behaviour').
TRACKED = {
    "http_429": Q(http_status=429),
    "http_418": Q(http_status=418),
    "http_401": Q(http_status=401),
    "clock_1021": Q(error_code=TIMESTAMP_OUTSIDE_RECV_WINDOW),
}
CSV_COLUMNS = (
    "at", "venue", "method", "path", "http_status", "error_code", "used_weight_1m", "order_counts", "retry_after_s", "latency_ms",
)


def record_api_call(*, venue_id: int, call: ApiCall) -> ApiResponse:
    return ApiResponse.objects.create(
        venue_id=venue_id,
        at=datetime.fromtimestamp(call.at, tz=timezone.utc),
        method=call.method,
        path=call.path[:200],
        http_status=call.http_status,
        error_code=call.error_code,
        used_weight_1m=call.used_weight_1m,
        order_counts=call.order_counts,
        retry_after_s=call.retry_after_s,
        latency_ms=round(call.latency_ms, 3),
    )


def recorder_for(venue_id: int):
    """An async recorder for collectors.rest.BinanceRest that writes ApiResponse rows."""
    record = sync_to_async(record_api_call)

    async def recorder(call: ApiCall) -> None:
        await record(venue_id=venue_id, call=call)

    return recorder


def error_counts_per_hour(*, since: datetime, venue_id: int | None = None) -> list[dict]:
    """[{hour, requests, http_429, http_418, http_401, clock_1021}] for every hour with traffic."""
    rows = ApiResponse.objects.filter(at__gte=since)
    if venue_id is not None:
        rows = rows.filter(venue_id=venue_id)
    return list(
        rows.annotate(hour=TruncHour("at"))
        .values("hour")
        .annotate(requests=Count("id"), **{name: Count("id", filter=q) for name, q in TRACKED.items()})
        .order_by("hour")
    )


def export_csv(*, now: datetime, hours: int = 24) -> str:
    """Every API response of the last `hours` as CSV, oldest first."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    rows = ApiResponse.objects.filter(at__gte=now - timedelta(hours=hours), at__lte=now).select_related("venue").order_by("at", "id")
    for r in rows.iterator(chunk_size=2000):
        writer.writerow(
            (
                r.at.isoformat(), r.venue.name, r.method, r.path, r.http_status,
                "" if r.error_code is None else r.error_code,
                "" if r.used_weight_1m is None else r.used_weight_1m,
                ";".join(f"{k}={v}" for k, v in sorted(r.order_counts.items())),
                "" if r.retry_after_s is None else r.retry_after_s,
                f"{r.latency_ms:.1f}",
            )
        )
    return out.getvalue()
