"""Keeping a local book in sync with a Binance diff stream: the documented procedure as a pure
state machine (no I/O; the caller fetches snapshots when told to).

Sources (reference/binance-api):
- spot: binance_spot_api_docs_web_socket_streams.md, "How to manage a local order book correctly";
- futures: derivatives_usds_margined_futures_websocket_market_streams_How_to_manage_a_local_order_book_correctly.md.

Procedure, as implemented:
1. Buffer diffs until a snapshot is loaded (``needs_snapshot`` says when to fetch one).
2. Drop buffered events the snapshot already contains: spot u <= lastUpdateId; futures u < lastUpdateId.
3. First-event rule: spot U <= lastUpdateId + 1 <= u; futures U <= lastUpdateId <= u. If the first
   remaining event starts after that, the snapshot is older than the stream: fetch another.
   If no event remains yet, the snapshot waits for the next diff.
4. Then every event: spot — ignore u <= local id (duplicate or old), gap if U > local id + 1
   (the page's step 2 says "U > local id", which taken literally would reject every contiguous
   event; the continuity it means is U == previous u + 1); futures — ignore u <= local id, gap if
   pu != previous u.
5. A gap, a level that is no price/quantity, or a book that ends an event crossed (best bid >=
   best ask) discards the book: back to buffering, and the time from the last good event to the
   next good sync is recorded as unknown (``unknown``, ``open_unknown``).
"""
from collections import deque
from dataclasses import dataclass
from enum import Enum

from collectors.book import OrderBook


class Outcome(Enum):
    BUFFERED = "buffered"  # not synced: kept for after the snapshot
    APPLIED = "applied"
    STALE = "stale"  # already contained in the book (duplicate or late): ignored
    RESYNC = "resync"  # gap, malformed diff or crossed book: book discarded, fetch a new snapshot
    SYNCED = "synced"  # snapshot accepted and buffered events applied
    SNAPSHOT_PENDING = "snapshot_pending"  # snapshot newer than every buffered event: wait for the next
    SNAPSHOT_TOO_OLD = "snapshot_too_old"  # the stream starts after it: fetch another
    SNAPSHOT_REJECTED = "snapshot_rejected"  # a level that is no price/quantity: fetch another

    # Members are singletons: the identity hash is right, and C-level (Enum's hashes the name in
    # Python, which a per-event tally of outcomes pays for every diff).
    __hash__ = object.__hash__


@dataclass(frozen=True, slots=True)
class UnknownInterval:
    """Exchange time (ms) during which the book was not known; end None while still open."""

    start_ms: int | None
    end_ms: int | None
    reason: str


class BookSync:
    """One market's book and its sync state. Feed it every diff and every snapshot, in order."""

    def __init__(self, *, chained, max_buffer=10_000):
        self.chained = chained
        self.book = OrderBook()
        self.synced = False
        self.unknown = []  # closed UnknownIntervals, oldest first
        self.resync_count = 0
        self.rejected = deque(maxlen=20)  # why recent diffs or snapshots were unusable
        self._buffer = deque(maxlen=max_buffer)
        self._pending = None  # a snapshot waiting for its first event
        self.last_event_ms = None  # exchange time (E) of the last applied event
        self._unknown_since_ms = None
        self._unknown_reason = "initial sync"

    @property
    def needs_snapshot(self):
        """True when the caller should fetch a REST snapshot now (events buffered, none pending)."""
        return not self.synced and self._pending is None and bool(self._buffer)

    @property
    def open_unknown(self):
        """The unknown interval in progress, or None while synced."""
        if self.synced:
            return None
        return UnknownInterval(self._unknown_since_ms, None, self._unknown_reason)

    def diff(self, event):
        if self.synced:
            # Step 4, inline: this runs for every event of every market.
            last_id = self.book.update_id
            if event.final_id <= last_id:
                return Outcome.STALE
            if (event.prev_final_id != last_id) if self.chained else (event.first_id > last_id + 1):
                self._lose_sync("gap", event)
                return Outcome.RESYNC
            return self._apply_levels(event)
        if self._unknown_since_ms is None and not self.unknown:
            self._unknown_since_ms = event.event_time_ms
        self._buffer.append(event)
        if self._pending is not None:
            return self._try_sync()
        return Outcome.BUFFERED

    def snapshot(self, snapshot):
        """Offer a REST snapshot (collectors.binance.DepthSnapshot)."""
        if self.synced:
            # A snapshot the procedure did not ask for: the book is already exact.
            return Outcome.STALE
        self._pending = snapshot
        return self._try_sync()

    def _try_sync(self):
        last_id = self._pending.last_update_id
        buffer = self._buffer
        if self.chained:
            while buffer and buffer[0].final_id < last_id:
                buffer.popleft()
            if not buffer:
                return Outcome.SNAPSHOT_PENDING
            first_ok = buffer[0].first_id <= last_id
        else:
            while buffer and buffer[0].final_id <= last_id:
                buffer.popleft()
            if not buffer:
                return Outcome.SNAPSHOT_PENDING
            first_ok = buffer[0].first_id <= last_id + 1
        if not first_ok:
            self._pending = None
            return Outcome.SNAPSHOT_TOO_OLD
        snapshot, self._pending = self._pending, None
        try:
            self.book.load_snapshot(snapshot.last_update_id, snapshot.bids, snapshot.asks, snapshot.limit)
        except (ValueError, TypeError) as exc:
            self.book.clear()
            self.rejected.append(f"snapshot {snapshot.last_update_id}: {exc}")
            return Outcome.SNAPSHOT_REJECTED
        events = list(buffer)
        buffer.clear()
        if self._apply_levels(events[0]) is Outcome.RESYNC:
            buffer.extend(events[1:])
            return Outcome.RESYNC
        self._mark_synced(events[0].event_time_ms)
        for position, event in enumerate(events[1:], 2):
            if self.diff(event) is Outcome.RESYNC:  # synced now: diff() applies it
                # Later buffered events are kept: one may be the first event after the next snapshot.
                buffer.extend(events[position:])
                return Outcome.RESYNC
        return Outcome.SYNCED

    def _apply_levels(self, event):
        book = self.book
        try:
            book.apply(event.bids, event.asks, event.final_id)
        except (ValueError, TypeError) as exc:
            # Part of the event may be applied already: the book is no longer the exchange's.
            self.rejected.append(f"{event!r}: {exc}")
            self._lose_sync("malformed diff", None)
            return Outcome.RESYNC
        if book.crossed():
            self._lose_sync("crossed book", None)
            return Outcome.RESYNC
        self.last_event_ms = event.event_time_ms
        return Outcome.APPLIED

    def _mark_synced(self, event_time_ms):
        if self.synced:
            return
        self.synced = True
        self.unknown.append(UnknownInterval(self._unknown_since_ms, event_time_ms, self._unknown_reason))
        self._unknown_since_ms = None

    def _lose_sync(self, reason, event):
        if self.synced:
            self._unknown_since_ms = self.last_event_ms
        self.synced = False
        self.resync_count += 1
        self._unknown_reason = reason
        self.book.clear()
        if event is not None:
            self._buffer.append(event)
