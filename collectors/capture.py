"""Raw capture files: reading the two recorded formats, and writing our own.

binance-capture (shared/data/binance-captures, and what CaptureWriter writes): gzip text, one
message per line, ``<local receive time> <raw JSON>``; the time is nanoseconds since the epoch
(microseconds in the 2023 ``*.dat.gz`` files — normalised here by magnitude).

cryptofeed (shared/data/multi-exchange-recordings), plain text:
    ``<url> -> <unix ts float>: <REST body>``    a REST response
    ``<wss url> <-> <unix ts float>``            websocket connect
    ``<wss url> <- <unix ts float>: <json>``     a frame we sent
    ``<unix ts float>: <json frame>``            a frame received
    ``configuration: {...}``                     header of the older single-file format

Readers yield CaptureLine(recv_ns, raw, url): url is the REST endpoint for a REST response and
None for a stream frame. A line that fits neither format is counted in CaptureStats and skipped.
"""
import gzip
import re
from dataclasses import dataclass, field
from typing import NamedTuple

_NS_PER_UNIT = ((10**17, 1), (10**14, 1_000), (10**11, 1_000_000))  # ns, µs, ms since the epoch


class CaptureLine(NamedTuple):
    recv_ns: int
    raw: bytes
    url: str | None = None


@dataclass
class CaptureStats:
    lines: int = 0
    records: int = 0
    garbage: int = 0
    garbage_examples: list = field(default_factory=list)

    def reject(self, path, number, line):
        self.garbage += 1
        if len(self.garbage_examples) < 5:
            self.garbage_examples.append(f"{path}:{number}: {line[:100]!r}")


def _open(path):
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def to_ns(stamp):
    """Epoch time in ns from an integer in ns, µs or ms (told apart by magnitude)."""
    for threshold, factor in _NS_PER_UNIT:
        if stamp >= threshold:
            return stamp * factor
    raise ValueError(f"not an epoch time in ns, µs or ms: {stamp}")


def read_binance_capture(path, stats=None):
    stats = stats if stats is not None else CaptureStats()
    with _open(path) as lines:
        for number, line in enumerate(lines, 1):
            stats.lines += 1
            stamp, _, raw = line.partition(b" ")
            raw = raw.strip()
            if not (stamp.isdigit() and raw.startswith(b"{")):
                if line.strip():
                    stats.reject(path, number, line)
                continue
            try:
                recv_ns = to_ns(int(stamp))
            except ValueError:
                stats.reject(path, number, line)
                continue
            stats.records += 1
            yield CaptureLine(recv_ns, raw)


_REST = re.compile(rb"^(\S+) -> (\d+(?:\.\d+)?): (.*)$", re.S)
_RECEIVED = re.compile(rb"^(\d+(?:\.\d+)?): (.*)$", re.S)
_CONNECT_OR_SENT = re.compile(rb"^\S+ (?:<->|<-) \d+(?:\.\d+)?")


def read_cryptofeed(path, stats=None):
    stats = stats if stats is not None else CaptureStats()
    with _open(path) as lines:
        for number, line in enumerate(lines, 1):
            stats.lines += 1
            line = line.rstrip(b"\r\n")
            if not line or line.startswith(b"configuration: ") or _CONNECT_OR_SENT.match(line):
                continue
            match = _RECEIVED.match(line)
            url = None
            if match is None:
                match = _REST.match(line)
                if match is None:
                    stats.reject(path, number, line)
                    continue
                url, stamp, raw = match.groups()
                url = url.decode("ascii", "replace")
            else:
                stamp, raw = match.groups()
            if not raw.startswith((b"{", b"[")):
                stats.reject(path, number, line)
                continue
            stats.records += 1
            yield CaptureLine(_seconds_text_to_ns(stamp), raw, url)


def _seconds_text_to_ns(text):
    """b"1626992741.301402" -> 1626992741301402000, exactly (a float would round the last digits)."""
    seconds, _, fraction = text.partition(b".")
    return int(seconds) * 1_000_000_000 + int(fraction[:9].ljust(9, b"0") or b"0")


READERS = {"binance-capture": read_binance_capture, "cryptofeed": read_cryptofeed}


class CaptureWriter:
    """Appends raw received messages to a gzip file in the binance-capture format."""

    def __init__(self, path, compresslevel=6):
        self.path = path
        self._file = gzip.open(path, "ab", compresslevel=compresslevel)

    def write(self, recv_ns, raw):
        if isinstance(raw, str):
            raw = raw.encode()
        if b"\n" in raw:
            # A pretty-printed body would break the one-message-per-line format.
            raw = raw.replace(b"\r", b"").replace(b"\n", b"")
        self._file.write(b"%d %s\n" % (recv_ns, raw))

    def flush(self):
        self._file.flush()

    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
