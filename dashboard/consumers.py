"""WebSocket doors: the overview socket and one per market page.

Collectors publish {"type": "market.update", "payload": {...}} to the groups "overview" and
"market.<id>". A consumer keeps only the newest payload per market and flushes once per
FLUSH_SECONDS, so a browser gets at most one update per market per second however fast the
collectors publish; each payload is judged against the obligation in force (selectors).
"""
import asyncio
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.utils import timezone

from . import selectors

FLUSH_SECONDS = 1.0
LIMITS_REFRESH_SECONDS = 60.0


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
    """Holds the newest payload per market; a flusher sends them judged, at most once per second each."""

    market_ids: list[int] | None = None  # None: every active market

    async def connect(self):
        self.pending: dict[int, dict] = {}
        self.limits: dict[int, dict | None] = {}
        self.limits_loaded_at = 0.0
        self.flusher = None
        await super().connect()
        if self.scope.get("user") is not None and self.scope["user"].is_authenticated:
            await self.refresh_limits()
            self.flusher = asyncio.create_task(self.flush_forever())

    async def disconnect(self, code):
        if self.flusher is not None:
            self.flusher.cancel()
        await super().disconnect(code)

    async def refresh_limits(self):
        self.limits = await database_sync_to_async(selectors.limits_for_markets)(self.market_ids, now=timezone.now())
        self.limits_loaded_at = time.monotonic()

    async def market_update(self, event):
        payload = event["payload"]
        self.pending[int(payload["market_id"])] = payload

    async def flush_forever(self):
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            if not self.pending:
                continue
            batch, self.pending = self.pending, {}
            stale_limits = time.monotonic() - self.limits_loaded_at > LIMITS_REFRESH_SECONDS
            if stale_limits or any(i not in self.limits for i in batch):  # an edit, or a market added since
                await self.refresh_limits()
                for market_id in batch:  # inactive or unknown: judged without limits until the next refresh
                    self.limits.setdefault(market_id, None)
            now = timezone.now()
            updates = [selectors.live_update(p, self.limits.get(i), now=now) for i, p in batch.items()]
            await self.send_json({"type": "updates", "updates": updates})


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
