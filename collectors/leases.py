"""Redis leases: one collector per shard at a time, renewed by heartbeat (DESIGN.md, 'Real parts').

A lease is a key SET NX with a TTL; only its owner can renew or release it (Lua compare-and-set).
The holder also fences itself: if no renewal succeeded within the TTL it must stop collecting,
because by then another worker may have taken the shard. Each renewal writes the shard's
heartbeat (a hash read by /healthz) and appends to a short history, so a test — or an operator —
can check that two owners' holdings never overlapped.
"""
from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid

import orjson
import redis
import redis.asyncio as aioredis
from django.conf import settings

from config.env import envfloat, envstr

PREFIX = envstr("COLLECTOR_LEASE_PREFIX", "lcm:collector")
# Takeover after a worker dies: at most TTL (lease lapses) + the supervisor's period; both well
# under the 60 s DESIGN.md allows. Renewal at TTL/4 survives two missed heartbeats.
LEASE_TTL_S = envfloat("COLLECTOR_LEASE_TTL_S", 20.0)
HEARTBEAT_S = envfloat("COLLECTOR_HEARTBEAT_S", 5.0)
HISTORY_LENGTH = 500

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('HSET', KEYS[2], 'owner', ARGV[1], 'at', ARGV[3], 'detail', ARGV[4])
  redis.call('RPUSH', KEYS[3], ARGV[5])
  redis.call('LTRIM', KEYS[3], -tonumber(ARGV[6]), -1)
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('RPUSH', KEYS[2], ARGV[2])
  return 1
end
return 0
"""


class LeaseLost(Exception):
    """Another collector may hold this shard now: stop at once."""


async def run_while_held(lease: "ShardLease", work, *, status=dict, heartbeat_s: float | None = None):
    """Run `work` (a coroutine) while renewing `lease`; cancel it and raise LeaseLost if the lease is lost."""
    work_task = asyncio.ensure_future(work)
    beat = asyncio.create_task(_heartbeat(lease, status, heartbeat_s or HEARTBEAT_S))
    try:
        done, _ = await asyncio.wait([work_task, beat], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (work_task, beat):
            task.cancel()
        results = await asyncio.gather(work_task, beat, return_exceptions=True)
    if beat in done:
        raise results[1] if isinstance(results[1], BaseException) else LeaseLost(f"{lease.shard}: heartbeat stopped")
    if isinstance(results[0], BaseException):
        raise results[0]
    return results[0]


async def _heartbeat(lease: "ShardLease", status, interval_s: float) -> None:
    while True:
        renewed = await lease.renew(status())
        if not renewed and not lease.held:
            raise LeaseLost(f"shard {lease.shard}: lease lost by {lease.owner}")
        await asyncio.sleep(max(0.05, min(interval_s, (lease.valid_until - time.monotonic()) / 2)))


def lease_key(shard: str) -> str:
    return f"{PREFIX}:lease:{shard}"


def heartbeat_key(shard: str) -> str:
    return f"{PREFIX}:heartbeat:{shard}"


def history_key(shard: str) -> str:
    return f"{PREFIX}:history:{shard}"


def shards_key() -> str:
    return f"{PREFIX}:shards"


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class ShardLease:
    """Async lease on one shard, used from the collector's own event loop."""

    def __init__(self, shard: str, *, owner: str | None = None, ttl_s: float | None = None, client=None):
        self.shard = shard
        self.owner = owner or new_owner()
        self.ttl_s = ttl_s or LEASE_TTL_S
        self.redis = client or aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=max(1.0, self.ttl_s / 4))
        self.valid_until = 0.0  # time.monotonic() after which we must assume we no longer hold it

    @property
    def held(self) -> bool:
        return time.monotonic() < self.valid_until

    async def acquire(self, detail: dict | None = None) -> bool:
        started = time.monotonic()
        if not await self.redis.set(lease_key(self.shard), self.owner, nx=True, px=int(self.ttl_s * 1000)):
            return False
        self.valid_until = started + self.ttl_s
        await self.redis.sadd(shards_key(), self.shard)
        await self._record("acquired", detail)
        return True

    async def renew(self, detail: dict | None = None) -> bool:
        """Extend the lease and write the heartbeat; False when it is no longer ours."""
        started = time.monotonic()
        try:
            ok = await self._record("renewed", detail)
        except (redis.RedisError, OSError):
            return False  # unknown: valid_until is not extended, so the holder fences itself in time
        if ok:
            self.valid_until = started + self.ttl_s
        else:
            self.valid_until = 0.0
        return bool(ok)

    async def release(self) -> None:
        self.valid_until = 0.0
        event = orjson.dumps({"owner": self.owner, "event": "released", "at": time.time()}).decode()
        try:
            await self.redis.eval(_RELEASE, 2, lease_key(self.shard), history_key(self.shard), self.owner, event)
        except (redis.RedisError, OSError):
            pass  # the TTL releases it anyway

    async def close(self) -> None:
        await self.redis.aclose()

    async def _record(self, event: str, detail: dict | None):
        now = time.time()
        history = orjson.dumps({"owner": self.owner, "event": event, "at": now}).decode()
        return await self.redis.eval(
            _RENEW, 3, lease_key(self.shard), heartbeat_key(self.shard), history_key(self.shard),
            self.owner, int(self.ttl_s * 1000), repr(now), orjson.dumps(detail or {}).decode(), history, HISTORY_LENGTH,
        )


