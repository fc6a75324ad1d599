"""Machine-readable exports: JSON, CSV and the manifest, written deterministically.

Same inputs, same bytes: keys sorted, rows in a stable order, every float written with a
fixed number of decimals, no generation time inside (that goes only in the PDF cover and the
manifest's `generated` block). A regenerated report can then be compared with `sha256sum`.
"""
import hashlib
import json
import math
import re
from collections.abc import Iterable, Sequence

# Six decimals: a spread in % to 1e-6 % and USD to a millionth of a cent, far below what
# any clause is written in, and well above the last-bit noise of a float sum.
DECIMALS = 6


class ExportError(ValueError):
    """A value that has no faithful fixed representation (NaN, infinity, an unknown type)."""


def number_text(value: float) -> str:
    text = f"{value:.{DECIMALS}f}"
    if not text[-1].isdigit():  # 'nan', 'inf', '-inf': checked after formatting, once per number
        raise ExportError(f"{value!r} cannot be exported: a report number must be finite.")
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


_NEEDS_QUOTES = re.compile('[,"\r\n]')


def _csv_text(value: str) -> str:
    if _NEEDS_QUOTES.search(value):
        return '"' + value.replace('"', '""') + '"'
    return value


def _str_column(values) -> list[str]:
    cells = [v or "" for v in values]
    return [_csv_text(v) for v in cells] if _NEEDS_QUOTES.search("".join(cells)) else cells


def _float_column(values) -> list[str]:
    cells = ["" if v is None else f"{v:.{DECIMALS}f}" for v in values]
    joined = ",".join(cells)
    if "n" in joined:  # 'nan', 'inf': a number cell has only digits, '-' and '.'
        raise ExportError(f"A non-finite number cannot be exported: {next(v for v in values if v is not None and not math.isfinite(v))!r}.")
    return [c if c != "-0.000000" else "0.000000" for c in cells] if "-0.000000" in joined else cells


# How each column is written, by the types its values have (checked once per column).
_COLUMN_FORMATS = (
    ({float}, _float_column),
    ({int}, lambda values: ["" if v is None else str(v) for v in values]),
    ({bool}, lambda values: ["" if v is None else "true" if v else "false" for v in values]),
    ({str}, _str_column),
)


def _column_cells(name: str, values: tuple) -> list[str]:
    kinds = set(map(type, values)) - {type(None)}
    if not kinds:
        return [""] * len(values)
    for allowed, render in _COLUMN_FORMATS:
        if kinds <= allowed:
            return render(values)
    if kinds <= {int, float}:  # a float column with whole numbers given as ints
        return _float_column([None if v is None else float(v) for v in values])
    raise ExportError(f"Column {name!r} mixes {sorted(k.__name__ for k in kinds)}: no single CSV form.")


def render_csv(columns: Sequence[str], rows: Iterable[Sequence]) -> bytes:
    """RFC 4180 CSV (\r\n line ends) with a header; empty cell = no value (unknown).

    Written column by column: one formatting rule per column instead of a type test per cell
    (a 100-market day is 2.3 M cells)."""
    rows = list(rows)
    widths = set(map(len, rows))
    if widths - {len(columns)}:
        bad = next(r for r in rows if len(r) != len(columns))
        raise ExportError(f"A CSV row has {len(bad)} cells for {len(columns)} columns: {bad!r}.")
    lines = [",".join(_csv_text(c) for c in columns)]
    if rows:
        cells = [_column_cells(name, values) for name, values in zip(columns, zip(*rows))]
        lines += map(",".join, zip(*cells))
    return ("\r\n".join(lines) + "\r\n").encode()


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
