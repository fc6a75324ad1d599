"""Replay routes combined-stream frames by their stream name, without decoding the ones it does not use."""
from collectors.capture import CaptureLine
from collectors.replay import Replay


def frame(stream, data):
    return CaptureLine(0, b'{"stream":"' + stream + b'","data":' + data + b"}")


DIFF = b'{"e":"depthUpdate","E":1000,"s":"BTCUSDT","U":5,"u":6,"b":[["100.0","1"]],"a":[["101.0","2"]]}'
TICKER = b'{"u":6,"s":"BTCUSDT","b":"100.0","B":"1","a":"101.0","A":"2"}'


def test_frames_go_by_stream_kind_and_unused_ones_are_not_decoded():
    tickers = []
    replay = Replay(on_ticker=lambda market, ticker: tickers.append(ticker))
    replay.feed_all([
        frame(b"btcusdt@depth@100ms", DIFF),
        frame(b"btcusdt@depth20@100ms", DIFF),  # a partial-depth stream is a depth stream too
        frame(b"btcusdt@bookTicker", TICKER),
        frame(b"btcusdt@trade", b"not JSON: never decoded"),
        frame(b"!bookTicker", b"not JSON either"),  # all-market stream: no use to a book
        frame(b"btcusdt@bookTicker", b"[broken"),
    ] * 2)
    assert replay.counts["depth"] == 4 and replay.counts["bookTicker"] == 4
    assert replay.other == 4
    assert replay.counts["malformed"] == 2  # the broken ticker frames, decoded because they are used
    assert [ticker.update_id for ticker in tickers] == [6, 6]
    assert replay.markets["BTCUSDT"].sync.needs_snapshot
