/* The overview: every market's obligations at a glance, sorted/filtered/grouped in the browser,
   updated live from /ws/overview/ (coalesced server-side to ≤ 1 update per market per second). */
"use strict";
(function () {
  const {esc, badge, worst, pct, usd, utc, serverNow, getJSON, liveSocket, SEVERITY} = LCMUI;
  const tbody = document.querySelector("#markets tbody");
  const filters = document.getElementById("filters");
  let rows = JSON.parse(document.getElementById("rows-data").textContent);
  let byId = new Map();
  let sortKey = "status", sortDir = -1, renderQueued = false, opened = false;

  function ageSeconds(row) {
    return row.live.ts ? (serverNow() - Date.parse(row.live.ts)) / 1000 : null;
  }
  // A market with no data for longer than STALE_AFTER_SECONDS has no live verdict: unknown, flagged stale.
  function applyStaleness(row) {
    const age = ageSeconds(row);
    if (!row.live.stale && (age == null || age > LCM.staleAfter)) {
      row.live.stale = true;
      row.live.spread = {status: "unknown", text: "stale: no fresh data"};
      row.live.depth = {status: "unknown", text: "stale: no fresh data"};
    }
    // The same rule as dashboard.selectors.market_status, re-applied as live cells change between resyncs.
    const book = [row.live.spread.status, row.live.depth.status];
    row.status = row.live.stale || book.includes("unknown") ? "unknown"
      : worst(book.concat([row.uptime.status, row.behaviour.status]).filter(s => s !== "unknown"));
  }
  function index() {
    byId = new Map(rows.map(r => [r.market_id, r]));
    const venues = [...new Set(rows.map(r => r.venue))].sort();
    const sel = filters.elements.venue, current = sel.value;
    sel.innerHTML = `<option value="">all</option>` + venues.map(v => `<option>${esc(v)}</option>`).join("");
    sel.value = current;
    rows.forEach(applyStaleness);
  }

  const SORT = {
    status: r => (r.live.stale ? 1.5 : SEVERITY[r.status]),
    venue: r => r.venue, tier: r => r.tier, symbol: r => r.symbol,
    spread: r => r.live.spread_pct ?? -1,
    depth: r => (r.live.depth_bid_usd == null ? -1 : r.live.depth_bid_usd + r.live.depth_ask_usd),
    uptime: r => r.uptime.uptime_pct ?? -1,
    behaviour: r => SEVERITY[r.behaviour.status], score: r => r.score ?? -1, escalation: r => r.escalation ?? -1,
    age: r => ageSeconds(r) ?? 1e12,
  };

  function visible() {
    const q = filters.elements.q.value.trim().toLowerCase();
    const venue = filters.elements.venue.value, tier = filters.elements.tier.value, status = filters.elements.status.value;
    return rows.filter(r =>
      (!q || r.symbol.toLowerCase().includes(q) || r.venue.toLowerCase().includes(q)) &&
      (!venue || r.venue === venue) && (!tier || String(r.tier) === tier) && (!status || r.status === status));
  }

  function cellSpread(r) {
    const l = r.limits, s = r.live;
    const limits = l ? `<small>target ≤ ${l.spread_target_max_pct} % · max ${l.spread_max_pct} %</small>` : "";
    return `<span class="num">${pct(s.spread_pct)}</span> ${badge(s.spread.status, s.spread.text)}<br>${limits}`;
  }
  function cellDepth(r) {
    const l = r.limits, s = r.live;
    const lb = s.depth_lower_bound ? "≥ " : "";
    const sideTag = side => (s[`depth_${side}_complete`] === false ? `<span class="lower-bound" title="book does not reach the band edge on this side">lower bound</span>` : "");
    const min = l ? [l.depth_min_usd != null ? `min ${usd(l.depth_min_usd)}` : "", l.depth_min_side_usd != null ? `${usd(l.depth_min_side_usd)}/side` : ""].filter(Boolean).join(" · ") : "";
    const total = s.depth_bid_usd == null ? "—" : `${lb}${usd(s.depth_bid_usd + s.depth_ask_usd)}`;
    return `<span class="num">${total}</span> ${badge(s.depth.status, s.depth.text)}<br>` +
      `<small>bid ${usd(s.depth_bid_usd)} ${sideTag("bid")} / ask ${usd(s.depth_ask_usd)} ${sideTag("ask")} · ±${l ? l.depth_band_pct : "?"} % · ${min}</small>`;
  }
  function cellUptime(r) {
    const u = r.uptime;
    const clause = u.required_pct != null ? `clause ${u.required_pct} %` : "not enforced";
    const budget = u.budget_left_minutes != null ? ` · budget ${u.budget_left_minutes.toFixed(0)} of ${u.budget_minutes.toFixed(0)} min left` : "";
    return `<span class="num">${pct(u.uptime_pct, 2)}</span> ${badge(u.status, u.text)}<br><small>${clause}${budget}</small>`;
  }
  function cellAge(r) {
    const age = ageSeconds(r);
    if (age == null) return `<span class="stale-tag">NO DATA</span>`;
    const text = age < 120 ? `${Math.max(0, Math.round(age))} s` : age < 7200 ? `${Math.round(age / 60)} min` : `${Math.round(age / 3600)} h`;
    return r.live.stale ? `<span class="stale-tag">STALE ${text}</span>` : `<span title="${utc(r.live.ts)}">${text}</span>`;
  }
  function rowHtml(r) {
    return `<tr data-market-id="${r.market_id}" data-status="${r.status}" class="${r.live.stale ? "row-stale" : ""} row-${r.status}">` +
      `<td>${badge(r.status)}${r.live.stale ? ' <span class="stale-tag">STALE</span>' : ""}</td>` +
      `<td>${esc(r.venue)}</td><td>${r.tier}</td><td><a href="${LCM.marketUrl}${r.market_id}/">${esc(r.symbol)}</a></td>` +
      `<td>${cellSpread(r)}</td><td>${cellDepth(r)}</td><td>${cellUptime(r)}</td>` +
      `<td>${badge(r.behaviour.status, r.behaviour.text)}<br><small>${esc(r.behaviour.text)}</small></td>` +
      `<td>${r.score == null ? '<span class="muted" title="not computed yet">—</span>' : r.score}</td>` +
      `<td>${r.escalation == null ? '<span class="muted" title="no violation record yet">—</span>' : esc(r.escalation)}</td>` +
      `<td>${cellAge(r)}</td></tr>`;
  }

  function render() {
    renderQueued = false;
    const shown = visible();
    const key = SORT[sortKey];
    shown.sort((a, b) => { const x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : a.market_id - b.market_id) * sortDir; });
    const group = filters.elements.group.value;
    let html = "";
    if (!shown.length) html = `<tr><td colspan="11">${rows.length ? "No market matches the filters." : "No markets are monitored yet."}</td></tr>`;
    else if (!group) html = shown.map(rowHtml).join("");
    else {
      const groups = new Map();
      for (const r of shown) { const g = group === "status" ? r.status : r[group]; if (!groups.has(g)) groups.set(g, []); groups.get(g).push(r); }
      for (const [g, rs] of groups) {
        const label = group === "status" ? badge(g) : `${group} ${esc(g)}`;
        html += `<tr class="group"><th colspan="11">${label} · ${rs.length} market${rs.length === 1 ? "" : "s"}</th></tr>` + rs.map(rowHtml).join("");
      }
    }
    tbody.innerHTML = html;
    const n = s => rows.filter(r => r.status === s).length;
    document.getElementById("counts").textContent =
      `${shown.length} of ${rows.length} shown · ${n("breach")} breach · ${n("warning")} warning · ${rows.filter(r => r.live.stale).length} stale`;
    document.querySelectorAll("#markets th[data-sort]").forEach(th => {
      th.dataset.dir = th.dataset.sort === sortKey ? (sortDir > 0 ? "asc" : "desc") : "";
    });
    document.body.dataset.ready = "1";
  }
  function queueRender() { if (!renderQueued) { renderQueued = true; requestAnimationFrame(render); } }

  document.querySelectorAll("#markets th[data-sort]").forEach(th => th.addEventListener("click", () => {
    if (sortKey === th.dataset.sort) sortDir = -sortDir; else { sortKey = th.dataset.sort; sortDir = 1; }
    render();
  }));
  filters.addEventListener("input", render);

  function resync() {
    return getJSON(LCM.api).then(body => { rows = body.rows; index(); render(); }).catch(err => {
      document.getElementById("conn").textContent = `resync failed: ${err.message}`;
    });
  }
  liveSocket(LCM.ws, {
    statusEl: document.getElementById("conn"),
    // The page came with fresh rows; only a reconnect has missed updates to catch up on.
    onOpen() { if (opened) resync(); opened = true; },
    onMessage(msg) {
      if (msg.type !== "updates") return;
      for (const u of msg.updates) {
        const row = byId.get(u.market_id);
        if (!row) continue;
        row.live = u.live;
        applyStaleness(row);
      }
      queueRender();
    },
  });
  // Ages tick and staleness shows even when no message arrives; uptime and order behaviour move by the minute.
  setInterval(() => { rows.forEach(applyStaleness); queueRender(); }, 1000);
  setInterval(resync, 60000);

  index();
  render();
})();
