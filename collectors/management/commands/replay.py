"""python manage.py replay --format binance-capture FILE [FILE ...] [--csv OUT --per event|second]

Feeds recorded raw messages through the collectors' parsing, book and sampling code
(collectors/replay.py). binance-capture files are one symbol's, in order (a *_0809 file
continues the previous day's); cryptofeed files may hold several symbols and are merged by
receive time. With --csv, writes rows per applied diff event or per 1 s sample; without it,
stores samples and book evidence like live collection (collectors/sink.py), for markets that
exist in the database.
"""
import csv
import heapq
from itertools import chain

from django.core.management.base import BaseCommand, CommandError

from collectors import binance
from collectors.capture import READERS, CaptureStats
from collectors.replay import Replay
from collectors.sampler import Sample, Sampler

EVENT_HEADER = ["update_id", "exchange_time_ms", "best_bid", "best_ask", "spread_pct", "depth_bid_usd",
                "depth_ask_usd", "depth_complete", "symbol"]
FLUSH_EVERY = 10_000  # samples per COPY batch when storing
SECOND_HEADER = ["symbol", "ts_ms"] + [name for name in Sample._fields if name not in ("market_id", "ts")]


def _cell(value):
    return "" if value is None else value


class Command(BaseCommand):
    help = "Replay recorded order-book messages through the collector's book and sampler."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+")
        parser.add_argument("--format", required=True, choices=sorted(READERS))
        parser.add_argument("--venue", choices=sorted(binance.MARKET_KINDS),
                            help="sequencing rule to apply (default: futures when diffs carry `pu`, else spot)")
        parser.add_argument("--csv", metavar="OUT", help="write rows to this CSV file instead of storing samples")
        parser.add_argument("--per", choices=("event", "second"), default="event", help="CSV rows per (default event)")
        parser.add_argument("--band-pct", type=float, default=2.0, help="depth band around the mid, %% (default 2)")
        parser.add_argument("--venue-name", help="with storing: the Venue whose markets the symbols are")

    def handle(self, *args, **options):
        if options["band_pct"] <= 0 or options["band_pct"] >= 100:
            raise CommandError("--band-pct must be between 0 and 100.")
        stats = CaptureStats()
        reader = READERS[options["format"]]
        try:
            for path in options["files"]:
                open(path, "rb").close()
        except OSError as exc:
            raise CommandError(f"Cannot read {exc.filename}: {exc.strerror}.") from None
        readers = [reader(path, stats) for path in options["files"]]
        if options["format"] == "cryptofeed":
            lines = heapq.merge(*readers, key=lambda line: line.recv_ns)
        else:
            lines = chain.from_iterable(readers)
        kind = binance.MARKET_KINDS[options["venue"]] if options["venue"] else None
        band_pct = options["band_pct"]

        if options["csv"]:
            with open(options["csv"], "w", newline="") as out:
                replay = self._to_csv(csv.writer(out), options["per"], kind, band_pct)
                replay.feed_all(lines)
            written = f"CSV rows per {options['per']} written to {options['csv']}"
        else:
            replay, sink, markets = self._to_sink(kind, band_pct, options["venue_name"])
            try:
                replay.feed_all(lines)
            finally:
                stored = sink.close()
            unknown = sorted(set(replay.markets) - set(markets))
            if unknown:
                self.stderr.write(f"Not stored (no such market in the database): {', '.join(unknown)}")
            if not stored:
                raise CommandError(f"Postgres unavailable ({sink.last_error}); rows spilled to {sink.spill_dir}.")
            written = f"{sink.accepted['sample']} samples and {sink.accepted['snapshot']} book snapshots stored"

        self.stdout.write(self._summary(replay, stats) + f"; {written}.")

    def _to_csv(self, writer, per, kind, band_pct):
        sampler = Sampler(0, band_pct=band_pct)
        if per == "event":
            writer.writerow(EVENT_HEADER)

            def on_event(market):
                sync = market.sync
                sample = sampler.sample(sync, sync.last_event_ms, quote_usd=market.quote_usd)
                complete = None
                if sample.depth_bid_complete is not None:
                    complete = sample.depth_bid_complete and sample.depth_ask_complete
                writer.writerow([sync.book.update_id, sync.last_event_ms, _cell(sample.best_bid), _cell(sample.best_ask),
                                 _cell(sample.spread_ask_pct), _cell(sample.depth_bid_usd), _cell(sample.depth_ask_usd),
                                 _cell(complete), market.symbol])

            return Replay(kind=kind, on_event=on_event)

        writer.writerow(SECOND_HEADER)

        def on_sample(market, sample):
            ts_ms = round(sample.ts.timestamp() * 1000)
            writer.writerow([market.symbol, ts_ms] + [_cell(value) for value in sample[2:]])

        return Replay(kind=kind, sampler_factory=lambda symbol: sampler, on_sample=on_sample)

    def _to_sink(self, kind, band_pct, venue_name):
        from collectors.sink import TimeSeriesSink
        from compliance.models import Market, QuoteConversion

        query = Market.objects.select_related("venue")
        if venue_name:
            query = query.filter(venue__name=venue_name)
        markets = {}
        stable = set()
        for market in query:
            if market.symbol.upper() in markets and not venue_name:
                raise CommandError(f"{market.symbol} is listed on several venues: choose one with --venue-name.")
            markets[market.symbol.upper()] = market.pk
            if market.quote_conversion == QuoteConversion.STABLE:
                stable.add(market.symbol.upper())
        sink = TimeSeriesSink(name="replay")

        def sampler_for(symbol):
            return Sampler(markets.get(symbol, 0), band_pct=band_pct)

        def on_sample(market, sample):
            if market.symbol in markets:
                sink.accept_samples([sample])
                if sink.accepted["sample"] % FLUSH_EVERY == 0 and not sink.flush():
                    raise CommandError(f"Postgres unavailable ({sink.last_error}).")

        def on_evidence(market, evidence):
            if market.symbol in markets:
                sink.accept_snapshots([evidence])

        # A quote converted via another market's mid stays unknown (NULL USD figures): the replay
        # does not carry the conversion market's book.
        replay = Replay(kind=kind, sampler_factory=sampler_for, on_sample=on_sample, on_evidence=on_evidence,
                        quote_usd_of=lambda symbol: 1.0 if symbol in stable else None)
        return replay, sink, markets

    @staticmethod
    def _summary(replay, stats):
        parts = [f"{stats.records} messages read", f"{stats.garbage} garbage lines skipped",
                 f"{replay.counts['malformed']} malformed messages skipped"]
        for symbol, market in sorted(replay.markets.items()):
            state = "synced" if market.sync.synced else "not synced"
            parts.append(f"{symbol}: {state}, {market.sync.resync_count} resyncs")
        return "; ".join(parts)
