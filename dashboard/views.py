from django.http import JsonResponse
from django.shortcuts import render

from compliance.selectors import markets_overview

from . import health


def healthz(request):
    db_ok, db_detail = health.check_database()
    redis_ok, redis_detail = health.check_redis()
    collectors_ok, collectors_detail = health.check_collectors()
    ok = db_ok and redis_ok and collectors_ok
    body = {
        "status": "ok" if ok else "degraded",
        "database": {"ok": db_ok, "detail": db_detail},
        "redis": {"ok": redis_ok, "detail": redis_detail},
        "collectors": {"ok": collectors_ok, "shards": collectors_detail},
    }
    return JsonResponse(body, status=200 if ok else 503)


def overview(request):
    return render(request, "dashboard/overview.html", {"rows": markets_overview()})
