"""Charts for the PDF, drawn as vector graphics with reportlab (offline, no display, no fonts to fetch).

Why not matplotlib: a matplotlib figure costs 0.3–0.8 s to lay out and rasterize, so a daily pack
of 100 markets spent ~100 s in charts alone (bench/reports.py, issue 8's goal is 60 s). Drawing
the same lines as PDF paths costs milliseconds, stays sharp at any zoom, and keeps the PDF small
(a month's series is reduced to one point per plotted column: the max of each column for maxima,
the mean for averages). Each chart reads the same minute bars as minute_bars.csv: one per minute
of the period, in order (reports/evidence.py), so a column's place follows from its index.
"""
import math
from datetime import datetime, timedelta

from reportlab.graphics.shapes import Drawing, Line, PolyLine, Rect, String
from reportlab.lib import colors

from .builders import STATUSES, MinuteBar

STATUS_COLOURS = {
    "compliant": colors.HexColor("#2e9e48"),
    "exempt": colors.HexColor("#e0b000"),
    "excused": colors.HexColor("#7fb3e0"),
    "non_compliant": colors.HexColor("#d1342f"),
    "unknown": colors.HexColor("#9a9a9a"),
    "no_obligation": colors.HexColor("#f4f4f4"),
}
GRID = colors.HexColor("#e2e2e2")
FONT, SMALL = "Helvetica", 6.5
LEFT, RIGHT, BOTTOM, TOP = 46, 8, 24, 16
# Plotted columns: about one per point of the chart's width (~515 pt on A4); a day's 1440
# minutes are drawn as 480 columns of 3 (max of maxima, mean of averages). More points only
# add drawing time and bytes that the printed chart cannot show.
MAX_POINTS = 500


