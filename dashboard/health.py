"""Dependency checks behind /healthz: each returns (ok, detail) and never raises."""
import time

import psycopg
import redis
from django.conf import settings


def check_database() -> tuple[bool, str]:
    db = settings.DATABASES["default"]
    try:
        with psycopg.connect(
            host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"] or None,
            dbname=db["NAME"], connect_timeout=max(1, int(settings.HEALTHZ_TIMEOUT_SECONDS)),
        ) as conn:
            conn.execute("SELECT 1")
        return True, "ok"
    except Exception as exc:  # any failure is the finding
        return False, f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"


def check_redis() -> tuple[bool, str]:
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL,
            socket_timeout=settings.HEALTHZ_TIMEOUT_SECONDS,
            socket_connect_timeout=settings.HEALTHZ_TIMEOUT_SECONDS,
        )
        client.ping()
        client.close()
        return True, "ok"
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"


def check_collectors() -> tuple[bool, dict]:
    """Collector shards' heartbeats from Redis (written by collectors.leases); ok when none is stale."""
    try:
        from collectors.leases import heartbeat_report
    except ImportError:  # collectors not built yet
        return True, {}
    try:
        report = heartbeat_report(now=time.time())
    except Exception as exc:
        return False, {"error": f"{type(exc).__name__}: {exc}"}
    return all(s.get("ok") for s in report.values()), report
