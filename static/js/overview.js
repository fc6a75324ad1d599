/* The overview: every market's obligations at a glance, sorted/filtered/grouped in the browser,
   updated live from /ws/overview/. Every status arrives judged by the server (the compliance
   engine); this page only renders. The table is drawn as one HTML string (one parse, one layout);
   a live update redraws only its row, and the ages tick in place. The page's data (`terms`: each
   distinct set of obligation terms, once; `rows`: each row's `terms` is an index into it) carries
   only what the table shows, so 500 rows stay small to send and parse. */
"use strict";
(function () {
  const {esc, badge, pct, usd, utc, age, serverNow, getJSON, liveSocket, SEVERITY, ESCALATION} = LCMUI;
  const tbody = document.querySelector("#markets tbody");
  const filters = document.getElementById("filters");
  const data = JSON.parse(document.getElementById("overview-data").textContent);
  let rows = data.rows, terms = data.terms;
  let byId = new Map();
  const trById = new Map();  // the drawn <tr> of each market, so updates never search the table
  const limitsOf = r => (r.terms == null ? null : terms[r.terms]);
  let sortKey = "status", sortDir = -1, opened = false;

  const SORT = {
    status: r => SEVERITY[r.status],
    venue: r => r.venue, tier: r => r.tier, symbol: r => r.symbol,
    spread: r => r.live.spread_pct ?? -1,
    depth: r => r.live.depth_usd ?? -1,
    uptime: r => r.uptime.adjusted_pct ?? -1,
    behaviour: r => SEVERITY[r.behaviour.status], score: r => r.score ?? -1,
    escalation: r => r.escalation ? r.escalation.violation_days_90d : -1,
    age: r => (r.live.ts ? -Date.parse(r.live.ts) : -1e15),
  };

  function index() {
    byId = new Map(rows.map(r => [r.market_id, r]));
    const venues = [...new Set(rows.map(r => r.venue))].sort();
    const sel = filters.elements.venue, current = sel.value;
    sel.innerHTML = `<option value="">all</option>` + venues.map(v => `<option>${esc(v)}</option>`).join("");
    sel.value = current;
  }
  function matches(r) {
    const q = filters.elements.q.value.trim().toLowerCase();
    const venue = filters.elements.venue.value, tier = filters.elements.tier.value, status = filters.elements.status.value;
    return (!q || r.symbol.toLowerCase().includes(q) || r.venue.toLowerCase().includes(q)) &&
      (!venue || r.venue === venue) && (!tier || String(r.tier) === tier) && (!status || r.status === status);
  }

  const kpi = (s, name) => (s.kpis[name] ? s.kpis[name].status : "unknown");
  function cellSpread(r) {
    const l = limitsOf(r), s = r.live;
    const limits = l ? `<small>target ≤ ${l.spread_target_max_pct} % · max ${l.spread_max_pct} %</small>` : "";
    return `<span class="num">${pct(s.spread_pct)}</span> ${badge(kpi(s, "spread_pct"))}<br>${limits}`;
  }
  function cellDepth(r) {
    const l = limitsOf(r), s = r.live;
    const lower = side => (s[`depth_${side}_complete`] === false ? ` <span class="lower-bound" title="the book does not reach the band edge on this side">lower bound</span>` : "");
    const total = s.depth_usd == null ? "—" : `${s.depth_lower_bound ? "≥ " : ""}${usd(s.depth_usd)}`;
    const side = l && l.depth_min_side_usd != null ? ` ${badge(kpi(s, "depth_side_usd"), "per side")}` : "";
    const min = l ? [l.depth_min_usd != null ? `min ${usd(l.depth_min_usd)}` : "", l.depth_min_side_usd != null ? `${usd(l.depth_min_side_usd)}/side` : ""].filter(Boolean).join(" · ") : "";
    return `<span class="num">${total}</span> ${badge(kpi(s, "depth_usd"))}${side}<br>` +
      `<small>bid ${usd(s.depth_bid_usd)}${lower("bid")} / ask ${usd(s.depth_ask_usd)}${lower("ask")}${l ? ` · ±${l.depth_band_pct} % · ${min}` : ""}</small>`;
  }
  function cellUptime(r) {
    const u = r.uptime;
    if (!u.judged) return `${badge(u.status)}<br><small>not judged yet today</small>`;
    if (u.required_pct == null) return `<span class="num">${pct(u.adjusted_pct, 2)}</span><br><small>not enforced</small>`;
    const raw = u.raw_pct !== u.adjusted_pct ? ` (raw ${pct(u.raw_pct, 2)})` : "";
    const budget = u.breach_budget_minutes < 0 ? `${-u.breach_budget_minutes} min over budget`
      : `budget ${u.breach_budget_minutes} of ${Math.floor(u.budget_allowed_minutes)} min left`;
    return `<span class="num">${pct(u.adjusted_pct, 2)}</span>${raw} ${badge(u.status)}<br>` +
      `<small>clause ${u.required_pct} % · ${budget} · as of ${utc(u.judged_until).slice(11, 16)}</small>`;
  }
  function cellEscalation(r) {
    const e = r.escalation, clock = r.clock_deadline;
    const ladder = !e ? "—" : e.level ? `${esc(ESCALATION[e.level])} <small>(${e.violation_days_90d} in 90 d)</small>` : `<span class="muted">none</span>`;
    const left = clock ? (Date.parse(clock) - serverNow()) / 3600e3 : null;
    return ladder + (clock ? `<br><span class="clock" title="liquidity-alert clock: deadline ${utc(clock)}">⏱ ${left.toFixed(0)} h left of 72 h</span>` : "");
  }
  function cellAge(r) {
    const a = r.live.ts ? (serverNow() - Date.parse(r.live.ts)) / 1000 : null;
    if (a == null) return `<span class="stale-tag">NO DATA</span>`;
    return r.live.stale ? `<span class="stale-tag">STALE ${age(a)}</span>` : `<span title="${utc(r.live.ts)}">${age(a)}</span>`;
  }
  function rowHtml(r) {
    return `<tr data-market-id="${r.market_id}" data-status="${r.status}" class="${r.live.stale ? "row-stale " : ""}row-${r.status}">` +
      `<td>${badge(r.status)}${r.live.stale ? ' <span class="stale-tag">STALE</span>' : ""}</td>` +
      `<td>${esc(r.venue)}</td><td>${r.tier}</td><td><a href="${LCM.marketUrl}${r.market_id}/">${esc(r.symbol)}</a></td>` +
      `<td>${cellSpread(r)}</td><td>${cellDepth(r)}</td><td>${cellUptime(r)}</td>` +
      `<td>${badge(r.behaviour.status)}<br><small>${esc(r.behaviour.text)}</small></td>` +
      `<td>${r.score == null ? '<span class="muted" title="not computed yet">—</span>' : `<span class="num">${r.score}</span><small> / 1000</small>`}</td>` +
      `<td>${cellEscalation(r)}</td><td class="age">${cellAge(r)}</td></tr>`;
  }

  const countsEl = document.getElementById("counts");
  function counts(shown) {
    let breach = 0, warning = 0, stale = 0;
    for (const r of rows) { breach += r.status === "breach"; warning += r.status === "warning"; stale += !!r.live.stale; }
    countsEl.textContent = `${shown} of ${rows.length} shown · ${breach} breach · ${warning} warning · ${stale} stale`;
  }
  function collectRows() {
    trById.clear();
    for (const tr of tbody.rows) if (tr.dataset.marketId) trById.set(Number(tr.dataset.marketId), tr);
  }
  function render() {
    const shown = rows.filter(matches);
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
    collectRows();
    counts(shown.length);
    document.querySelectorAll("#markets th[data-sort]").forEach(th => {
      th.dataset.dir = th.dataset.sort === sortKey ? (sortDir > 0 ? "asc" : "desc") : "";
    });
    document.body.dataset.ready = "1";
  }

  // Live: only the updated rows are redrawn (the order stays until the user sorts or the minute's resync).
  const changed = new Set();
  let patchQueued = false;
  function patch() {
    patchQueued = false;
    // All changed rows parsed in one pass, then swapped in: no layout between them.
    const ids = [...changed].filter(id => trById.has(id) && byId.has(id));
    changed.clear();
    if (!ids.length) return;
    const scratch = document.createElement("tbody");
    scratch.innerHTML = ids.map(id => rowHtml(byId.get(id))).join("");
    const fresh = [...scratch.rows];
    ids.forEach((id, i) => { trById.get(id).replaceWith(fresh[i]); trById.set(id, fresh[i]); });
    counts(trById.size);
  }
  const ageHtml = new WeakMap();  // what each age cell shows, so a tick writes only the cells that changed
  function tickAges() {
    for (const [id, tr] of trById) {
      const row = byId.get(id);
      if (!row) continue;
      const html = cellAge(row);
      if (ageHtml.get(tr) !== html) { tr.lastElementChild.innerHTML = html; ageHtml.set(tr, html); }
    }
  }

  document.querySelectorAll("#markets th[data-sort]").forEach(th => th.addEventListener("click", () => {
    if (sortKey === th.dataset.sort) sortDir = -sortDir; else { sortKey = th.dataset.sort; sortDir = 1; }
    render();
  }));
  filters.addEventListener("input", render);

  function resync() {
    return getJSON(LCM.api).then(body => { rows = body.rows; terms = body.terms; index(); render(); }).catch(err => {
      document.getElementById("conn").textContent = `resync failed: ${err.message}`;
    });
  }
  index();
  // The socket first: its handshake runs while the table is drawn (its events wait for the draw anyway).
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
        row.status = u.status;
        changed.add(u.market_id);
      }
      if (!patchQueued) { patchQueued = true; requestAnimationFrame(patch); }
    },
  });
  render();
  setInterval(tickAges, 1000);
  setInterval(resync, 60000);  // the engine's verdicts (uptime, order behaviour, score) move by the minute
})();
