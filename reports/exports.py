"""Machine-readable exports: JSON, CSV and the manifest, written deterministically.

Same inputs, same bytes: keys sorted, rows in a stable order, every float written with a
fixed number of decimals, no generation time inside (that goes only in the PDF cover and the
manifest's `generated` block). A regenerated report can then be compared with `sha256sum`.
"""
import csv
import hashlib
import io
import json
import math
from collections.abc import Iterable, Sequence

# Six decimals: a spread in % to 1e-6 % and USD to a millionth of a cent, far below what
# any clause is written in, and well above the last-bit noise of a float sum.
DECIMALS = 6


class ExportError(ValueError):
    """A value that has no faithful fixed representation (NaN, infinity, an unknown type)."""


def number_text(value: float) -> str:
    if not math.isfinite(value):
        raise ExportError(f"{value!r} cannot be exported: a report number must be finite.")
    text = f"{value:.{DECIMALS}f}"
    return "0.000000" if text == "-0.000000" else text


def _json_text(value, indent: int, depth: int) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return number_text(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    pad = "\n" + " " * (indent * (depth + 1))
    end = "\n" + " " * (indent * depth)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = []
        for key in sorted(value):
            if not isinstance(key, str):
                raise ExportError(f"JSON object keys must be strings, got {key!r}.")
            items.append(f"{json.dumps(key)}: {_json_text(value[key], indent, depth + 1)}")
        return "{" + pad + ("," + pad).join(items) + end + "}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        return "[" + pad + ("," + pad).join(_json_text(v, indent, depth + 1) for v in value) + end + "]"
    raise ExportError(f"{type(value).__name__} {value!r} has no JSON form in a report.")


def render_json(document: dict) -> bytes:
    return (_json_text(document, 1, 0) + "\n").encode()


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return number_text(value)
    return str(value)


def render_csv(columns: Sequence[str], rows: Iterable[Sequence]) -> bytes:
    """RFC 4180 CSV (\\r\\n line ends) with a header; empty cell = no value (unknown)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        if len(row) != len(columns):
            raise ExportError(f"A CSV row has {len(row)} cells for {len(columns)} columns: {row!r}.")
        writer.writerow([_cell(v) for v in row])
    return out.getvalue().encode()


def sha256_hex(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def inputs_identity(*, period_start: str, period_end: str, markets: Sequence[dict], obligation_version_ids: Sequence[int]) -> dict:
    """What a report's numbers depend on besides the stored data, with its SHA-256.

    Two generations with the same identity over the same stored samples must produce the
    same JSON and CSV bytes; the manifest records both so an auditor can check it.
    """
    identity = {
        "period_start": period_start,
        "period_end": period_end,
        "markets": sorted(({"id": m["id"], "venue": m["venue"], "symbol": m["symbol"]} for m in markets), key=lambda m: m["id"]),
        "obligation_version_ids": sorted(obligation_version_ids),
    }
    return {**identity, "sha256": sha256_hex(render_json(identity))}


def build_manifest(*, files: dict[str, bytes], inputs: dict, generated: dict) -> dict:
    """The manifest: each file's SHA-256 and size, the inputs' identity, and when/how it was made.

    `numbers_sha256` hashes the deterministic files only (JSON and CSV), in name order, so
    a regeneration is checked with one comparison even though the PDF cover differs.
    """
    table = {name: {"sha256": sha256_hex(content), "bytes": len(content)} for name, content in sorted(files.items())}
    numbers = hashlib.sha256()
    for name in sorted(files):
        if name.endswith((".json", ".csv")):
            numbers.update(name.encode() + b"\0" + table[name]["sha256"].encode() + b"\n")
    return {
        "format": "lcm.audit-report.manifest",
        "format_version": 1,
        "files": table,
        "inputs": inputs,
        "numbers_sha256": numbers.hexdigest(),
        "generated": generated,
    }
