"""The documented local-book procedure, event by event (collectors/sync.py docstring cites it)."""
import pytest

from collectors.binance import DepthDiff, DepthSnapshot
from collectors.sync import BookSync, Outcome, UnknownInterval


def spot(first, final, bids=(), asks=(), at=None):
    return DepthDiff("BTCUSDT", first, final, None, at if at is not None else final * 10, list(bids), list(asks))


def fut(first, final, prev, bids=(), asks=(), at=None):
    return DepthDiff("BTCUSDT", first, final, prev, at if at is not None else final * 10, list(bids), list(asks))


SNAP_BIDS = [["100.00", "1"], ["99.00", "2"]]
SNAP_ASKS = [["101.00", "1"], ["102.00", "2"]]


def snap(last_id, bids=SNAP_BIDS, asks=SNAP_ASKS, limit=1000):
    return DepthSnapshot(last_id, [list(level) for level in bids], [list(level) for level in asks], limit)


def test_spot_buffers_until_snapshot_then_drops_old_and_applies_from_the_straddling_event():
    sync = BookSync(chained=False)
    assert not sync.needs_snapshot
    assert sync.diff(spot(1, 5, bids=[["100.00", "9"]])) is Outcome.BUFFERED
    assert sync.needs_snapshot
    assert sync.diff(spot(6, 12, bids=[["100.50", "3"]])) is Outcome.BUFFERED
    assert sync.diff(spot(13, 14, asks=[["101.00", "0"]])) is Outcome.BUFFERED
    # lastUpdateId 8: event 1-5 is contained in the snapshot and dropped; 6-12 straddles 9.
    assert sync.snapshot(snap(8)) is Outcome.SYNCED
    book = sync.book
    assert sync.synced and book.update_id == 14
    assert book.bid_qty == {100.5: 3.0, 100.0: 1.0, 99.0: 2.0}  # the dropped event's 9 never applied
    assert book.touch() == (100.5, 102.0)
    assert sync.unknown == [UnknownInterval(50, 120, "initial sync")]


def test_spot_snapshot_older_than_the_stream_is_refused():
    sync = BookSync(chained=False)
    sync.diff(spot(10, 12))
    # Snapshot 8 needs an event containing 9; the stream starts at 10.
    assert sync.snapshot(snap(8)) is Outcome.SNAPSHOT_TOO_OLD
    assert not sync.synced and sync.needs_snapshot
    assert sync.snapshot(snap(9)) is Outcome.SYNCED
    assert sync.book.update_id == 12


def test_snapshot_newer_than_every_buffered_event_waits_for_the_next_one():
    sync = BookSync(chained=False)
    sync.diff(spot(1, 5))
    assert sync.snapshot(snap(7)) is Outcome.SNAPSHOT_PENDING
    assert not sync.needs_snapshot  # a snapshot is in hand
    assert sync.diff(spot(6, 9, bids=[["100.00", "4"]])) is Outcome.SYNCED
    assert sync.book.bid_qty[100.0] == 4.0 and sync.book.update_id == 9


def test_spot_duplicates_and_late_events_are_ignored():
    sync = BookSync(chained=False)
    sync.diff(spot(1, 10))
    sync.snapshot(snap(10 - 1))
    assert sync.diff(spot(11, 15, bids=[["100.00", "7"]])) is Outcome.APPLIED
    assert sync.diff(spot(11, 15, bids=[["100.00", "999"]])) is Outcome.STALE  # duplicate
    assert sync.diff(spot(3, 4, bids=[["100.00", "999"]])) is Outcome.STALE  # late
    assert sync.book.bid_qty[100.0] == 7.0 and sync.synced


