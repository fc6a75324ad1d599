"""Celery doors for the collectors: long-running shard tasks and the beat-driven supervisor.

Run workers for them with, e.g.:
  celery -A config worker -Q collectors --concurrency 4 --prefetch-multiplier 1 -O fair
A shard task holds its shard's Redis lease for as long as it runs; one that finds the lease
taken returns at once, so a duplicate dispatch is harmless and a shard is never collected twice.
"""
import asyncio
import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from collectors import leases, userdata
from collectors.leases import LeaseLost
from collectors.runner import plan_shards, run_collector, run_shard

log = logging.getLogger(__name__)


async def _hold_and_run(shard: str) -> str:
    lease = leases.ShardLease(shard)
    try:
        if not await lease.acquire({"starting": True}):
            return f"{shard}: held by {await lease.redis.get(leases.lease_key(shard))!r}; not started"
        try:
            if shard.startswith(userdata.SHARD_PREFIX):
                await userdata.run_account(shard, lease=lease)
            else:
                await run_shard(shard, lease=lease)
        except LeaseLost as exc:
            log.error("%s", exc)
            return str(exc)
        except LookupError as exc:  # its markets were removed or re-sharded since the dispatch
            leases.forget_shard(shard)
            return str(exc)
        return f"{shard}: stopped"
    finally:
        await lease.release()
        await lease.close()


# acks_late off: the lease, not the broker's redelivery, is what moves a shard to a live worker.
@shared_task(name="collectors.tasks.collect_shard", acks_late=False, time_limit=None, soft_time_limit=None)
def collect_shard(shard: str) -> str:
    return run_collector(_hold_and_run(shard))


@shared_task(name="collectors.tasks.supervise", queue="default")
def supervise() -> list[str]:
    """Dispatch every planned shard whose lease lapsed (DESIGN.md: a dead worker's markets move in < 60 s)."""
    shards = [s.name for s in plan_shards()] + userdata.account_shards()
    leases.prune_shards(shards)
    return leases.dispatch_lapsed(shards, dispatch=lambda name: collect_shard.apply_async(args=[name], queue="collectors"))


@shared_task(name="collectors.tasks.poll_indicators", queue="default")
def poll_indicators() -> int:
    from collectors.indicators import poll_all

    return asyncio.run(poll_all())


@shared_task(name="collectors.tasks.maintain_partitions", queue="default")
def maintain_partitions() -> dict:
    """Partitions for today and the next days ahead; retention drops whole days past the window."""
    from compliance.partitions import drop_partitions_before, ensure_partitions
    from config.env import envint

    today = timezone.now().date()
    created = ensure_partitions(today, today + timedelta(days=envint("PARTITION_DAYS_AHEAD", 3)))
    dropped = drop_partitions_before(today - timedelta(days=envint("SAMPLE_RETENTION_DAYS", 400)))
    return {"created": created, "dropped": dropped}