def _time_ticks(start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    span = end - start
    if span <= timedelta(days=1):
        step = timedelta(hours=3 if span > timedelta(hours=6) else 1 if span > timedelta(hours=1) else 0)
        if not step:
            step = timedelta(minutes=10)
        fmt = "%H:%M"
    else:
        step, fmt = timedelta(days=max(1, math.ceil(span.days / 10))), "%m-%d"
    first = start.replace(minute=0, second=0, microsecond=0) if step >= timedelta(hours=1) else start
    if step >= timedelta(days=1):
        first = start.replace(hour=0, minute=0, second=0, microsecond=0)
    ticks, t = [], first
    while t <= end:
        if t >= start:
            ticks.append((t, t.strftime(fmt)))
        t += step
    return ticks


def _nice_top(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for factor in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if factor * magnitude >= value:
            return factor * magnitude
    return 10 * magnitude


def _reduce(values: list[float | None], how) -> tuple[list[float | None], int]:
    """At most MAX_POINTS values, each merging `size` consecutive minutes with `how` (max or
    mean); gaps stay gaps. Returns (values, size)."""
    if len(values) <= MAX_POINTS:
        return values, 1
    size = math.ceil(len(values) / MAX_POINTS)
    out = []
    for i in range(0, len(values), size):
        chunk = [v for v in values[i : i + size] if v is not None]
        out.append(how(chunk) if chunk else None)
    return out, size


def _mean(values):
    return sum(values) / len(values)


class _TimeChart:
    def __init__(self, width: float, height: float, start: datetime, end: datetime, top: float, unit_label: str, tick_format):
        self.d = Drawing(width, height)
        self.start, self.end, self.top = start, end, top
        self.x0, self.y0 = LEFT, BOTTOM
        self.w, self.h = width - LEFT - RIGHT, height - BOTTOM - TOP
        for i in range(6):
            value = top * i / 5
            y = self.y(value)
            self.d.add(Line(self.x0, y, self.x0 + self.w, y, strokeColor=GRID, strokeWidth=0.4))
            self.d.add(String(self.x0 - 3, y - 2, tick_format(value), fontName=FONT, fontSize=SMALL, textAnchor="end"))
        for t, label in _time_ticks(start, end):
            x = self.x(t)
            self.d.add(Line(x, self.y0, x, self.y0 + self.h, strokeColor=GRID, strokeWidth=0.4))
            self.d.add(String(x, self.y0 - 9, label, fontName=FONT, fontSize=SMALL, textAnchor="middle"))
        self.d.add(Rect(self.x0, self.y0, self.w, self.h, fillColor=None, strokeColor=colors.black, strokeWidth=0.6))
        self.d.add(String(4, self.y0 + self.h / 2, unit_label, fontName=FONT, fontSize=SMALL))
        self.legend_x = self.x0

    def x(self, t: datetime) -> float:
        return self.x0 + (t - self.start).total_seconds() / (self.end - self.start).total_seconds() * self.w

    def y(self, v: float) -> float:
        return self.y0 + min(v, self.top) / self.top * self.h

    def series(self, reduced: tuple[list[float | None], int], minutes: int, colour, width, label):
        """Values of consecutive minutes from the chart's start (each covering `size` minutes),
        drawn at the middle of their columns; a gap breaks the line."""
        values, size = reduced
        step = self.w * size / max(1, minutes)
        x0, y0, top, h = self.x0 + step / 2, self.y0, self.top, self.h
        run: list[float] = []
        for i, v in enumerate([*values, None]):
            if v is None:
                if len(run) >= 4:
                    self.d.add(PolyLine(run, strokeColor=colour, strokeWidth=width))
                elif len(run) == 2:  # a lone minute between gaps: a short tick so it still shows
                    self.d.add(Line(run[0], run[1], run[0] + 0.8, run[1], strokeColor=colour, strokeWidth=width))
                run = []
            else:
                run += [x0 + i * step, y0 + min(v, top) / top * h]
        self.legend(colour, label, dashed=False)

    def limit(self, obligations, key, colour, label):
        drawn = False
        for ob in obligations:
            value = ob["terms"].get(key)
            if value is None:
                continue
            y = self.y(float(value))
            self.d.add(Line(self.x(ob["in_force_from"]), y, self.x(ob["in_force_to"]), y, strokeColor=colour,
                            strokeWidth=0.9, strokeDashArray=[3, 2]))
            drawn = True
        if drawn:
            self.legend(colour, label, dashed=True)

    def legend(self, colour, label, dashed):
        y = self.y0 + self.h + 5
        self.d.add(Line(self.legend_x, y + 2, self.legend_x + 12, y + 2, strokeColor=colour, strokeWidth=1.2,
                        strokeDashArray=[3, 2] if dashed else None))
        self.d.add(String(self.legend_x + 15, y, label, fontName=FONT, fontSize=SMALL))
        self.legend_x += 24 + 3.2 * len(label)


def _limits(obligations, keys):
    return [float(o["terms"][k]) for o in obligations for k in keys if o["terms"].get(k) is not None]


def spread_chart(bars: list[MinuteBar], obligations: list[dict], start: datetime, end: datetime, width: float) -> Drawing:
    avg = _reduce([b.spread_avg_pct for b in bars], _mean)
    mx = _reduce([b.spread_max_pct for b in bars], max)
    values = [v for v in mx[0] if v is not None] + _limits(obligations, ("spread_target_max_pct", "spread_max_pct"))
    chart = _TimeChart(width, 150, start, end, _nice_top(max(values, default=1) * 1.1), "spread %",
                       lambda v: f"{v:.3g}")
    chart.series(mx, len(bars), colors.HexColor("#f0a0a0"), 0.6, "minute max")
    chart.series(avg, len(bars), colors.HexColor("#1f5fa8"), 0.8, "minute average")
    chart.limit(obligations, "spread_target_max_pct", colors.HexColor("#e08000"), "target max")
    chart.limit(obligations, "spread_max_pct", colors.HexColor("#c00000"), "max permitted")
    return chart.d


def depth_chart(bars: list[MinuteBar], obligations: list[dict], start: datetime, end: datetime, width: float) -> Drawing:
    bid = _reduce([b.depth_bid_avg_usd for b in bars], _mean)
    ask = _reduce([b.depth_ask_avg_usd for b in bars], _mean)
    values = [v for v in bid[0] + ask[0] if v is not None] + _limits(obligations, ("depth_min_usd", "depth_min_side_usd"))
    chart = _TimeChart(width, 150, start, end, _nice_top(max(values, default=1) * 1.1), "USD",
                       lambda v: f"{v / 1000:,.0f}k" if v >= 1000 or v == 0 else f"{v:,.0f}")
    chart.series(bid, len(bars), colors.HexColor("#2e9e48"), 0.8, "bid side (minute avg)")
    chart.series(ask, len(bars), colors.HexColor("#c0392b"), 0.8, "ask side (minute avg)")
    chart.limit(obligations, "depth_min_usd", colors.HexColor("#555555"), "min combined")
    chart.limit(obligations, "depth_min_side_usd", colors.HexColor("#9b59b6"), "min per side")
    return chart.d


def heatmap(bars: list[MinuteBar], start: datetime, end: datetime, width: float) -> Drawing:
    """Minute-by-minute verdicts: a row per hour for a period of a day or less, else a row per UTC day.
    Consecutive minutes with the same verdict are one rectangle."""
    minutes = int((end - start).total_seconds() // 60)
    by_hour = minutes <= 1440
    row_minutes = 60 if by_hour else 1440
    origin = start.replace(minute=0) if by_hour else start.replace(hour=0, minute=0)
    offset = int((start - origin).total_seconds() // 60)
    rows = -(-(offset + minutes) // row_minutes)
    row_h = 7 if rows <= 31 else max(1.5, 220 / rows)
    height = rows * row_h + BOTTOM + 22
    d = Drawing(width, height)
    x0, w = LEFT, width - LEFT - RIGHT
    top = height - 6
    statuses = [b.status for b in bars]  # one bar per minute from `start` (reports/evidence.py)
    label_every = max(1, math.ceil(rows / 12))
    for r in range(rows):
        y = top - (r + 1) * row_h
        run_start, run_status = None, None
        for c in range(row_minutes + 1):
            k = r * row_minutes + c
            status = None if c == row_minutes or not (offset <= k < offset + len(statuses)) else statuses[k - offset]
            if status != run_status:
                if run_status is not None:
                    d.add(Rect(x0 + run_start / row_minutes * w, y, (c - run_start) / row_minutes * w, row_h,
                               fillColor=STATUS_COLOURS[run_status], strokeColor=None))
                run_start, run_status = c, status
        if r % label_every == 0:
            row_start = origin + timedelta(minutes=r * row_minutes)
            d.add(String(x0 - 3, y + row_h / 2 - 2, row_start.strftime("%H:00" if by_hour else "%m-%d"),
                         fontName=FONT, fontSize=SMALL, textAnchor="end"))
    grid_bottom = top - rows * row_h
    d.add(Rect(x0, grid_bottom, w, rows * row_h, fillColor=None, strokeColor=colors.black, strokeWidth=0.5))
    ticks = range(0, 61, 10) if by_hour else range(0, 1441, 180)
    for c in ticks:
        x = x0 + c / row_minutes * w
        d.add(Line(x, grid_bottom, x, grid_bottom - 2, strokeColor=colors.black, strokeWidth=0.5))
        d.add(String(x, grid_bottom - 9, str(c) if by_hour else f"{c // 60:02d}:00", fontName=FONT, fontSize=SMALL, textAnchor="middle"))
    d.add(String(x0 + w / 2, grid_bottom - 17, "minute of the hour (UTC)" if by_hour else "time of day (UTC)",
                 fontName=FONT, fontSize=SMALL, textAnchor="middle"))
    lx = x0
    for status in STATUSES:
        if status == "no_obligation" and "no_obligation" not in statuses:
            continue
        d.add(Rect(lx, 2, 8, 6, fillColor=STATUS_COLOURS[status], strokeColor=colors.HexColor("#555555"), strokeWidth=0.3))
        label = status.replace("_", " ")
        d.add(String(lx + 11, 2.5, label, fontName=FONT, fontSize=SMALL))
        lx += 20 + 3.3 * len(label)
    return d