def test_spot_gap_resyncs_and_records_the_unknown_time():
    sync = BookSync(chained=False)
    sync.diff(spot(1, 10, at=1_000))
    sync.snapshot(snap(5))
    sync.diff(spot(11, 12, at=2_000))
    assert sync.diff(spot(14, 15, at=3_000)) is Outcome.RESYNC  # 13 missing
    assert not sync.synced and sync.resync_count == 1 and len(sync.book) == 0
    assert sync.needs_snapshot
    assert sync.open_unknown == UnknownInterval(2_000, None, "gap")
    sync.diff(spot(16, 18, at=4_000))
    # The gap-revealing event was kept: a snapshot at 14 syncs from it.
    assert sync.snapshot(snap(14)) is Outcome.SYNCED
    assert sync.book.update_id == 18
    assert sync.unknown[-1] == UnknownInterval(2_000, 3_000, "gap")
    assert sync.open_unknown is None


def test_spot_out_of_order_events_resync_rather_than_corrupt_the_book():
    sync = BookSync(chained=False)
    sync.diff(spot(1, 10))
    sync.snapshot(snap(5))
    assert sync.diff(spot(16, 20)) is Outcome.RESYNC  # arrived before 11-15
    assert sync.diff(spot(11, 15)) is Outcome.BUFFERED


def test_crossed_book_resyncs():
    sync = BookSync(chained=False)
    sync.diff(spot(1, 10, at=500))
    sync.snapshot(snap(5))
    assert sync.diff(spot(11, 11, bids=[["101.50", "1"]], at=900)) is Outcome.RESYNC
    assert not sync.synced
    assert sync.open_unknown == UnknownInterval(500, None, "crossed book")


def test_a_crossed_snapshot_does_not_count_as_synced():
    sync = BookSync(chained=False)
    sync.diff(spot(1, 10))
    assert sync.snapshot(snap(5, bids=[["103.00", "1"]])) is Outcome.RESYNC
    assert not sync.synced and sync.unknown == []


def test_futures_first_event_rule_and_pu_chaining():
    sync = BookSync(chained=True)
    sync.diff(fut(1, 4, 0))
    sync.diff(fut(5, 9, 4, asks=[["101.00", "5"]]))
    sync.diff(fut(10, 20, 9, bids=[["100.00", "0"]]))
    # Futures drop u < lastUpdateId and need U <= lastUpdateId <= u: 5-9 contains 9.
    assert sync.snapshot(snap(9)) is Outcome.SYNCED
    assert sync.book.ask_qty[101.0] == 5.0
    assert 100.0 not in sync.book.bid_qty
    assert sync.diff(fut(21, 30, 20)) is Outcome.APPLIED
    assert sync.diff(fut(21, 30, 20)) is Outcome.STALE
    assert sync.diff(fut(35, 40, 33)) is Outcome.RESYNC  # pu 33 != previous u 30
    assert sync.open_unknown.reason == "gap"


def test_futures_snapshot_too_old():
    sync = BookSync(chained=True)
    sync.diff(fut(10, 12, 9))
    assert sync.snapshot(snap(9)) is Outcome.SNAPSHOT_TOO_OLD


def test_removing_an_unknown_level_is_normal():
    sync = BookSync(chained=True)
    sync.diff(fut(1, 10, 0, bids=[["50.00", "0"]]))
    assert sync.snapshot(snap(5)) is Outcome.SYNCED
    assert sync.diff(fut(11, 12, 10, asks=[["150.00", "0.000"]])) is Outcome.APPLIED


def test_snapshot_offered_while_synced_changes_nothing():
    sync = BookSync(chained=False)
    sync.diff(spot(1, 10))
    sync.snapshot(snap(5))
    assert sync.snapshot(snap(50, bids=[["1.00", "1"]])) is Outcome.STALE
    assert sync.book.best_bid == 100.0


@pytest.mark.parametrize("limit, levels, truncated", [(1000, 2, False), (2, 2, True), (None, 2, False)])
def test_snapshot_depth_limit_sets_the_known_edges(limit, levels, truncated):
    sync = BookSync(chained=False)
    sync.diff(spot(1, 10))
    sync.snapshot(snap(5, limit=limit))
    assert sync.book.known_bid_edge == (99.0 if truncated else None)
    assert sync.book.known_ask_edge == (102.0 if truncated else None)
