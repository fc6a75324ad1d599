/* A market page: live charts from /ws/markets/<id>/ (≤ 1 update per second), applied with
   Plotly.extendTraces over a fixed window; a stable uirevision keeps the user's zoom. On every
   (re)connect the live window is reloaded from the server, whose series has null for seconds
   without valid data, so a gap is drawn as a gap, never as data. Every status shown was judged by
   the server (the compliance engine), sent with each live update. */
"use strict";
(function () {
  const {esc, badge, age, ESCALATION, pct, usd, plotTime, utc, serverNow, getJSON, liveSocket} = LCMUI;
  const limits = JSON.parse(document.getElementById("limits-data").textContent);
  let row = JSON.parse(document.getElementById("row-data").textContent);
  let mode = "live", lastTs = null, behind = false;  // behind: a hidden tab skipped live points
  const W = LCM.windowSeconds;
  const el = id => document.getElementById(id);
  const CONFIG = {responsive: true, displaylogo: false};
  const BASE = {margin: {l: 55, r: 15, t: 10, b: 40}, legend: {orientation: "h", y: -0.25}, hovermode: "x unified"};
  // Tick labels may overflow the plot's div: by default Plotly measures every tick label on every redraw to hide
  // those that would, a quarter of a live redraw's script time, and ours never overflow (the margins hold them).
  const AXIS = {ticklabeloverflow: "allow"};
  const hline = (y, color, dash, label) => ({type: "line", xref: "paper", x0: 0, x1: 1, y0: y, y1: y, line: {color, width: 1.5, dash}, label: {text: label, textposition: "end", font: {size: 10, color}}});
  // Series lines are 1 px: the renderer rasterizes a 1 px stroke several times faster than a wider one, which
  // matters with a redraw each second on every open page (a wall of 20 market pages shares one machine's cores).
  const line = (name, color, extra) => ({type: "scatter", mode: "lines", name, line: {color, width: 1}, connectgaps: false, x: [], y: [], ...extra});

  /* Spread (top, y2) and band depth (bottom, y) are one figure sharing one time axis: one redraw per second
     instead of two, a zoom on time applies to both, and the hover shows both at the same second. Trace 0 is
     always the spread. Plotly lays out its legend, shape labels and axis titles again on every redraw (the
     titles by measuring every tick label to keep clear of them), over a third of a live redraw's script time,
     so this figure has none: its legend, thresholds included, is HTML written when the series change, the
     ticks carry the units, and the panel's heading says what is shown (times are UTC). */
  function thresholds() {
    if (!limits) return [];
    const out = [{name: `target ${limits.spread_target_min_pct}–${limits.spread_target_max_pct} %`, band: [limits.spread_target_min_pct, limits.spread_target_max_pct], color: "rgba(26,127,55,0.25)", yaxis: "y2"},
      {name: `max spread ${limits.spread_max_pct} %`, y: limits.spread_max_pct, color: "#cf222e", dash: "dash", yaxis: "y2"}];
    if (limits.depth_min_usd != null) out.push({name: `min total depth ${usd(limits.depth_min_usd)}`, y: limits.depth_min_usd, color: "#cf222e", dash: "dash", yaxis: "y"});
    if (limits.depth_min_side_usd != null) out.push({name: `min depth per side ${usd(limits.depth_min_side_usd)}`, y: limits.depth_min_side_usd, color: "#9a6700", dash: "dot", yaxis: "y"});
    return out;
  }
  function liveLayout(uirevision) {
    const shapes = thresholds().map(t => t.band
      ? {type: "rect", xref: "paper", yref: t.yaxis, x0: 0, x1: 1, y0: t.band[0], y1: t.band[1], fillcolor: "rgba(26,127,55,0.10)", line: {width: 0}}
      : {type: "line", xref: "paper", yref: t.yaxis, x0: 0, x1: 1, y0: t.y, y1: t.y, line: {color: t.color, width: 1.5, dash: t.dash}});
    return {...BASE, uirevision, shapes, showlegend: false,
      xaxis: {...AXIS, type: "date"},
      yaxis: {...AXIS, domain: [0, 0.45], tickprefix: "$", rangemode: "tozero"},
      yaxis2: {...AXIS, domain: [0.55, 1], ticksuffix: " %", rangemode: "tozero"}};
  }
  const SPREAD = {yaxis: "y2"};
  const STROKE = {dot: "dotted", dash: "dashed"};
  function drawLegend(traces) {
    const key = (t, swatch) => `<span class="key">${swatch}${esc(t.name)} <small class="muted">(${t.yaxis === "y2" ? "top" : "bottom"})</small></span>`;
    setHtml("chart-live-legend",
      traces.map(t => key(t, `<i style="border-top: 2px ${STROKE[t.line.dash] || "solid"} ${t.line.color}"></i>`)).join("") +
      thresholds().map(t => key(t, t.band ? `<i class="band" style="background: ${t.color}"></i>` : `<i style="border-top: 2px ${STROKE[t.dash]} ${t.color}"></i>`)).join(""));
  }

  // ---------------------------------------------------------------- live mode
  // Live x values are epoch milliseconds, which a Plotly date axis shows as UTC like the text it is
  // otherwise given. (Plotly converts every x value again on each redraw either way: about a tenth of it.)
  function drawLive(series) {
    const x = series.ts.map(Date.parse);
    const total = series.depth_bid_usd.map((b, i) => (b == null || series.depth_ask_usd[i] == null ? null : b + series.depth_ask_usd[i]));
    const traces = [
      line("spread %", "#0969da", {x, y: series.spread_pct, ...SPREAD}),
      line("bid depth", "#1a7f37", {x, y: series.depth_bid_usd}), line("ask depth", "#cf222e", {x, y: series.depth_ask_usd}),
      line("bid + ask depth", "#57606a", {x, y: total, line: {color: "#57606a", width: 1, dash: "dot"}}),
    ];
    Plotly.react(el("chart-live"), traces, liveLayout("live"), CONFIG);
    drawLegend(traces);
    lastTs = series.ts.length ? Date.parse(series.ts[series.ts.length - 1]) : null;
    behind = false;
  }
  // The server's window runs to the second it was read, null where nothing was stored yet, and the collector
  // publishes a sample before it stores it: live updates that arrive while the window loads are kept, and
  // drawn in it (where it has no data for their second) or after it — not drawn and then wiped by it, which
  // would leave a gap where the page had the data.
  let arriving = null;
  function resyncLive() {
    const arrived = arriving = [];
    return getJSON(`${LCM.api}live/?seconds=${W}`).then(series => {
      if (arriving !== arrived) return;  // a later resync is on its way
      arriving = null;
      if (mode !== "live") return;  // the user went to history meanwhile
      fillLive(series, arrived);
      drawLive(settled(series));
      arrived.forEach(extendLive);  // those of seconds after the window (extendLive skips the others)
    }).catch(err => {
      if (arriving === arrived) arriving = null;
      el("history-error").textContent = `resync failed: ${err.message}`;
    });
  }
  // The window without its last seconds that are still empty: they may not be stored yet, and the socket
  // brings them (a point can only be added after the last one drawn); if it does not, extendLive draws the gap.
  const UNSETTLED_SECONDS = 5;
  function settled(series) {
    let n = series.ts.length;
    while (n > 0 && series.ts.length - n < UNSETTLED_SECONDS && series.spread_pct[n - 1] == null && series.depth_bid_usd[n - 1] == null) n--;
    const out = {};
    for (const key of ["ts", "spread_pct", "depth_bid_usd", "depth_ask_usd"]) out[key] = series[key].slice(0, n);
    return out;
  }
  // Fills the window's empty seconds from the updates of those seconds.
  function fillLive(series, updates) {
    const second = ts => Math.floor(Date.parse(ts) / 1000);
    const index = new Map(series.ts.map((ts, i) => [second(ts), i]));
    for (const s of updates) {
      const i = index.get(second(s.ts));
      if (i !== undefined && s.valid && series.spread_pct[i] == null) {
        series.spread_pct[i] = s.spread_pct; series.depth_bid_usd[i] = s.depth_bid_usd; series.depth_ask_usd[i] = s.depth_ask_usd;
      }
    }
  }
  function extendLive(s) {
    const t = Math.floor(Date.parse(s.ts) / 1000) * 1000;
    if (lastTs != null && t <= lastTs) return;
    const xs = [], spread = [], bid = [], ask = [], total = [];
    if (lastTs != null && t - lastTs > 1500) {  // seconds we have no data for: a null breaks the line
      xs.push(lastTs + 1000); spread.push(null); bid.push(null); ask.push(null); total.push(null);
    }
    xs.push(t);
    spread.push(s.valid ? s.spread_pct : null);
    bid.push(s.valid ? s.depth_bid_usd : null);
    ask.push(s.valid ? s.depth_ask_usd : null);
    total.push(s.valid && s.depth_bid_usd != null ? s.depth_bid_usd + s.depth_ask_usd : null);
    Plotly.extendTraces(el("chart-live"), {x: [xs, xs, xs, xs], y: [spread, bid, ask, total]}, [0, 1, 2, 3], W);
    lastTs = t;
  }
  // A hidden tab draws nothing (the browser would not show it anyway); it reloads the window when shown again.
  document.addEventListener("visibilitychange", () => { if (!document.hidden && behind && mode === "live") resyncLive(); });

  // ---------------------------------------------------------------- history mode
  const form = el("history");
  function isoInput(d) { return d.toISOString().slice(0, 16).replace("T", " "); }
  form.elements.start.value = isoInput(new Date(serverNow() - 6 * 3600e3));
  form.elements.end.value = isoInput(new Date(serverNow()));
  form.addEventListener("submit", () => {
    const q = new URLSearchParams({start: form.elements.start.value, end: form.elements.end.value});
    if (form.elements.compare.checked) q.set("compare", "1");
    el("history-error").textContent = "";
    getJSON(`${LCM.api}history/?${q}`).then(drawHistory).catch(err => { el("history-error").textContent = err.message; });
  });
  form.elements.live.addEventListener("click", () => {
    mode = "live"; form.elements.live.hidden = true;
    el("mode").textContent = `Live: last ${W} s, 1 s samples`;
    resyncLive();
  });
  function drawHistory(h) {
    mode = "history"; form.elements.live.hidden = false;
    el("mode").textContent = `History ${utc(h.start)} → ${utc(h.end)}, minute bars`;
    const rev = `history:${h.start}:${h.end}`, c = h.current, x = c.minute.map(plotTime);
    const traces = [line("avg spread %", "#0969da", {x, y: c.spread_avg, ...SPREAD}), line("max spread %", "#8250df", {x, y: c.spread_max, ...SPREAD}),
      line("min bid depth", "#1a7f37", {x, y: c.depth_bid_min}), line("min ask depth", "#cf222e", {x, y: c.depth_ask_min})];
    if (h.previous) {
      const p = h.previous, px = p.minute.map(plotTime), dash = {dash: "dot", width: 1};
      traces.push(line("avg spread %, previous period", "#9a6700", {x: px, y: p.spread_avg, line: {color: "#9a6700", ...dash}, ...SPREAD}));
      traces.push(line("min bid depth, previous", "#6e7781", {x: px, y: p.depth_bid_min, line: {color: "#6e7781", ...dash}}));
      traces.push(line("min ask depth, previous", "#bc4c00", {x: px, y: p.depth_ask_min, line: {color: "#bc4c00", ...dash}}));
    }
    Plotly.react(el("chart-live"), traces, liveLayout(rev), CONFIG);
    drawLegend(traces);
  }

  // ---------------------------------------------------------------- cards
  // What each element shows: a part whose HTML is unchanged is not rewritten, so the page is not laid
  // out again for it (20 open pages share the machine's cores with the charts).
  const shown = new Map();
  function setHtml(id, html) {
    if (shown.get(id) !== html) { shown.set(id, html); el(id).innerHTML = html; }
  }
  const kpi = name => (row.live.kpis[name] ? row.live.kpis[name].status : "unknown");
  let cardsAt = 0;
  function renderCards() {
    cardsAt = Date.now();
    const live = row.live, u = row.uptime, l = limits;
    setHtml("status-now", badge(row.status, "this market's overall status now"));
    setHtml("card-spread", `<span class="num">${pct(live.spread_pct)}</span> ${badge(kpi("spread_pct"))}` +
      `<br><small>${l ? `target ≤ ${l.spread_target_max_pct} % · max ${l.spread_max_pct} % · ÷ ${l.spread_denominator}` : "no obligation"}</small>`);
    const lb = live.depth_lower_bound ? ` <span class="lower-bound">lower bound</span>` : "";
    const side = l && l.depth_min_side_usd != null ? ` ${badge(kpi("depth_side_usd"), "per side")}` : "";
    setHtml("card-depth", `<span class="num">${live.depth_usd == null ? "—" : (live.depth_lower_bound ? "≥ " : "") + usd(live.depth_usd)}</span> ${badge(kpi("depth_usd"))}${side}${lb}` +
      `<br><small>bid ${usd(live.depth_bid_usd)} · ask ${usd(live.depth_ask_usd)}${l && l.depth_min_usd != null ? ` · min ${usd(l.depth_min_usd)}` : ""}</small>`);
    const a = live.ts ? (serverNow() - Date.parse(live.ts)) / 1000 : null;
    setHtml("card-age", a == null ? `<span class="stale-tag">NO DATA</span>` : live.stale ? `<span class="stale-tag">STALE ${age(a)}</span><br><small>${utc(live.ts)}</small>` : `<span class="num">${age(a)}</span><br><small>${utc(live.ts)}</small>`);
    document.getElementById("cards").dataset.stale = live.stale ? "1" : "0";
    setHtml("card-uptime", !u.judged ? `${badge(u.status)}<br><small>not judged yet today</small>`
      : `<span class="num">${pct(u.adjusted_pct, 2)}</span> ${badge(u.status)}<br><small>${u.required_pct != null ? `clause ${u.required_pct} % · budget ${u.breach_budget_minutes} of ${Math.floor(u.budget_allowed_minutes)} min left` : "not enforced"} · as of ${utc(u.judged_until)}</small>`);
    setHtml("card-behaviour", `${badge(row.behaviour.status)}<br><small>${esc(row.behaviour.text)}</small>`);
    const e = row.escalation;
    setHtml("card-standing", `<span class="num">${row.score == null ? "—" : row.score}</span><small> / 1000 score</small><br>` +
      `<small>ladder: ${!e ? "—" : e.level ? esc(ESCALATION[e.level]) + ` (${e.violation_days_90d} violation days in 90 d)` : "no violation in 90 days"}</small>` +
      (row.clock_deadline ? `<br><span class="clock">⏱ liquidity-alert clock: ${((Date.parse(row.clock_deadline) - serverNow()) / 3600e3).toFixed(1)} h left (deadline ${utc(row.clock_deadline)})</span>` : ""));
  }

  // ---------------------------------------------------------------- slower panels
  const OUTCOME = {non_compliant: ["non-compliant minute", "#cf222e", "x"], exempt: ["volatility-exempt minute", "#9a6700", "triangle-up"],
    unknown: ["unknown minute (no data)", "#57606a", "circle-open"], excused: ["excused outage", "#8250df", "square-open"]};
  function kindOf(m) {
    if (m.outcome === "compliant") return null;
    if (m.outcome === "unknown") return m.excused ? "excused" : "unknown";
    return m.exempt ? "exempt" : "non_compliant";
  }
  function drawUptime(today, u) {
    const x = today.curve.map(c => plotTime(c.minute));
    const traces = [line("uptime so far % (exemption-adjusted)", "#0969da", {x, y: today.curve.map(c => c.adjusted_pct), mode: "lines+markers"}),
      line("raw", "#8c959f", {x, y: today.curve.map(c => c.raw_pct), line: {color: "#8c959f", width: 1, dash: "dot"}})];
    for (const [kind, [name, color, symbol]] of Object.entries(OUTCOME)) {
      const ms = today.minutes.filter(m => kindOf(m) === kind);
      if (ms.length) traces.push({type: "scatter", mode: "markers", name, x: ms.map(m => plotTime(m.minute)), y: ms.map(() => 100.6), marker: {color, size: 6, symbol}});
    }
    const lows = today.curve.map(c => c.adjusted_pct).filter(v => v != null);
    const shapes = u.required_pct != null ? [hline(u.required_pct, "#cf222e", "dash", `clause ${u.required_pct} %`)] : [];
    Plotly.react(el("chart-uptime"), traces, {...BASE, uirevision: "uptime", shapes, xaxis: {...AXIS, type: "date", title: {text: "minute (UTC)"}, range: todayRange()},
      yaxis: {...AXIS, title: {text: "%"}, range: [Math.min(90, u.required_pct ?? 100, ...lows) - 1, 101]}}, CONFIG);
    setHtml("uptime-text", !u.judged ? `${badge(u.status)} not judged yet today`
      : `${badge(u.status)} breach budget today: <b>${u.breach_budget_minutes}</b> of ${Math.floor(u.budget_allowed_minutes ?? 0)} min left · ` +
        `${u.compliant_minutes} compliant, ${u.non_compliant_minutes} non-compliant (${u.exempt_minutes} exempt), ${u.unknown_minutes} unknown, ${u.excused_minutes} excused of ${u.minutes_elapsed} minutes · ` +
        `coverage ${pct(u.coverage_pct, 1)} · method ${esc((u.evaluation_methods || []).join(", "))} · engine's verdict as of ${utc(u.judged_until)}`);
  }
  function todayRange() {
    const day = new Date(serverNow()).toISOString().slice(0, 10);
    return [`${day} 00:00:00`, `${day} 23:59:59`];
  }
  function cumAt(side, price, isBid) {
    // cumulative depth of the book side up to the own order's price (best first)
    let v = 0;
    side.price.forEach((p, i) => { if (isBid ? p >= price : p <= price) v = side.cum_usd[i]; });
    return v;
  }
  function drawBook(book) {
    if (!book.bids) { el("book-text").textContent = "No book snapshot stored yet."; Plotly.purge(el("chart-book")); return; }
    el("book-text").textContent = `snapshot ${utc(book.ts)}` + (book.usd_rate == null ? " · no USD rate for the quote (conversion market has no data)" : "");
    const step = (name, color, side) => ({type: "scatter", mode: "lines", name, x: side.price, y: side.cum_usd, line: {shape: "hv", color, width: 1.5}, fill: "tozeroy"});
    const traces = [step("bids (cumulative USD)", "#1a7f37", book.bids), step("asks (cumulative USD)", "#cf222e", book.asks)];
    for (const [side, name, color] of [["BUY", "own bids", "#0969da"], ["SELL", "own asks", "#8250df"]]) {
      const own = book.own.filter(o => o.side === side);
      if (own.length) traces.push({type: "scatter", mode: "markers", name, x: own.map(o => o.price),
        y: own.map(o => cumAt(side === "BUY" ? book.bids : book.asks, o.price, side === "BUY")),
        text: own.map(o => `order ${o.order_id}: ${o.qty} @ ${o.price}`), marker: {symbol: "diamond", size: 10, color, line: {color: "#fff", width: 1}}});
    }
    const shapes = [];
    if (book.band) {
      const v = (x, dash, label) => ({type: "line", yref: "paper", y0: 0, y1: 1, x0: x, x1: x, line: {color: "#57606a", dash, width: 1}, label: {text: label, textposition: "end", font: {size: 10}}});
      shapes.push(v(book.band.low, "dash", `−${book.band.pct} %`), v(book.band.high, "dash", `+${book.band.pct} %`), v(book.band.mid, "dot", "mid"));
    }
    Plotly.react(el("chart-book"), traces, {...BASE, hovermode: "closest", uirevision: "book", shapes, xaxis: {...AXIS, title: {text: "price"}}, yaxis: {...AXIS, title: {text: "cumulative USD"}}}, CONFIG);
  }
  function gauges(b) {
    const out = [];
    const c = b.cancel_ratio_pct;
    if (c.value != null) out.push({name: "Cancel ratio", source: "local", value: c.value, unit: "%", trigger: c.limit, status: c.status, detail: `${b.orders_placed} orders / 10 min`});
    for (const [name, i] of Object.entries(b.indicators)) {
      if (i.value != null) out.push({name, source: "local", value: i.value, unit: "", trigger: i.trigger_value, status: i.status, detail: `${i.orders} orders`});
      if (i.exchange) out.push({name, source: "exchange", value: i.exchange.value, unit: "", trigger: i.exchange.trigger_value, status: i.exchange.status,
        locked: i.exchange.is_locked, recover_at: i.exchange.planned_recover_time, detail: `reported ${utc(i.exchange.observed_at)}`});
    }
    return out;
  }
  const COLOR = {ok: "#1a7f37", warning: "#9a6700", breach: "#cf222e", triggered: "#cf222e", unknown: "#57606a", not_judged: "#8c959f"};
  function drawBehaviour(b) {
    const box = el("gauges");
    if (!b) { box.innerHTML = `<p class="muted">No obligation in force: order behaviour is not judged.</p>`; return; }
    const gs = gauges(b);
    box.innerHTML = gs.length ? "" : `<p class="muted">No own orders in the last 10 minutes and no exchange report.</p>`;
    gs.forEach((g, i) => {
      const div = document.createElement("div"); div.className = "gauge"; box.appendChild(div);
      const top = Math.max(g.trigger || 0, g.value) * 1.2 || 1;
      Plotly.react(div, [{type: "indicator", mode: "gauge+number", value: g.value, number: {suffix: g.unit ? ` ${g.unit}` : "", valueformat: ".3~f"},
        title: {text: `${g.name} <span style="font-size:.8em">(${g.source})</span>`, font: {size: 13}},
        gauge: {axis: {range: [0, top]}, bar: {color: COLOR[g.status]}, threshold: g.trigger != null ? {line: {color: "#cf222e", width: 3}, value: g.trigger} : undefined}}],
        {margin: {l: 20, r: 20, t: 40, b: 5}, uirevision: `gauge${i}`}, {displayModeBar: false});
    });
    setHtml("indicators", `<tr><th>indicator</th><th>source</th><th>value</th><th>trigger</th><th>status</th><th>lock</th><th></th></tr>` +
      gs.map(g => `<tr><td>${esc(g.name)}</td><td>${g.source}</td><td>${+g.value.toFixed(4)}${g.unit ? " " + g.unit : ""}</td><td>${g.trigger ?? "—"}</td><td>${badge(g.status)}</td>` +
        `<td>${g.locked ? `<span class="lock">LOCKED</span> recovers ${utc(g.recover_at)}` : "—"}</td><td><small>${esc(g.detail)}</small></td></tr>`).join(""));
  }
  function drawApiHealth(h) {
    setHtml("api-health",
      `<tr><th>responses</th><th>429</th><th>418</th><th>401</th><th>−1021</th><th>no response</th><th>weight used (1m)</th><th>latency</th><th>last</th></tr>` +
      `<tr><td>${h.total}</td><td>${h.http_429}</td><td>${h.http_418}</td><td>${h.http_401}</td><td>${h.clock_1021}</td><td>${h.no_response}</td>` +
      `<td>${h.used_weight_1m ?? "—"}</td><td>${h.latency_ms == null ? "—" : h.latency_ms + " ms"}</td><td>${utc(h.last_at)}</td></tr>`);
    setHtml("clock-offset", h.clock.length
      ? `<tr><th>collector shard</th><th>clock offset to the exchange</th><th>measured</th><th>heartbeat</th></tr>` + h.clock.map(c =>
        `<tr><td>${esc(c.shard)}</td><td class="num">${c.offset_ms >= 0 ? "+" : ""}${c.offset_ms.toFixed(1)} ms</td><td>${c.measured_at ? utc(new Date(c.measured_at * 1000).toISOString()) : "—"}</td><td>${badge(c.ok ? "ok" : "unknown", c.ok ? "lease held" : "no recent heartbeat")}</td></tr>`).join("")
      : `<tr><td class="muted">Clock offset: no collector of this venue has measured it yet.</td></tr>`);
  }
  function drawBreaches(minutes) {
    const stretches = [];
    for (const m of minutes) {
      const kind = kindOf(m), last = stretches[stretches.length - 1];
      if (kind && last && last.kind === kind && Date.parse(m.minute) - Date.parse(last.end) === 60000) last.end = m.minute;
      else if (kind) stretches.push({kind, start: m.minute, end: m.minute});
    }
    const recent = stretches.slice(-10).reverse();
    const status = {non_compliant: "breach", exempt: "warning", unknown: "unknown", excused: "not_judged"};
    setHtml("breaches", recent.length
      ? `<tr><th>from</th><th>to (incl.)</th><th>minutes</th><th>kind</th></tr>` + recent.map(s => `<tr><td>${utc(s.start)}</td><td>${utc(s.end)}</td><td>${(Date.parse(s.end) - Date.parse(s.start)) / 60000 + 1}</td><td>${badge(status[s.kind])} ${OUTCOME[s.kind][0]}</td></tr>`).join("")
      : `<tr><td class="muted">${minutes.length ? "Every closed minute today was compliant." : "No closed minute under obligation yet today."}</td></tr>`);
  }
  const drawnFrom = new Map();
  function changed(panel, data) {
    const json = JSON.stringify(data);
    if (drawnFrom.get(panel) === json) return false;
    drawnFrom.set(panel, json);
    return true;
  }
  function refreshState() {
    return getJSON(`${LCM.api}state/`).then(s => {
      row = {...s.row, live: row.live.ts && s.row.live.ts && row.live.ts > s.row.live.ts ? row.live : s.row.live};
      // Each panel is redrawn only when its data changed (the gauges and charts are whole Plotly plots).
      if (changed("uptime", [s.uptime_today, s.row.uptime, todayRange()])) { drawUptime(s.uptime_today, s.row.uptime); drawBreaches(s.uptime_today.minutes); }
      if (changed("book", s.book)) drawBook(s.book);
      if (changed("behaviour", s.behaviour)) drawBehaviour(s.behaviour);
      drawApiHealth(s.api_health);
      renderCards();
    }).catch(err => { el("book-text").textContent = `refresh failed: ${err.message}`; });
  }

  liveSocket(LCM.ws, {
    statusEl: el("conn"),
    onOpen() { if (mode === "live") resyncLive(); },
    onMessage(msg) {
      if (msg.type !== "updates") return;
      for (const u of msg.updates) {
        if (u.market_id !== LCM.marketId) continue;
        row.live = u.live;
        row.status = u.status;
        if (mode === "live" && u.live.ts) {
          if (document.hidden) behind = true;
          else if (arriving) arriving.push(u.live);
          else extendLive(u.live);
        }
      }
      renderCards();
    },
  });
  // The data age ticks on between updates; while they arrive each second they redraw the cards anyway.
  setInterval(() => { if (Date.now() - cardsAt >= 900) renderCards(); }, 1000);
  setInterval(refreshState, 15000);
  drawLive({ts: [], spread_pct: [], depth_bid_usd: [], depth_ask_usd: []});
  renderCards();
  refreshState().then(() => { document.body.dataset.ready = "1"; });
})();
