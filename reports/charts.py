"""Charts for the PDF, rendered offline with matplotlib (Agg: no display, no network).

Each chart is a PNG in memory; reports/pdf.py places it. The figures read the same minute
bars the CSV holds.
"""
import io
from datetime import datetime, timedelta

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from .builders import STATUSES, MinuteBar  # noqa: E402

STATUS_COLOURS = {
    "compliant": "#2e9e48",
    "exempt": "#e0b000",
    "excused": "#7fb3e0",
    "non_compliant": "#d1342f",
    "unknown": "#9a9a9a",
    "no_obligation": "#ffffff",
}
DPI = 110


def _png(fig) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI)
    plt.close(fig)
    return out.getvalue()


def heatmap_png(bars: list[MinuteBar], start: datetime, end: datetime) -> bytes:
    """Minute-by-minute verdicts: one row per hour for a period of a day or less, else one row per UTC day."""
    minutes = int((end - start).total_seconds() // 60)
    by_hour = minutes <= 1440
    row_minutes = 60 if by_hour else 1440
    origin = start if by_hour else start.replace(hour=0, minute=0)
    offset = int((start - origin).total_seconds() // 60)
    rows = -(-(offset + minutes) // row_minutes)
    index = {s: i for i, s in enumerate(STATUSES)}
    grid = np.full(rows * row_minutes, np.nan)
    grid[offset : offset + minutes] = index["unknown"]  # a minute without a bar had no sample at all
    for bar in bars:
        k = offset + int((bar.minute - start).total_seconds() // 60)
        grid[k] = index[bar.status]
    grid = np.ma.masked_invalid(grid.reshape(rows, row_minutes))
    height = 1.1 + 0.16 * min(rows, 31) if not by_hour else 3.2
    fig, ax = plt.subplots(figsize=(7.2, height), layout="constrained")
    cmap = ListedColormap([STATUS_COLOURS[s] for s in STATUSES])
    cmap.set_bad("#f4f4f4")  # outside the period
    ax.imshow(grid, aspect="auto", cmap=cmap, vmin=-0.5, vmax=len(STATUSES) - 0.5, interpolation="nearest")
    if by_hour:
        ax.set_xlabel("minute of the hour (UTC)")
        labels = [f"{(origin + timedelta(hours=r)):%H}:00" for r in range(rows)]
        step = max(1, rows // 12)
        ax.set_yticks(range(0, rows, step), labels[::step])
        ax.set_xticks(range(0, 60, 10))
    else:
        ax.set_xlabel("hour of the day (UTC)")
        ax.set_xticks(range(0, 1441, 180), [f"{h:02d}" for h in range(0, 25, 3)])
        step = max(1, rows // 16)
        ax.set_yticks(range(0, rows, step), [f"{(origin + timedelta(days=r)):%m-%d}" for r in range(0, rows, step)])
    ax.tick_params(labelsize=7)
    ax.xaxis.label.set_size(7)
    present = [s for s in STATUSES if s != "no_obligation" or any(b.status == s for b in bars)]
    ax.legend(
        handles=[Patch(facecolor=STATUS_COLOURS[s], edgecolor="#555", label=s.replace("_", " ")) for s in present],
        loc="upper center", bbox_to_anchor=(0.5, -0.16 if by_hour else -0.5), ncol=len(present), fontsize=7, frameon=False,
    )
    return _png(fig)


def _time_axis(ax, start: datetime, end: datetime):
    ax.set_xlim(start, end)
    span = end - start
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M" if span <= timedelta(days=1) else "%m-%d"))
    ax.tick_params(labelsize=7)
    ax.grid(True, color="#e5e5e5", linewidth=0.6)


def _series(bars, attr):
    t = [b.minute for b in bars]
    v = [np.nan if getattr(b, attr) is None else getattr(b, attr) for b in bars]
    return t, v


def _headroom(ax, values, obligations, keys):
    """Room above the highest line or limit so the legend never covers data."""
    limits = [float(o["terms"][k]) for o in obligations for k in keys if o["terms"].get(k) is not None]
    finite = [v for v in values if v == v] + limits
    top = max(finite) if finite else 1.0
    ax.set_ylim(0, top * 1.3 if top > 0 else 1.0)


def _limit_steps(ax, obligations: list[dict], key: str, label: str, colour: str):
    first = True
    for ob in obligations:
        value = ob["terms"].get(key)
        if value is None:
            continue
        ax.hlines(float(value), ob["in_force_from"], ob["in_force_to"], colors=colour, linestyles="--", linewidth=1,
                  label=label if first else None)
        first = False


def spread_png(bars: list[MinuteBar], obligations: list[dict], start: datetime, end: datetime) -> bytes:
    fig, ax = plt.subplots(figsize=(7.2, 2.4), layout="constrained")
    t, avg = _series(bars, "spread_avg_pct")
    _, mx = _series(bars, "spread_max_pct")
    ax.plot(t, mx, color="#f0a0a0", linewidth=0.6, label="minute max")
    ax.plot(t, avg, color="#1f5fa8", linewidth=0.8, label="minute average")
    _limit_steps(ax, obligations, "spread_target_max_pct", "target max", "#e08000")
    _limit_steps(ax, obligations, "spread_max_pct", "max permitted", "#c00000")
    ax.set_ylabel("spread %", fontsize=7)
    _headroom(ax, mx, obligations, ("spread_target_max_pct", "spread_max_pct"))
    _time_axis(ax, start, end)
    ax.legend(fontsize=6, loc="upper right", ncol=4)
    return _png(fig)


def depth_png(bars: list[MinuteBar], obligations: list[dict], start: datetime, end: datetime) -> bytes:
    fig, ax = plt.subplots(figsize=(7.2, 2.4), layout="constrained")
    t, bid = _series(bars, "depth_bid_avg_usd")
    _, ask = _series(bars, "depth_ask_avg_usd")
    ax.plot(t, bid, color="#2e9e48", linewidth=0.8, label="bid side (minute avg)")
    ax.plot(t, ask, color="#c0392b", linewidth=0.8, label="ask side (minute avg)")
    _limit_steps(ax, obligations, "depth_min_usd", "min combined", "#555555")
    _limit_steps(ax, obligations, "depth_min_side_usd", "min per side", "#9b59b6")
    ax.set_ylabel("USD within band", fontsize=7)
    _headroom(ax, bid + ask, obligations, ("depth_min_usd", "depth_min_side_usd"))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v / 1000:,.0f}k"))
    _time_axis(ax, start, end)
    ax.legend(fontsize=6, loc="upper right", ncol=4)
    return _png(fig)
