"""python manage.py collect [--venue NAME] [--markets SYM ...] [--capture DIR]

Collects in the foreground (Ctrl-C stops it cleanly, flushing the sink). Without options every
planned shard runs in this process, and every active credential's user-data stream (the desk's
orders and fills); --venue keeps that venue's; --markets runs one ad-hoc shard of those markets
only. Each shard is leased exactly as a Celery worker leases it, so the same markets are never
collected twice at once.
"""
import asyncio
import signal
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from collectors import leases, userdata
from collectors.models import ExchangeCredential
from collectors.runner import plan_shards, run_collector, run_shard, shard_of
from compliance.models import Market, Venue


class Command(BaseCommand):
    help = "Collect order books (and samples) in the foreground."

    def add_arguments(self, parser):
        parser.add_argument("--venue", help="venue name, e.g. binance-spot")
        parser.add_argument("--markets", nargs="+", metavar="SYMBOL", help="symbols of that venue (needs --venue)")
        parser.add_argument("--capture", type=Path, metavar="DIR", help="also record every raw message (gzip) here")

    def handle(self, *args, venue=None, markets=None, capture=None, **options):
        shards = self._shards(venue, markets)
        if not shards:
            raise CommandError("No active markets to collect.")
        accounts = [] if markets else [
            s for s in userdata.account_shards()
            if venue is None or ExchangeCredential.objects.filter(pk=int(s.removeprefix(userdata.SHARD_PREFIX)), venue__name=venue).exists()
        ]
        for shard in shards:
            self.stdout.write(f"{shard.name}: {', '.join(m.symbol for m in shard.markets)}")
        for account in accounts:
            self.stdout.write(f"{account}: the desk's orders and fills")
        run_collector(self._run(shards + accounts, capture))

    def _shards(self, venue_name, symbols):
        if symbols and not venue_name:
            raise CommandError("--markets needs --venue (a symbol is only unique within a venue).")
        if not venue_name:
            return plan_shards()
        try:
            venue = Venue.objects.get(name=venue_name)
        except Venue.DoesNotExist:
            names = ", ".join(Venue.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"No venue named {venue_name!r} (known: {names}).") from None
        markets = list(venue.markets.filter(is_active=True).order_by("pk"))
        if symbols:
            wanted = {s.upper() for s in symbols}
            markets = [m for m in markets if m.symbol.upper() in wanted]
            missing = wanted - {m.symbol.upper() for m in markets}
            if missing:
                raise CommandError(f"{venue.name} has no active market {', '.join(sorted(missing))}.")
            return [shard_of(f"{venue.name}#cli-{'-'.join(sorted(wanted))}", venue, markets)]
        return [s for s in plan_shards() if s.venue_id == venue.pk]

    async def _run(self, shards, capture):
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await asyncio.gather(*(self._hold(shard, stop, capture) for shard in shards))

    async def _hold(self, shard, stop, capture):
        name = shard if isinstance(shard, str) else shard.name
        lease = leases.ShardLease(name)
        try:
            if not await lease.acquire({"starting": True, "foreground": True}):
                self.stderr.write(f"{name}: already collected by {await lease.redis.get(leases.lease_key(name))!r}; skipped")
                return
            if isinstance(shard, str):  # an account's user data: runs until Ctrl-C
                work = asyncio.create_task(userdata.run_account(shard, lease=lease))
                waiter = asyncio.create_task(stop.wait())
                await asyncio.wait([work, waiter], return_when=asyncio.FIRST_COMPLETED)
                for task in (work, waiter):
                    task.cancel()
                failure, _ = await asyncio.gather(work, waiter, return_exceptions=True)
                if isinstance(failure, Exception):
                    self.stderr.write(f"{name}: stopped: {failure}")
            else:
                await run_shard(shard, lease=lease, stop=stop, capture_dir=capture)
        finally:
            await lease.release()
            await lease.close()
