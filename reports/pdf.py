"""The PDF for people, drawn with reportlab from the report document and the minute bars.

Every figure printed here is read from the document (the JSON export), never recomputed.
"""
import io

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import KeepTogether, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from . import charts
from .builders import MarketEvidence

STYLES = getSampleStyleSheet()
BODY = STYLES["BodyText"]
SMALL = STYLES["BodyText"].clone("small", fontSize=8, leading=10)
H1, H2, H3 = STYLES["Title"], STYLES["Heading2"], STYLES["Heading3"]
WIDTH = A4[0] - 30 * mm

# The terms shown in the obligation table, with how to print them.
TERM_ROWS = (
    ("spread_target_min_pct", "Target spread, low", "%"),
    ("spread_target_max_pct", "Target spread, high (minute limit)", "%"),
    ("spread_max_pct", "Maximum permitted spread", "%"),
    ("spread_denominator", "Spread denominator", ""),
    ("depth_band_pct", "Depth band (±)", "%"),
    ("depth_reference", "Band reference", ""),
    ("depth_min_usd", "Minimum depth, combined", "USD"),
    ("depth_min_side_usd", "Minimum depth, per side", "USD"),
    ("depth_counts_for_uptime", "Depth counts for uptime", ""),
    ("uptime_required_pct", "Required uptime", "%"),
    ("evaluation_method", "Evaluation method", ""),
    ("minute_rule", "Minute rule", ""),
    ("vol_trigger_pct", "Volatility trigger (5 min)", "%"),
    ("vol_cap_multiple", "Exempt widening cap (× target)", ""),
    ("vol_recovery_minutes", "Recovery window", "min"),
    ("max_cancel_ratio_pct", "Max cancel ratio", "%"),
    ("slippage_order_usd", "Slippage order size", "USD"),
)


