"""Capture readers for both recorded formats, garbage lines, and the raw-capture writer."""
import gzip
import heapq
from pathlib import Path

import pytest

from collectors.capture import CaptureStats, CaptureWriter, read_binance_capture, read_cryptofeed, to_ns
from collectors.replay import Replay

CAPTURES = Path("/work/shared/data/binance-captures")
RECORDINGS = Path("/work/shared/data/multi-exchange-recordings")


def first_lines(path, count):
    with gzip.open(path, "rb") as lines:
        return [next(lines) for _ in range(count)]


def test_binance_capture_times_are_nanoseconds_whatever_the_file_used():
    ns_line = next(read_binance_capture(CAPTURES / "spot_btcusdt_20240808.gz"))
    us_line = next(read_binance_capture(CAPTURES / "usdm_btcusdt_20230404.dat.gz"))
    assert ns_line.recv_ns == 1723161253937085768
    assert us_line.recv_ns == 1680652700423575 * 1000
    assert us_line.raw.startswith(b'{"stream":"btcusdt@bookTicker"')
    assert to_ns(1680652700423) == 1680652700423 * 1_000_000
    with pytest.raises(ValueError):
        to_ns(12345)


def test_garbage_lines_are_counted_and_skipped(tmp_path):
    good = first_lines(CAPTURES / "spot_btcusdt_20240808.gz", 40)
    garbage = [
        b"\n",
        b"not a capture line\n",
        b"1723161253937085768\n",
        b"17231612539370x5768 {}\n",
        b'1723161253937085768 {"stream":"btcusdt@depth@100ms","data":{"e":"depthUp\n',  # cut short
        b'1723161253937085768 {"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","s":"BTCUSDT"}}\n',
        b"\xff\xfe\x00 binary\n",
        b"42 {}\n",  # a time that is no epoch
    ]
    mixed = good[:10] + garbage + good[10:]
    path = tmp_path / "mixed.gz"
    with gzip.open(path, "wb") as out:
        out.writelines(mixed)

    stats = CaptureStats()
    replay = Replay().feed_all(read_binance_capture(path, stats))
    assert stats.lines == len(mixed)
    assert stats.garbage == 5  # the blank line is skipped silently; the two broken JSON lines reach the parser
    assert stats.records == len(good) + 2
    assert replay.counts["malformed"] == 2
    assert any("depthUpdate without" in text for text in replay.malformed_examples)
    clean = Replay().feed_all(read_binance_capture(path))
    assert clean.markets["BTCUSDT"].sync.book.touch() == replay.markets["BTCUSDT"].sync.book.touch()


def test_cryptofeed_reader_yields_rest_bodies_with_their_url_and_frames_without():
    stats = CaptureStats()
    lines = list(read_cryptofeed(RECORDINGS / "BINANCE_FUTURES.http.0.0", stats))
    assert stats.garbage == 0 and len(lines) == 4
    assert lines[0].url == "https://fapi.binance.com/fapi/v1/depth?symbol=SUSHIUSDT&limit=1000"
    assert lines[0].recv_ns == 1626992741301402000
    frames = list(read_cryptofeed(RECORDINGS / "BINANCE.ws.1.0"))
    assert frames and all(line.url is None for line in frames)


def test_cryptofeed_garbage_lines(tmp_path):
    text = (RECORDINGS / "BINANCE.ws.1.0").read_bytes().splitlines(keepends=True)
    path = tmp_path / "BINANCE.ws"
    path.write_bytes(b"".join(text[:20] + [b"garbage\n", b"1633998512.1: not json\n", b"-> 12: {}\n"] + text[20:]))
    stats = CaptureStats()
    records = list(read_cryptofeed(path, stats))
    assert stats.garbage == 3
    assert len(records) == len(list(read_cryptofeed(RECORDINGS / "BINANCE.ws.1.0")))


@pytest.mark.parametrize(
    "files",
    [
        ["BINANCE-b38f7c.0"],
        ["BINANCE.http.0.0", "BINANCE.ws.1.0"],
        ["BINANCE_FUTURES-1125a2.0"],
        ["BINANCE_FUTURES.http.0.0", "BINANCE_FUTURES.ws.1.0"],
        ["BINANCE_DELIVERY.http.0.0", "BINANCE_DELIVERY.ws.1.0"],
        ["BINANCE_US.http.0.0", "BINANCE_US.ws.1.0"],
    ],
)
def test_cryptofeed_recordings_rebuild_every_symbol_to_the_exchange_touch(files):
    rebuilt = {}
    exchange = {}
    replay = Replay(
        on_event=lambda market: rebuilt.__setitem__((market.symbol, market.sync.book.update_id), market.sync.book.touch()),
        on_ticker=lambda market, ticker: exchange.__setitem__((ticker.symbol, ticker.update_id), (ticker.bid, ticker.ask)),
    )
    stats = CaptureStats()
    replay.feed_all(heapq.merge(*(read_cryptofeed(RECORDINGS / name, stats) for name in files), key=lambda line: line.recv_ns))
    assert stats.garbage == 0 and replay.counts["malformed"] == 0
    assert len(replay.markets) >= 4
    assert all(market.sync.synced and market.sync.resync_count == 0 for market in replay.markets.values())
    compared = set(rebuilt) & set(exchange)
    assert len(compared) > 20
    assert [key for key in compared if rebuilt[key] != exchange[key]] == []


def test_writer_round_trips_through_the_reader(tmp_path):
    originals = list(read_binance_capture(CAPTURES / "usdm_btcusdt_20240718.gz"))[:500]
    path = tmp_path / "capture.gz"
    with CaptureWriter(path) as writer:
        for line in originals[:300]:
            writer.write(line.recv_ns, line.raw)
    with CaptureWriter(path) as writer:  # a restarted collector appends
        for line in originals[300:]:
            writer.write(line.recv_ns, line.raw.decode())
        writer.write(originals[-1].recv_ns + 1, b'{"lastUpdateId": 1,\n "bids": [], "asks": []}')
    back = list(read_binance_capture(path))
    assert back[:500] == originals
    assert back[500].raw == b'{"lastUpdateId": 1, "bids": [], "asks": []}'
