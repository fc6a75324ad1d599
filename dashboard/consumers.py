"""WebSocket doors: the overview socket and one per market page.

Collectors publish {"type": "market.update", "payload": {...}} to the groups "overview" and
"market.<id>", one 1 s sample per market per second. A consumer sends a market's update as soon as
it arrives, at most one per market per second (Throttle), judged server-side
(selectors.live_update → the compliance engine): the book's KPIs and the market's overall status;
a market whose data stops is sent again once it turns stale. The page only renders.
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
TICK_SECONDS = 0.1  # how late a held-back update may go out after it is allowed


def sample_time(payload: dict) -> float:
    """A live payload's sample instant, epoch seconds (collectors send ISO text)."""
    ts = payload.get("ts")
    if isinstance(ts, str):
        return datetime.fromisoformat(ts).timestamp()
    if isinstance(ts, datetime):
        return ts.timestamp()
    return float(ts or 0.0)


class Throttle:
    """Which markets' updates may go to one browser now: at most one per market per second.

    The second is counted on the samples' own clock: an update whose sample is at least `interval`
    later than the last one sent for its market goes out at once (it is the next second's data),
    unless the last send was under interval/2 ago (bunched deliveries: the newest is held). Anything
    else — a newer state of a second already sent — is held and goes out `interval` after the
    last send; an update older than the one sent is dropped. Counting on the wall clock instead
    ("≥ 1 s since the last send") would hold back every sample that arrives a few ms earlier
    in its second than the previous one did, and since samples come exactly once a second, that
    delay would ratchet up to the worst delivery jitter seen and stay there.

    `clock` is a monotonic clock in seconds (injectable for tests); sample times are epoch seconds.
    """

    def __init__(self, interval: float = MIN_INTERVAL_SECONDS, clock=time.monotonic):
        self.interval, self.clock = interval, clock
        self.held: dict[int, tuple[float, dict]] = {}  # market -> (sample time, payload)
        self.sent: dict[int, tuple[float, float]] = {}  # market -> (sample time, clock at send)

    def offer(self, key: int, sample: float, payload: dict) -> None:
        held = self.held.get(key)
        last = self.sent.get(key)
        if (held is None or sample >= held[0]) and (last is None or sample >= last[0]):
            self.held[key] = (sample, payload)

    def allowed_at(self, key: int) -> float:
        """When the market's held update may go (clock time)."""
        sample, _ = self.held[key]
        last = self.sent.get(key)
        if last is None:
            return float("-inf")
        next_second = sample >= last[0] + self.interval
        return last[1] + (self.interval / 2 if next_second else self.interval)

    def take(self, among=None) -> dict[int, dict]:
        """The held updates allowed now (of the markets `among`, if given), counted as sent now."""
        now = self.clock()
        due = {}
        for key in [k for k in self.held if (among is None or k in among) and self.allowed_at(k) <= now]:
            sample, payload = self.held.pop(key)
            self.sent[key] = (sample, now)
            due[key] = payload
        return due

    def may_resend(self, key: int) -> bool:
        """A status change of the sample already sent (it turned stale) goes once the interval has passed."""
        last = self.sent.get(key)
        return key not in self.held and (last is None or self.clock() >= last[1] + self.interval)

    def resent(self, key: int) -> None:
        sample = self.sent[key][0] if key in self.sent else float("-inf")
        self.sent[key] = (sample, self.clock())


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
    """Sends each market's newest payload judged, at most once per second (Throttle)."""

    market_ids: list[int] | None = None  # None: every active market
    # How long an arriving update waits for others to share its message: the overview gets a burst
    # of every market's sample each second, a market page one update.
    batch_seconds = 0.0

    async def connect(self):
        self.throttle = Throttle()
        self.latest: dict[int, dict] = {}  # the last payload sent per market, to notice it going stale
        self.stale_sent: set[int] = set()
        self.verdicts: dict[int, dict] = {}
        self.verdicts_minute = None
        self.reloading = self.flusher = self.batch = None
        await super().connect()
        if self.scope.get("user") is not None and self.scope["user"].is_authenticated:
            self.latest = await database_sync_to_async(self.load)(with_samples=True)
            self.flusher = asyncio.create_task(self.flush_forever())

    def load(self, *, with_samples: bool = False) -> dict[int, dict]:
        now = timezone.now()
        ids = self.market_ids if self.market_ids is not None else list(active_markets().values_list("id", flat=True))
        self.verdicts, self.verdicts_minute = selectors.verdicts(ids, now=now), now.replace(second=0, microsecond=0)
        return latest_samples(market_ids=ids, now=now) if with_samples else {}

    async def reload(self):
        try:
            await database_sync_to_async(self.load)()
        finally:
            self.reloading = None
        for market_id in [i for i in self.throttle.held if i not in self.verdicts]:
            del self.throttle.held[market_id]  # not a monitored market: nothing to judge it against

    async def disconnect(self, code):
        for task in (self.flusher, self.batch, self.reloading):
            if task is not None:
                task.cancel()
        await super().disconnect(code)

    async def market_update(self, event):
        payload = event["payload"]
        self.throttle.offer(int(payload["market_id"]), sample_time(payload), payload)
        if not self.batch_seconds:
            await self.flush(check_stale=False)
        elif self.batch is None:
            self.batch = asyncio.create_task(self.flush_batch())

    async def flush_batch(self):
        await asyncio.sleep(self.batch_seconds)
        self.batch = None
        await self.flush(check_stale=False)

    async def flush_forever(self):
        ticks = 0
        while True:
            await asyncio.sleep(TICK_SECONDS)
            ticks += 1
            await self.flush(check_stale=ticks % round(1 / TICK_SECONDS) == 0)

    async def flush(self, *, check_stale: bool):
        now = timezone.now()
        if self.reloading is None and (now.replace(second=0, microsecond=0) != self.verdicts_minute
                                       or any(i not in self.verdicts for i in self.throttle.held)):
            # The engine's verdicts move once a minute (cached for everyone); a market added since joins
            # with them. Read in the background: updates meanwhile are judged against the last minute's.
            self.reloading = asyncio.create_task(self.reload())
        due = self.throttle.take(among=self.verdicts)
        for market_id, payload in due.items():
            self.latest[market_id] = payload
            self.stale_sent.discard(market_id)
        stale_after = settings.STALE_AFTER_SECONDS
        for market_id, payload in self.latest.items() if check_stale else ():  # data stopped: say so once
            if market_id not in due and market_id not in self.stale_sent and market_id in self.verdicts:
                ts = payload.get("ts")
                ts = datetime.fromisoformat(ts) if isinstance(ts, str) else ts
                if (ts is None or (now - ts).total_seconds() > stale_after) and self.throttle.may_resend(market_id):
                    due[market_id] = payload
                    self.throttle.resent(market_id)
                    self.stale_sent.add(market_id)
        if not due:
            return
        updates = [selectors.live_update(self.latest[i], self.verdicts[i], now=now) for i in due]
        await self.send(text_data=json.dumps({"type": "updates", "updates": updates}, cls=DjangoJSONEncoder))


class OverviewConsumer(CoalescingConsumer):
    batch_seconds = 0.05

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