def fmt(value, unit: str = "", digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if unit == "USD":
            return f"${value:,.0f}"
        text = f"{value:,.{digits}f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return f"{text} {unit}".strip()
    if isinstance(value, int):
        return f"{value:,} {unit}".strip()
    return str(value)


def usd(value) -> str:
    """Money to the cent, sign first: fees of a small flow are cents, not dollars."""
    return "—" if value is None else f"{'−' if value < 0 else ''}${abs(value):,.2f}"


def verdict(passed) -> str:
    return {True: "PASS", False: "FAIL", None: "not enforced"}[passed]


_HEAD_STYLES: dict[float, object] = {}


def _head(text: str, font: float):
    """A header cell that wraps inside its column (one shared style per font size)."""
    if font not in _HEAD_STYLES:
        _HEAD_STYLES[font] = BODY.clone(f"head{font}", fontName="Helvetica-Bold", fontSize=font, leading=font + 2)
    return Paragraph(text, _HEAD_STYLES[font])


def _fits(text: str, width: float, font: float) -> bool:
    return stringWidth(text, "Helvetica-Bold", font) + 6 <= width  # 6: the cell's default padding


def _table(rows, widths=None, header=True, font=8):
    if header and widths is not None:  # only a header too wide for its column is wrapped (a Paragraph)
        rows = [[_head(c, font) if isinstance(c, str) and not _fits(c, w, font) else c for c, w in zip(rows[0], widths)],
                *rows[1:]]
    table = Table(rows, colWidths=widths, repeatRows=1 if header else 0)
    style = [
        ("FONTSIZE", (0, 0), (-1, -1), font),
        ("LEADING", (0, 0), (-1, -1), font + 2),
        ("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#bbbbbb")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
    if header:
        style += [("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8edf3")), ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold")]
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            if cell == "PASS":
                style.append(("TEXTCOLOR", (c, r), (c, r), colors.HexColor("#1d7a33")))
            elif cell == "FAIL":
                style.append(("TEXTCOLOR", (c, r), (c, r), colors.HexColor("#b3261e")))
    table.setStyle(TableStyle(style))
    return table


def _cover(doc: dict, generated: dict) -> list:
    scope, period, summary = doc["scope"], doc["period"], doc["summary"]
    story = [
        Spacer(1, 30 * mm),
        Paragraph("Liquidity compliance audit report", H1),
        Spacer(1, 8 * mm),
        _table(
            [
                ["Scope", scope["label"]],
                ["Period (UTC)", f"{period['start']} to {period['end']} ({period['kind']}, {period['minutes']:,} minutes)"],
                ["Generated (UTC)", generated["at"]],
                ["Product version", generated["product_version"]],
                ["Inputs identity (SHA-256)", Paragraph(generated["inputs_sha256"], SMALL)],
                ["Markets", f"{summary['markets']} — passed {summary['markets_passed']}, failed {summary['markets_failed']}, "
                            f"not enforced {summary['markets_not_enforced']}"],
                ["Incidents", str(summary["incidents"])],
            ],
            widths=[45 * mm, WIDTH - 45 * mm], header=False, font=9,
        ),
        Spacer(1, 6 * mm),
        Paragraph(
            "Every number in this document is also in the report's JSON file; the minute bars and incidents are in its "
            "CSV files. The manifest lists the SHA-256 of each file and of the inputs, so a regeneration can be checked "
            "byte for byte (the JSON and CSV files hold no generation time).", SMALL,
        ),
    ]
    if len(doc["markets"]) > 1:
        rows = [["Market", "Uptime raw", "Uptime adj.", "Required", "Unknown min", "Verdict"]]
        for m in doc["markets"]:
            t = m["total"]
            rows.append([f"{m['market']['venue']} {m['market']['symbol']}", fmt(t["uptime_raw_pct"], "%", 2),
                         fmt(t["uptime_adjusted_pct"], "%", 2), fmt(t["uptime_required_pct"], "%", 2),
                         fmt(t["unknown_minutes"]), verdict(t["passed"])])
        story += [Spacer(1, 6 * mm), Paragraph("Summary", H2), _table(rows)]
    story.append(PageBreak())
    return story


def _methodology(doc: dict) -> list:
    story = [Paragraph("Methodology", H2)]
    for paragraph in doc["methodology"]["text"]:
        story.append(Paragraph(paragraph, SMALL))
    story.append(PageBreak())
    return story


def _obligations(market: dict) -> list:
    obligations = market["obligations"]
    story = [Paragraph("Obligation terms in force", H3)]
    if not obligations:
        return story + [Paragraph("No obligation was in force in this period: nothing could be judged.", BODY)]
    head = ["Term"] + [f"v{o['version']} (id {o['id']})" for o in obligations]
    rows = [head, ["In force (UTC)"] + [f"{o['in_force_from']}\nto {o['in_force_to']}" for o in obligations]]
    for key, label, unit in TERM_ROWS:
        rows.append([label] + [fmt(o["terms"].get(key), unit) for o in obligations])
    first = 55 * mm
    other = (WIDTH - first) / len(obligations)
    story.append(_table(rows, widths=[first] + [other] * len(obligations), font=7))
    log = [["Version", "Effective from", "By", "Reason", "Changed terms"]]
    for o in obligations:
        changed = ", ".join(f"{k}: {fmt(v['from'])} → {fmt(v['to'])}" for k, v in sorted(o["changes_from_previous"].items()))
        log.append([f"v{o['version']}", o["effective_from"], o["changed_by"] or "—", Paragraph(o["reason"], SMALL),
                    Paragraph(changed or "(first in period)", SMALL)])
    story += [Spacer(1, 3 * mm), Paragraph("Change log", H3), _table(log, widths=[16 * mm, 34 * mm, 22 * mm, 50 * mm, WIDTH - 122 * mm], font=7)]
    return story


def _results(market: dict) -> list:
    rows = [["", *[f"v{r['obligation_version']}" for r in market["results"]], "Period"]]
    columns = market["results"] + [market["total"]]
    lines = (
        ("Minutes", "minutes", ""), ("Compliant", "compliant_minutes", ""), ("Non-compliant", "non_compliant_minutes", ""),
        ("Exempt (volatility)", "exempt_minutes", ""), ("Excused outage", "excused_minutes", ""),
        ("Unknown (no data)", "unknown_minutes", ""), ("Coverage (valid seconds)", "coverage_pct", "%"),
        ("Uptime raw", "uptime_raw_pct", "%"), ("Uptime exemption-adjusted", "uptime_adjusted_pct", "%"),
        ("Required uptime", "uptime_required_pct", "%"),
    )
    for label, key, unit in lines:
        rows.append([label] + [fmt(c.get(key), unit, 3) for c in columns])
    rows.append(["Verdict"] + [verdict(c.get("passed")) for c in columns])
    stats = (
        ("Spread avg", ("spread", "avg_pct"), "%"), ("Spread p50", ("spread", "p50_pct"), "%"),
        ("Spread p95", ("spread", "p95_pct"), "%"), ("Spread p99", ("spread", "p99_pct"), "%"),
        ("Spread max", ("spread", "max_pct"), "%"),
        ("Depth bid avg", ("depth", "bid_avg_usd"), "USD"), ("Depth ask avg", ("depth", "ask_avg_usd"), "USD"),
        ("Depth bid min", ("depth", "bid_min_usd"), "USD"), ("Depth ask min", ("depth", "ask_min_usd"), "USD"),
        ("Depth lower-bound seconds", ("depth", "incomplete_seconds"), ""),
        ("Slippage buy avg", ("slippage", "buy_avg_pct"), "%"), ("Slippage sell avg", ("slippage", "sell_avg_pct"), "%"),
        ("Cannot fill (seconds)", ("slippage", "unfillable_seconds"), ""),
    )
    for label, (group, key), unit in stats:
        rows.append([label] + [fmt((c.get(group) or {}).get(key), unit, 4) for c in columns])
    first = 50 * mm
    other = (WIDTH - first) / len(columns)
    return [Paragraph("Results", H3), _table(rows, widths=[first] + [other] * len(columns), font=7)]


SCORE_COMPONENTS = ("spread", "depth", "uptime", "slippage")


def _score_cells(score: dict) -> list[str]:
    cells = []
    for name in SCORE_COMPONENTS:
        c = score["components"].get(name) or {}
        unit = "USD" if name == "depth" else ""
        cells.append(f"{fmt(c.get('value'), unit)} / {fmt(c.get('kpi'), unit)} → {fmt(c.get('points'))}")
    return cells


def _days(market: dict) -> list:
    """Day by day, for a period longer than a day (the engine's stored verdict when current)."""
    days = market["daily_results"]
    if len(days) < 2:
        return []
    rows = [["Day (UTC)", "Source", "Minutes", "Unknown", "Uptime raw", "Uptime adj.", "Required", "Verdict"]]
    for d in days:
        rows.append([d["day"], d["source"], fmt(d["minutes"]), fmt(d["unknown_minutes"]), fmt(d["uptime_raw_pct"], "%", 3),
                     fmt(d["uptime_adjusted_pct"], "%", 3), fmt(d["uptime_required_pct"], "%", 2), verdict(d["passed"])])
    return [Paragraph("Day by day", H3), _table(rows, widths=[(WIDTH / 8)] * 8, font=7)]


def _scores(market: dict) -> list:
    story = [Paragraph("Liquidity score (0–1000)", H3)]
    period = market["liquidity_score"]
    if period is None:
        return story + [Paragraph("No minute with an obligation in this period: no score.", SMALL)]
    rows = [["", "Score", *[f"{n} (value / KPI → points)" for n in SCORE_COMPONENTS]],
            ["Whole period", fmt(period["score"]), *_score_cells(period)]]
    for s in market["liquidity_scores"][:62]:
        rows.append([f"{s['day']} ({s['source']})", fmt(s["score"]), *_score_cells(s)])
    return story + [_table(rows, widths=[30 * mm, 14 * mm] + [(WIDTH - 44 * mm) / 4] * 4, font=7)]


def _incidents(market: dict) -> list:
    incidents = market["incidents"]
    story = [Paragraph(f"Breaches and incidents ({len(incidents)})", H3)]
    if not incidents:
        return story + [Paragraph("None in this period.", SMALL)]
    rows = [["Kind", "Start (UTC)", "End (UTC)", "Duration", "Peak", "Limit", "Exempted", "Version"]]
    for i in incidents[:200]:
        rows.append([i["kind"], i["start"], i["end"], f"{i['duration_s'] // 60} min", fmt(i["peak"], i["unit"], 4),
                     fmt(i["limit"], i["unit"], 4), fmt(i["exempted"]), f"v{i['obligation_version']}"])
    story.append(_table(rows, font=7))
    if len(incidents) > 200:
        story.append(Paragraph(f"… {len(incidents) - 200} more in incidents.csv.", SMALL))
    return story


def _escalation(block: dict) -> list:
    rows = [["Level on " + block["on"], "Violation days in 90 days", "Violation days"],
            [block["level"].replace("_", " "), fmt(block["violation_days_90d"]), Paragraph(", ".join(block["violation_days"]) or "—", SMALL)]]
    return [Paragraph("Escalation ladder (rolling 90 days)", H3), _table(rows, widths=[40 * mm, 40 * mm, WIDTH - 80 * mm], font=7)]


def _behaviour(block: dict) -> list:
    local = block["local"]
    story = [Paragraph("Order behaviour", H3)]
    survival = local["survival_ms"] or {}
    over_period = ", ".join(f"{name} {fmt(v['value'], '', 4)} ({fmt(v['orders'])})"
                            for name, v in sorted(local["indicators_over_period"].items()))
    rows = [["Desk's own orders over the period", "Value"],
            ["Orders placed / fills", f"{fmt(local['orders_placed'])} / {fmt(local['fills'])}"],
            ["Cancel ratio", fmt(local["cancel_ratio_pct"], "%", 3)],
            ["Maker ratio / taker proportion", f"{fmt(local['maker_ratio_pct'], '%', 2)} / {fmt(local['taker_proportion_pct'], '%', 2)}"],
            ["Order survival median / p90", f"{fmt(survival.get('median'), 'ms', 0)} / {fmt(survival.get('p90'), 'ms', 0)}"],
            ["Indicators over the whole period (orders)", Paragraph(over_period or "—", SMALL)]]
    story.append(_table(rows, widths=[70 * mm, WIDTH - 70 * mm], font=7))
    story.append(Spacer(1, 2 * mm))
    reported = {r["indicator"]: r for r in block["exchange_reported"]}
    worst = block.get("worst_cycle") or {}
    table = [["Indicator", "Worst 10-min cycle (local)", "Orders", "Cycle end (UTC)", "Trigger", "Status",
              "Exchange highest", "Exchange latest", "Locked"]]
    for name in sorted(set(worst) | set(reported)):
        w, r = worst.get(name) or {}, reported.get(name) or {}
        limit = w.get("trigger_value", w.get("limit"))
        table.append([name, fmt(w.get("value"), "", 4), fmt(w.get("orders")), w.get("cycle_end") or "—", fmt(limit),
                      w.get("status", "—"), fmt(r.get("highest_value"), "", 4), fmt(r.get("value"), "", 4),
                      fmt(r.get("is_locked")) if r else "—"])
    if len(table) == 1:
        table.append(["—", "no order and no exchange poll in this period", "", "", "", "", "", "", ""])
    story.append(_table(table, widths=[20 * mm, 27 * mm, 14 * mm, 30 * mm, 14 * mm, 18 * mm, 20 * mm, 20 * mm,
                                       WIDTH - 163 * mm], font=6.5))
    locks = [f"{lock['indicator']} locked at {lock['observed_at']}, recovery planned {lock['planned_recover_time'] or '—'}"
             for lock in block["locks"]]
    story.append(Paragraph(f"Exchange polls in the period: {block['exchange_polls']}. Locks: "
                           + ("; ".join(locks) if locks else "none in this period."), SMALL))
    return story


def _fees(block: dict) -> list:
    story = [Paragraph("Fees and rebates", H3)]
    period, vip, versus = block.get("period"), block.get("vip") or {}, block.get("ladder_vs_program")
    rows = [["Item", "Value"]]
    if period is None:
        rows.append(["This period", "no fill"])
    elif "unavailable" in period:
        rows.append(["This period", Paragraph(period["unavailable"], SMALL)])
    else:
        rows += [["Maker / taker volume", f"{usd(period['maker_volume_usd'])} / {usd(period['taker_volume_usd'])}"],
                 ["Fees paid / rebates earned", f"{usd(period['fees_paid_usd'])} / {usd(period['rebates_earned_usd'])}"],
                 ["Net fee (negative: paid to make)", usd(period["net_fee_usd"])]]
    if "unavailable" in vip:
        rows.append(["VIP tier", Paragraph(vip["unavailable"], SMALL)])
    elif vip:
        rows += [["VIP tier on the 30-day volume", f"{vip['tier']} ({vip['ladder']}): maker {fmt(vip['maker_rate_pct'], '%')}, "
                                                   f"taker {fmt(vip['taker_rate_pct'], '%')}"],
                 ["30-day volume on the venue (maker)", f"{usd(vip['volume_30d_usd'])} ({usd(vip['maker_volume_30d_usd'])})"
                                                         + (f"; {vip['fills_not_in_usd']} fills in non-USD quotes not counted" if vip["fills_not_in_usd"] else "")],
                 ["Next tier", "—" if vip["next_tier"] is None else f"{vip['next_tier']}, {usd(vip['volume_to_next_tier_usd'])} more"]]
    if versus:
        rows += [["Ladder vs MM program (maker side, 30-day flow)",
                  f"ladder {fmt(versus['ladder_maker_rate_pct'], '%')} → {usd(versus['ladder_maker_fee_usd'])}; "
                  f"program {fmt(versus['program_maker_rate_pct'], '%')} → {usd(versus['program_maker_fee_usd'])}; "
                  f"swing {usd(versus['swing_usd'])}"]]
    return story + [_table(rows, widths=[60 * mm, WIDTH - 60 * mm], font=7)]


def _market_section(market: dict, evidence: MarketEvidence, period_start, period_end) -> list:
    m = market["market"]
    story = [Paragraph(f"{m['venue']} · {m['symbol']}", H2),
             Paragraph(f"{m['exchange']} {m['market_type']}, tier {m['tier']}; quote {m['quote_asset']} "
                       f"({m['quote_conversion']}). Market id {m['id']}.", SMALL)]
    story += _obligations(market)
    story += _results(market)
    story += _days(market)
    story += _scores(market)
    story.append(KeepTogether([
        Paragraph("Minute-by-minute compliance", H3),
        charts.heatmap(evidence.bars, period_start, period_end, WIDTH),
    ]))
    story.append(KeepTogether([Paragraph("Spread", H3), charts.spread_chart(evidence.bars, evidence.obligations, period_start, period_end, WIDTH)]))
    story.append(KeepTogether([Paragraph("Depth within the band", H3), charts.depth_chart(evidence.bars, evidence.obligations, period_start, period_end, WIDTH)]))
    story += _incidents(market)
    story += _behaviour(market["behaviour"])
    story += _fees(market["fees"])
    story += _escalation(market["escalation"])
    story.append(PageBreak())
    return story


def render_pdf(*, document: dict, evidence: list[MarketEvidence], generated: dict, period_start, period_end) -> bytes:
    out = io.BytesIO()
    title = f"Audit report — {document['scope']['label']} — {document['period']['label']}"

    def footer(canvas, pdf):
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.drawString(15 * mm, 8 * mm, title)
        canvas.drawRightString(A4[0] - 15 * mm, 8 * mm, f"page {pdf.page}")
        canvas.restoreState()

    pdf = SimpleDocTemplate(out, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=14 * mm,
                            bottomMargin=14 * mm, title=title, author="Liquidity compliance monitor",
                            creator=f"LCM {generated['product_version']}")
    story = _cover(document, generated) + _methodology(document)
    by_id = {e.market["id"]: e for e in evidence}
    for market in document["markets"]:
        story += _market_section(market, by_id[market["market"]["id"]], period_start, period_end)
    pdf.build(story, onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()