def sync_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def lease_owner(shard: str, client: redis.Redis | None = None) -> str | None:
    client = client or sync_client()
    value = client.get(lease_key(shard))
    return value.decode() if value else None


def lease_history(shard: str, client: redis.Redis | None = None) -> list[dict]:
    client = client or sync_client()
    return [orjson.loads(item) for item in client.lrange(history_key(shard), 0, -1)]


def forget_shard(shard: str, client: redis.Redis | None = None) -> None:
    """Stop reporting a shard that no longer exists (its markets were removed)."""
    client = client or sync_client()
    client.srem(shards_key(), shard)
    client.delete(heartbeat_key(shard), history_key(shard))


def heartbeat_report(now: float) -> dict:
    """{shard: {"ok", "age_s", "owner", "held", ...detail}} for every shard ever leased (for /healthz).

    ok: the lease is held and its heartbeat is younger than the lease TTL.
    """
    client = sync_client()
    try:
        shards = sorted(s.decode() for s in client.smembers(shards_key()))
        report = {}
        for shard in shards:
            beat = {k.decode(): v.decode() for k, v in client.hgetall(heartbeat_key(shard)).items()}
            owner = lease_owner(shard, client)
            at = float(beat["at"]) if "at" in beat else None
            age = None if at is None else round(max(0.0, now - at), 3)
            detail = orjson.loads(beat["detail"]) if beat.get("detail") else {}
            report[shard] = {
                **detail,
                "ok": owner is not None and age is not None and age < LEASE_TTL_S,
                "age_s": age,
                "owner": owner or beat.get("owner", ""),
                "held": owner is not None,
            }
        return report
    finally:
        client.close()


def dispatch_marker_key(shard: str) -> str:
    return f"{PREFIX}:dispatched:{shard}"


def dispatch_lapsed(shards: list[str], *, dispatch, grace_s: float | None = None) -> list[str]:
    """Dispatch each shard that has no lease and no recent dispatch; returns the ones dispatched.

    The marker (SET NX with a TTL) keeps a queued-but-not-started task from being sent again on
    every beat; once it lapses a still-unleased shard is sent again.
    """
    client = sync_client()
    grace = grace_s or LEASE_TTL_S * 2
    sent = []
    try:
        for shard in shards:
            client.sadd(shards_key(), shard)
            if client.exists(lease_key(shard)):
                continue
            if client.set(dispatch_marker_key(shard), "1", nx=True, px=int(grace * 1000)):
                dispatch(shard)
                sent.append(shard)
        return sent
    finally:
        client.close()


def prune_shards(planned: list[str]) -> list[str]:
    """Forget shards that are no longer planned (markets removed or re-sharded) and not held,
    so /healthz does not report them as down forever."""
    client = sync_client()
    try:
        known = {s.decode() for s in client.smembers(shards_key())}
        stale = sorted(s for s in known - set(planned) if not client.exists(lease_key(s)))
        for shard in stale:
            forget_shard(shard, client)
        return stale
    finally:
        client.close()
