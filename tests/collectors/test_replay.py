"""python manage.py replay: CSV per event and per second, several symbols, and storing like live."""
import csv
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from collectors.capture import read_binance_capture
from collectors.replay import Replay
from collectors.sync import Outcome
from compliance.models import Market, Venue

CAPTURES = Path("/work/shared/data/binance-captures")
RECORDINGS = Path("/work/shared/data/multi-exchange-recordings")
SPOT = [str(CAPTURES / "spot_ethusdt_20240808.gz"), str(CAPTURES / "spot_ethusdt_20240809.gz")]
USDM = [str(CAPTURES / "usdm_btcusdt_20240718.gz")]


def read_csv(path):
    with open(path, newline="") as rows:
        return list(csv.reader(rows))


def test_csv_per_event(tmp_path, capsys):
    out = tmp_path / "events.csv"
    call_command("replay", *SPOT, "--format", "binance-capture", "--csv", str(out), "--per", "event")
    header, *rows = read_csv(out)
    assert header[:8] == ["update_id", "exchange_time_ms", "best_bid", "best_ask", "spread_pct",
                          "depth_bid_usd", "depth_ask_usd", "depth_complete"]
    tickers = {}
    replay = Replay(on_ticker=lambda market, ticker: tickers.__setitem__(ticker.update_id, (ticker.bid, ticker.ask)))
    for name in SPOT:
        replay.feed_all(read_binance_capture(name))
    # One row per applied diff (the few buffered before the snapshot are applied as one), across both files.
    outcomes = replay.markets["ETHUSDT"].outcomes
    assert len(rows) == outcomes[Outcome.APPLIED] + outcomes[Outcome.SYNCED] > replay.counts["depth"] - 10
    ids = [int(row[0]) for row in rows]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    matched = [row for row in rows if int(row[0]) in tickers]
    assert len(matched) > 100
    assert all((float(row[2]), float(row[3])) == tickers[int(row[0])] for row in matched)
    for row in rows[:50]:
        bid, ask = float(row[2]), float(row[3])
        assert float(row[4]) == pytest.approx((ask - bid) / ask * 100)
        assert float(row[5]) > 0 and float(row[6]) > 0 and row[7] in ("True", "False")
    assert "ETHUSDT: synced, 0 resyncs" in capsys.readouterr().out


def test_csv_per_second_with_several_symbols(tmp_path):
    out = tmp_path / "seconds.csv"
    call_command("replay", str(RECORDINGS / "BINANCE.http.0.0"), str(RECORDINGS / "BINANCE.ws.1.0"),
                 "--format", "cryptofeed", "--csv", str(out), "--per", "second")
    header, *rows = read_csv(out)
    assert header[:4] == ["symbol", "ts_ms", "valid", "update_id"]
    by_symbol = {}
    for row in rows:
        by_symbol.setdefault(row[0], []).append(row)
    assert set(by_symbol) >= {"NKNUSDT", "BLZETH", "LRCBTC"}
    nkn = by_symbol["NKNUSDT"]
    seconds = [int(row[1]) for row in nkn]
    assert all(b - a == 1000 for a, b in zip(seconds, seconds[1:]))
    valid = [row for row in nkn if row[2] == "True"]
    assert valid and all(row[header.index("depth_bid_usd")] != "" for row in valid)
    # A BTC-quoted market has no USD rate here: its USD figures are left empty, never guessed.
    lrc = [row for row in by_symbol["LRCBTC"] if row[2] == "True"]
    assert lrc and all(row[header.index("depth_bid_usd")] == "" for row in lrc)
    assert all(row[header.index("spread_ask_pct")] != "" for row in lrc)


def test_bad_arguments_are_clear_errors(tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("replay", str(tmp_path / "missing.gz"), "--format", "binance-capture", "--csv", str(tmp_path / "x"))
    with pytest.raises(CommandError, match="band-pct"):
        call_command("replay", *USDM, "--format", "binance-capture", "--csv", str(tmp_path / "x"), "--band-pct", "0")


@pytest.mark.django_db(transaction=True)
def test_storing_like_live_collection_is_idempotent(tmp_path, settings, capsys):
    settings.VAR_DIR = tmp_path
    venue = Venue.objects.create(name="Binance USDⓈ-M (replay test)", exchange="binance", market_type="usdm", tier=1,
                                 rest_base_url="https://fapi.binance.com", ws_base_url="wss://fstream.binance.com")
    market = Market.objects.create(venue=venue, symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT",
                                   tick_size=Decimal("0.1"))
    try:
        call_command("replay", *USDM, "--format", "binance-capture", "--venue-name", venue.name)
        first = capsys.readouterr().out
        call_command("replay", *USDM, "--format", "binance-capture", "--venue-name", venue.name)
        with connection.cursor() as cur:
            cur.execute("SELECT count(*), count(*) FILTER (WHERE valid), min(ts), max(ts), "
                        "bool_and(NOT depth_bid_complete) FROM compliance_sample WHERE market_id = %s", [market.pk])
            count, valid, first_ts, last_ts, all_incomplete = cur.fetchone()
            cur.execute("SELECT count(*) FROM compliance_book_snapshot WHERE market_id = %s", [market.pk])
            evidence = cur.fetchone()[0]
        assert f"{count} samples and {evidence} book snapshots stored" in first
        assert count == (last_ts - first_ts).total_seconds() + 1 > 150  # one row per second, no duplicates
        assert valid >= count - 2
        assert all_incomplete  # 1000 levels of BTCUSDT futures never reach 2 % below the mid
        assert evidence >= 2
    finally:
        with connection.cursor() as cur:
            cur.execute("DELETE FROM compliance_sample WHERE market_id = %s", [market.pk])
            cur.execute("DELETE FROM compliance_book_snapshot WHERE market_id = %s", [market.pk])
