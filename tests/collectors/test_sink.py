"""The sink against the real Postgres: COPY, idempotent replay, partitions on demand, and a real outage."""
import time
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from django.db import connection

from collectors.sink import SAMPLE_COLUMNS, TimeSeriesSink
from tests.collectors.live_support import TcpProxy

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2026, 3, 1, 23, 59, 50, tzinfo=timezone.utc)  # crosses midnight: two partitions


def sample_row(market_id: int, ts: datetime, bid: float = 100.0) -> tuple:
    values = dict.fromkeys(SAMPLE_COLUMNS)
    values.update(
        market_id=market_id, ts=ts, valid=True, update_id=int(ts.timestamp()), best_bid=bid, best_ask=bid + 0.1,
        mid=bid + 0.05, spread_ask_pct=0.1 / (bid + 0.1) * 100, spread_mid_pct=0.1 / (bid + 0.05) * 100,
        band_pct=2.0, depth_bid_usd=30_000.0, depth_ask_usd=31_000.0, depth_bid_complete=True, depth_ask_complete=False,
        slip_buy_pct=0.02, slip_sell_pct=None,
    )
    return tuple(values[c] for c in SAMPLE_COLUMNS)


def stored(market_ids) -> int:
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM compliance_sample WHERE market_id = ANY(%s)", [list(market_ids)])
        return cur.fetchone()[0]


@pytest.fixture(autouse=True)
def empty_tables():
    yield
    with connection.cursor() as cur:
        cur.execute("TRUNCATE compliance_sample, compliance_book_snapshot, compliance_minute_dirty")


def test_copy_writes_rows_into_daily_partitions_and_replay_adds_nothing(tmp_path):
    rows = [sample_row(m, T0 + timedelta(seconds=s)) for m in (1, 2) for s in range(20)]
    sink = TimeSeriesSink(name="t", spill_dir=tmp_path)
    sink.accept_samples(rows)
    sink.accept_snapshots([(1, T0, 42, [["100.0", "1.5"]], [["100.1", "2"]])])
    assert sink.flush()
    assert stored([1, 2]) == 40
    with connection.cursor() as cur:
        cur.execute("SELECT tableoid::regclass::text, count(*) FROM compliance_sample GROUP BY 1 ORDER BY 1")
        assert cur.fetchall() == [("compliance_sample_p20260301", 20), ("compliance_sample_p20260302", 20)]
        cur.execute("SELECT spread_ask_pct, slip_sell_pct, depth_ask_complete FROM compliance_sample WHERE market_id=1 AND ts=%s", [T0])
        spread, slip_sell, complete = cur.fetchone()
        assert spread == pytest.approx(0.1 / 100.1 * 100) and slip_sell is None and complete is False
        cur.execute("SELECT bids->0->>0, asks->0->>1 FROM compliance_book_snapshot")
        assert cur.fetchall() == [("100.0", "2")]
    sink.close()

    replay = TimeSeriesSink(name="t2", spill_dir=tmp_path / "b")
    replay.accept_samples(rows + [sample_row(1, T0 + timedelta(seconds=20))])
    replay.accept_snapshots([(1, T0, 42, [], [])])
    assert replay.close()
    assert stored([1, 2]) == 41  # the replayed 40 were ignored, the new second stored


def test_rejects_a_malformed_row_with_a_clear_error(tmp_path):
    sink = TimeSeriesSink(name="t", spill_dir=tmp_path)
    with pytest.raises(ValueError, match="aware datetime ts"):
        sink.accept_samples([sample_row(1, T0.replace(tzinfo=None))])
    with pytest.raises(ValueError, match="20 values"):
        sink.accept_samples([(1, T0, True)])
    assert sink.pending_rows() == 0
    sink.close()


def run_outage(tmp_path, *, outage_s: float, restart_during_outage: bool) -> tuple[int, int]:
    """Produce rows every 50 ms while the sink's Postgres connection is cut for `outage_s`."""
    port = connection.settings_dict["PORT"] or 5432
    proxy = TcpProxy(int(port)).start()
    db = connection.settings_dict
    conninfo = psycopg.conninfo.make_conninfo(
        host="127.0.0.1", port=proxy.port, user=db["USER"], dbname=db["NAME"], connect_timeout=2
    )
    sink = TimeSeriesSink(name="outage", conninfo=conninfo, spill_dir=tmp_path, spill_after_s=1.0)
    produced, tick = 0, 0
    markets = range(100, 110)

    def produce_for(seconds):
        nonlocal produced, tick
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            sink.accept_samples([sample_row(m, T0 + timedelta(seconds=tick)) for m in markets])
            produced += len(markets)
            tick += 1
            sink.flush()
            time.sleep(0.05)

    try:
        produce_for(1.0)
        assert stored(markets) == produced
        proxy.stop()
        produce_for(outage_s / 2)
        assert sink.failing_since is not None and sink.pending_rows() > 0
        assert any(tmp_path.glob("*.jsonl")), "an outage longer than spill_after_s spills to disk"
        if restart_during_outage:
            assert not sink.close()  # cannot write: everything goes to disk
            sink = TimeSeriesSink(name="outage", conninfo=conninfo, spill_dir=tmp_path, spill_after_s=1.0)
            assert sink.pending_rows() == produced - stored(markets)
        produce_for(outage_s / 2)
        proxy.start()
        produce_for(1.0)
        deadline = time.monotonic() + 10
        while not sink.flush() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sink.pending_rows() == 0 and not list(tmp_path.glob("*.jsonl"))
        return produced, stored(markets)
    finally:
        sink.close()
        proxy.stop()


def test_connection_cut_mid_run_loses_nothing(tmp_path):
    produced, count = run_outage(tmp_path, outage_s=6, restart_during_outage=False)
    assert count == produced


def test_restart_during_the_outage_recovers_the_disk_spill(tmp_path):
    produced, count = run_outage(tmp_path, outage_s=6, restart_during_outage=True)
    assert count == produced


@pytest.mark.slow
def test_thirty_second_outage_loses_nothing(tmp_path):
    produced, count = run_outage(tmp_path, outage_s=30, restart_during_outage=True)
    assert count == produced
