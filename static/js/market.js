/* A market page: live charts from /ws/markets/<id>/ (≤ 1 update per second), applied with
   Plotly.extendTraces over a fixed window; a stable uirevision keeps the user's zoom. On every
   (re)connect the live window is reloaded from the server, whose series has null for seconds
   without valid data, so a gap is drawn as a gap, never as data. */
"use strict";
(function () {
  const {esc, badge, pct, usd, plotTime, utc, serverNow, getJSON, liveSocket} = LCMUI;
  const limits = JSON.parse(document.getElementById("limits-data").textContent);
  let live = JSON.parse(document.getElementById("live-data").textContent);
  let state = null, mode = "live", lastTs = null;
  const W = LCM.windowSeconds;
  const el = id => document.getElementById(id);
  const CONFIG = {responsive: true, displaylogo: false};
  const BASE = {margin: {l: 55, r: 15, t: 10, b: 40}, legend: {orientation: "h", y: -0.25}, hovermode: "x unified"};
  const hline = (y, color, dash, label) => ({type: "line", xref: "paper", x0: 0, x1: 1, y0: y, y1: y, line: {color, width: 1.5, dash}, label: {text: label, textposition: "end", font: {size: 10, color}}});

  function spreadLayout(uirevision) {
    const shapes = [];
    if (limits) {
      shapes.push({type: "rect", xref: "paper", x0: 0, x1: 1, y0: limits.spread_target_min_pct, y1: limits.spread_target_max_pct,
        fillcolor: "rgba(26,127,55,0.10)", line: {width: 0}, label: {text: "target", textposition: "top left", font: {size: 10}}});
      shapes.push(hline(limits.spread_max_pct, "#cf222e", "dash", `max ${limits.spread_max_pct} %`));
    }
    return {...BASE, uirevision, shapes, xaxis: {type: "date", title: {text: "time (UTC)"}}, yaxis: {title: {text: `spread % (÷ ${limits ? limits.spread_denominator : "ask"})`}, rangemode: "tozero"}};
  }
  function depthLayout(uirevision) {
    const shapes = [];
    if (limits && limits.depth_min_usd != null) shapes.push(hline(limits.depth_min_usd, "#cf222e", "dash", `min total ${usd(limits.depth_min_usd)}`));
    if (limits && limits.depth_min_side_usd != null) shapes.push(hline(limits.depth_min_side_usd, "#9a6700", "dot", `min per side ${usd(limits.depth_min_side_usd)}`));
    return {...BASE, uirevision, shapes, xaxis: {type: "date", title: {text: "time (UTC)"}}, yaxis: {title: {text: "USD"}, rangemode: "tozero"}};
  }
  const line = (name, color, extra) => ({type: "scatter", mode: "lines", name, line: {color, width: 1.5}, connectgaps: false, x: [], y: [], ...extra});

  // ---------------------------------------------------------------- live mode
  function drawLive(series) {
    const x = series.ts.map(plotTime);
    const total = series.depth_bid_usd.map((b, i) => (b == null || series.depth_ask_usd[i] == null ? null : b + series.depth_ask_usd[i]));
    Plotly.react(el("chart-spread"), [line("spread %", "#0969da", {x, y: series.spread_pct})], spreadLayout("live"), CONFIG);
    Plotly.react(el("chart-depth"), [
      line("bid", "#1a7f37", {x, y: series.depth_bid_usd}), line("ask", "#cf222e", {x, y: series.depth_ask_usd}),
      line("bid + ask", "#57606a", {x, y: total, line: {color: "#57606a", width: 1, dash: "dot"}}),
    ], depthLayout("live"), CONFIG);
    lastTs = series.ts.length ? Date.parse(series.ts[series.ts.length - 1]) : null;
  }
  function resyncLive() {
    return getJSON(`${LCM.api}live/?seconds=${W}`).then(drawLive).catch(err => { el("history-error").textContent = `resync failed: ${err.message}`; });
  }
  function extendLive(s) {
    const t = Math.floor(Date.parse(s.ts) / 1000) * 1000;
    if (lastTs != null && t <= lastTs) return;
    const xs = [], spread = [], bid = [], ask = [], total = [];
    if (lastTs != null && t - lastTs > 1500) {  // seconds we have no data for: a null breaks the line
      xs.push(plotTime(new Date(lastTs + 1000).toISOString())); spread.push(null); bid.push(null); ask.push(null); total.push(null);
    }
    xs.push(plotTime(new Date(t).toISOString()));
    spread.push(s.valid ? s.spread_pct : null);
    bid.push(s.valid ? s.depth_bid_usd : null);
    ask.push(s.valid ? s.depth_ask_usd : null);
    total.push(s.valid && s.depth_bid_usd != null ? s.depth_bid_usd + s.depth_ask_usd : null);
    Plotly.extendTraces(el("chart-spread"), {x: [xs], y: [spread]}, [0], W);
    Plotly.extendTraces(el("chart-depth"), {x: [xs, xs, xs], y: [bid, ask, total]}, [0, 1, 2], W);
    lastTs = t;
  }

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
    const spread = [line("avg spread %", "#0969da", {x, y: c.spread_avg}), line("max spread %", "#8250df", {x, y: c.spread_max, line: {width: 1, color: "#8250df"}})];
    const depth = [line("min bid", "#1a7f37", {x, y: c.depth_bid_min}), line("min ask", "#cf222e", {x, y: c.depth_ask_min})];
    if (h.previous) {
      const p = h.previous, px = p.minute.map(plotTime), dash = {dash: "dot", width: 1};
      spread.push(line("avg spread %, previous period", "#9a6700", {x: px, y: p.spread_avg, line: {color: "#9a6700", ...dash}}));
      depth.push(line("min bid, previous", "#6e7781", {x: px, y: p.depth_bid_min, line: {color: "#6e7781", ...dash}}));
      depth.push(line("min ask, previous", "#bc4c00", {x: px, y: p.depth_ask_min, line: {color: "#bc4c00", ...dash}}));
    }
    Plotly.react(el("chart-spread"), spread, spreadLayout(rev), CONFIG);
    Plotly.react(el("chart-depth"), depth, depthLayout(rev), CONFIG);
  }

  // ---------------------------------------------------------------- cards
  function ageOf(s) { return s.ts ? (serverNow() - Date.parse(s.ts)) / 1000 : null; }
  function renderCards() {
    const age = ageOf(live);
    const stale = age == null || age > LCM.staleAfter;
    const spreadSt = stale ? {status: "unknown", text: "stale"} : live.spread, depthSt = stale ? {status: "unknown", text: "stale"} : live.depth;
    el("card-spread").innerHTML = `<span class="num">${stale ? "—" : pct(live.spread_pct)}</span> ${badge(spreadSt.status, spreadSt.text)}<br><small>${esc(spreadSt.text)}</small>`;
    const lb = !stale && live.depth_lower_bound ? ` <span class="lower-bound">lower bound</span>` : "";
    el("card-depth").innerHTML = `<span class="num">${stale || live.depth_bid_usd == null ? "—" : (live.depth_lower_bound ? "≥ " : "") + usd(live.depth_bid_usd + live.depth_ask_usd)}</span> ${badge(depthSt.status, depthSt.text)}${lb}` +
      `<br><small>bid ${stale ? "—" : usd(live.depth_bid_usd)} · ask ${stale ? "—" : usd(live.depth_ask_usd)}</small>`;
    el("card-age").innerHTML = age == null ? `<span class="stale-tag">NO DATA</span>` : stale ? `<span class="stale-tag">STALE ${Math.round(age)} s</span>` : `<span class="num">${Math.max(0, Math.round(age))} s</span><br><small>${utc(live.ts)}</small>`;
    document.getElementById("cards").dataset.stale = stale ? "1" : "0";
    if (state) {
      const u = state.uptime;
      el("card-uptime").innerHTML = `<span class="num">${pct(u.uptime_pct, 2)}</span> ${badge(u.status, u.text)}<br><small>${u.required_pct != null ? `clause ${u.required_pct} % · ${esc(u.text)}` : "not enforced"}</small>`;
      el("card-behaviour").innerHTML = `${badge(state.behaviour.status, state.behaviour.text)}<br><small>${esc(state.behaviour.text)}</small>`;
    }
  }

  // ---------------------------------------------------------------- slower panels
  function drawUptime(timeline, u) {
    let compliant = 0;
    const x = [], y = [], badX = [], badY = [], unkX = [], unkY = [];
    timeline.forEach((m, i) => {
      if (m.compliant) compliant += 1;
      const v = (compliant / (i + 1)) * 100, t = plotTime(m.minute);
      x.push(t); y.push(v);
      if (m.compliant === false) { badX.push(t); badY.push(v); }
      if (m.compliant == null) { unkX.push(t); unkY.push(v); }
    });
    const shapes = u.required_pct != null ? [hline(u.required_pct, "#cf222e", "dash", `clause ${u.required_pct} %`)] : [];
    Plotly.react(el("chart-uptime"), [
      line("uptime so far %", "#0969da", {x, y}),
      {type: "scatter", mode: "markers", name: "non-compliant minute", x: badX, y: badY, marker: {color: "#cf222e", size: 5, symbol: "x"}},
      {type: "scatter", mode: "markers", name: "unknown minute (no data)", x: unkX, y: unkY, marker: {color: "#57606a", size: 5, symbol: "circle-open"}},
    ], {...BASE, uirevision: "uptime", shapes, xaxis: {type: "date", title: {text: "minute (UTC)"}, range: todayRange()}, yaxis: {title: {text: "%"}, range: [Math.min(90, ...y.concat([100])) - 1, 100.5]}}, CONFIG);
    el("uptime-text").innerHTML = u.budget_minutes != null
      ? `${badge(u.status, u.text)} breach budget today: <b>${u.budget_left_minutes.toFixed(1)}</b> of ${u.budget_minutes.toFixed(1)} min left · ${u.compliant_minutes} of ${u.elapsed_minutes} closed minutes compliant · ${u.unknown_minutes} unknown`
      : `${badge(u.status, u.text)} ${esc(u.text)}`;
  }
  function todayRange() {
    const day = new Date(serverNow()).toISOString().slice(0, 10);
    return [`${day} 00:00:00`, `${day} 23:59:59`];
  }
  function cumAt(side, price) {
    // cumulative depth of the book side up to the own order's price (best first)
    let v = 0;
    side.price.forEach((p, i) => { if ((side === state.book.bids && p >= price) || (side === state.book.asks && p <= price)) v = side.cum_usd[i]; });
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
        y: own.map(o => cumAt(side === "BUY" ? book.bids : book.asks, o.price)),
        text: own.map(o => `order ${o.order_id}: ${o.qty} @ ${o.price}`), marker: {symbol: "diamond", size: 10, color, line: {color: "#fff", width: 1}}});
    }
    const shapes = [];
    if (book.band) {
      const v = (x, dash, label) => ({type: "line", yref: "paper", y0: 0, y1: 1, x0: x, x1: x, line: {color: "#57606a", dash, width: 1}, label: {text: label, textposition: "end", font: {size: 10}}});
      shapes.push(v(book.band.low, "dash", `−${book.band.pct} %`), v(book.band.high, "dash", `+${book.band.pct} %`), v(book.band.mid, "dot", "mid"));
    }
    Plotly.react(el("chart-book"), traces, {...BASE, hovermode: "closest", uirevision: "book", shapes, xaxis: {title: {text: "price"}}, yaxis: {title: {text: "cumulative USD"}}}, CONFIG);
  }
  function drawBehaviour(b) {
    const box = el("gauges");
    box.innerHTML = b.gauges.length ? "" : `<p class="muted">No order data for this market (no own orders today, no exchange indicators in the last hour).</p>`;
    b.gauges.forEach((g, i) => {
      const div = document.createElement("div"); div.className = "gauge"; box.appendChild(div);
      const color = {ok: "#1a7f37", warning: "#9a6700", breach: "#cf222e", unknown: "#57606a"}[g.status];
      const top = Math.max(g.trigger || 0, g.value) * 1.2 || 1;
      Plotly.react(div, [{type: "indicator", mode: "gauge+number", value: g.value, number: {suffix: g.unit ? ` ${g.unit}` : "", valueformat: ".3~f"},
        title: {text: `${g.name} <span style="font-size:.8em">(${g.source})</span>`, font: {size: 13}},
        gauge: {axis: {range: [0, top]}, bar: {color}, threshold: g.trigger != null ? {line: {color: "#cf222e", width: 3}, value: g.trigger} : undefined}}],
        {margin: {l: 20, r: 20, t: 40, b: 5}, uirevision: `gauge${i}`}, {displayModeBar: false});
    });
    el("indicators").innerHTML = `<tr><th>indicator</th><th>source</th><th>value</th><th>trigger</th><th>status</th><th>lock</th></tr>` +
      b.gauges.map(g => `<tr><td>${esc(g.name)}</td><td>${g.source}</td><td>${g.value}${g.unit ? " " + g.unit : ""}</td><td>${g.trigger ?? "—"}</td><td>${badge(g.status)}</td>` +
        `<td>${g.locked ? `<span class="lock">LOCKED</span> recovers ${utc(g.recover_at)}` : "—"}</td></tr>`).join("");
  }
  function drawApiHealth(h) {
    el("api-health").innerHTML = h == null ? `<tr><td class="muted">API health is not recorded.</td></tr>` :
      `<tr><th>responses</th><th>429</th><th>418</th><th>401</th><th>−1021</th><th>no response</th><th>weight used (1m)</th><th>latency</th><th>last</th></tr>` +
      `<tr><td>${h.total}</td><td>${h.http_429}</td><td>${h.http_418}</td><td>${h.http_401}</td><td>${h.code_1021}</td><td>${h.no_response}</td>` +
      `<td>${h.used_weight_1m ?? "—"}</td><td>${h.latency_ms == null ? "—" : h.latency_ms + " ms"}</td><td>${utc(h.last_at)}</td></tr>`;
  }
  function drawBreaches(timeline) {
    const stretches = [];
    for (const m of timeline) {
      const kind = m.compliant === false ? "non-compliant" : m.compliant == null ? "unknown (no data)" : null;
      const last = stretches[stretches.length - 1];
      if (kind && last && last.kind === kind && Date.parse(m.minute) - Date.parse(last.end) === 60000) last.end = m.minute;
      else if (kind) stretches.push({kind, start: m.minute, end: m.minute});
    }
    const recent = stretches.slice(-10).reverse();
    el("breaches").innerHTML = recent.length
      ? `<tr><th>from</th><th>to (incl.)</th><th>minutes</th><th>kind</th></tr>` + recent.map(s => `<tr><td>${utc(s.start)}</td><td>${utc(s.end)}</td><td>${(Date.parse(s.end) - Date.parse(s.start)) / 60000 + 1}</td><td>${badge(s.kind === "non-compliant" ? "breach" : "unknown")} ${s.kind}</td></tr>`).join("")
      : `<tr><td class="muted">${timeline.length ? "Every closed minute today was compliant." : "No closed minute under obligation yet today."}</td></tr>`;
  }
  function refreshState() {
    return getJSON(`${LCM.api}state/`).then(s => {
      state = s;
      drawUptime(s.uptime_timeline, s.uptime); drawBook(s.book); drawBehaviour(s.behaviour); drawApiHealth(s.api_health); drawBreaches(s.uptime_timeline);
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
        live = u.live;
        if (mode === "live") extendLive(u.live);
      }
      renderCards();
    },
  });
  setInterval(renderCards, 1000);
  setInterval(refreshState, 15000);
  drawLive({ts: [], spread_pct: [], depth_bid_usd: [], depth_ask_usd: []});
  renderCards();
  refreshState().then(() => { document.body.dataset.ready = "1"; });
})();
