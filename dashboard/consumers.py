"""WebSocket doors: the overview socket and one per market page.

Collectors publish {"type": "market.update", "payload": {...}} to the groups "overview" and
"market.<id>". A consumer keeps only the newest payload per market and sends it on the next tick
(every TICK_SECONDS) unless that market was sent less than MIN_INTERVAL_SECONDS ago (then on a
later tick), so a browser gets at most one update per market per second however fast the
collectors publish. Each update is
judged server-side (selectors.live_update → the compliance engine): the book's KPIs and the
market's overall status; a market whose data stops is sent again once it turns stale. The page
only renders.
"""
import asyncio
import json
import time
from datetime import datetime

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from compliance.selectors import active_markets, latest_samples

from . import selectors

MIN_INTERVAL_SECONDS = 1.0  # per market
TICK_SECONDS = 0.1  # how late a held-back update may go out


class LoginRequiredConsumer(AsyncJsonWebsocketConsumer):
    """Base for every socket: refuses anonymous users before accepting."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        for group in self.subscriptions():
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        user = self.scope.get("user")
        if user is not None and user.is_authenticated:
            for group in self.subscriptions():
                await self.channel_layer.group_discard(group, self.channel_name)

    def subscriptions(self) -> list[str]:
        return []


class CoalescingConsumer(LoginRequiredConsumer):
    """Holds the newest payload per market; sends each judged, at most once per second."""

    market_ids: list[int] | None = None  # None: every active market

    async def connect(self):
        self.pending: dict[int, dict] = {}
        self.latest: dict[int, dict] = {}  # the last payload sent per market, to notice it going stale
        self.sent_at: dict[int, float] = {}
        self.stale_sent: set[int] = set()
        self.verdicts: dict[int, dict] = {}
        self.verdicts_minute = None
        self.flusher = None
        await super().connect()
        if self.scope.get("user") is not None and self.scope["user"].is_authenticated:
            self.latest = await database_sync_to_async(self.load)()
            self.flusher = asyncio.create_task(self.flush_forever())

    def load(self) -> dict[int, dict]:
        now = timezone.now()
        ids = self.market_ids if self.market_ids is not None else list(active_markets().values_list("id", flat=True))
        self.verdicts, self.verdicts_minute = selectors.verdicts(ids, now=now), now.replace(second=0, microsecond=0)
        return latest_samples(market_ids=ids, now=now)

    async def disconnect(self, code):
        if self.flusher is not None:
            self.flusher.cancel()
        await super().disconnect(code)

    async def market_update(self, event):
        payload = event["payload"]
        self.pending[int(payload["market_id"])] = payload

    async def flush_forever(self):
        ticks = 0
        while True:
            await asyncio.sleep(TICK_SECONDS)
            ticks += 1
            await self.flush(check_stale=ticks % round(1 / TICK_SECONDS) == 0)

    async def flush(self, *, check_stale: bool):
        now = timezone.now()
        if now.replace(second=0, microsecond=0) != self.verdicts_minute or any(i not in self.verdicts for i in self.pending):
            # The engine's verdicts move once a minute (cached for everyone); a market added since joins here.
            await database_sync_to_async(self.load)()
            for market_id in [i for i in self.pending if i not in self.verdicts]:
                del self.pending[market_id]  # not a monitored market: nothing to judge it against
        clock = time.monotonic()
        due = [i for i in self.pending if clock - self.sent_at.get(i, 0.0) >= MIN_INTERVAL_SECONDS and i in self.verdicts]
        for market_id in due:
            self.latest[market_id] = self.pending.pop(market_id)
            self.stale_sent.discard(market_id)
        stale_after = settings.STALE_AFTER_SECONDS
        for market_id, payload in self.latest.items() if check_stale else ():  # data stopped: say so once
            if market_id not in due and market_id not in self.stale_sent and market_id in self.verdicts:
                ts = payload.get("ts")
                ts = datetime.fromisoformat(ts) if isinstance(ts, str) else ts
                if ts is None or (now - ts).total_seconds() > stale_after:
                    due.append(market_id)
                    self.stale_sent.add(market_id)
        if not due:
            return
        updates = [selectors.live_update(self.latest[i], self.verdicts[i], now=now) for i in due]
        for market_id in due:
            self.sent_at[market_id] = clock
        await self.send(text_data=json.dumps({"type": "updates", "updates": updates}, cls=DjangoJSONEncoder))


class OverviewConsumer(CoalescingConsumer):
    def subscriptions(self):
        return ["overview"]


class MarketConsumer(CoalescingConsumer):
    def subscriptions(self):
        return [f"market.{self.market_id}"]

    @property
    def market_id(self) -> int:
        return int(self.scope["url_route"]["kwargs"]["market_id"])

    async def connect(self):
        self.market_ids = [self.market_id]
        await super().connect()
