/* Shared by the dashboard's pages: status badges (text + icon + colour) for the statuses the
   server judged, number formats, UTC clock, and a WebSocket that reconnects with backoff and asks the page to resync. */
"use strict";
(function () {
  const ICON = {ok: "✓", warning: "!", breach: "✕", unknown: "?", not_enforced: "–", triggered: "✕", not_judged: "–"};
  const LABEL = {ok: "OK", warning: "Warning", breach: "Breach", unknown: "Unknown", not_enforced: "Not enforced", stale: "STALE",
                 triggered: "Triggered", not_judged: "Not judged"};
  const SEVERITY = {not_enforced: 0, not_judged: 0, ok: 0, unknown: 1, warning: 2, breach: 3, triggered: 3};  // for sorting only

  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  }
  function badge(status, text) {
    const label = LABEL[status] || status;
    return `<span class="badge s-${status}" title="${esc(text || label)}"><b aria-hidden="true">${ICON[status] || "?"}</b> ${label}</span>`;
  }
  const ESCALATION = {warning: "1 · warning", penalty: "2 · penalty", delisting_review: "3 · delisting review"};
  function age(seconds) {
    return seconds < 120 ? `${Math.max(0, Math.round(seconds))} s` : seconds < 7200 ? `${Math.round(seconds / 60)} min` : `${Math.round(seconds / 3600)} h`;
  }
  function pct(v, digits) { return v == null ? "—" : `${v.toFixed(digits == null ? 3 : digits)} %`; }
  function usd(v) {
    if (v == null) return "—";
    if (Math.abs(v) >= 1e6) return `$${(v / 1e6).toFixed(2)}M`;
    if (Math.abs(v) >= 1e3) return `$${(v / 1e3).toFixed(1)}k`;
    return `$${v.toFixed(0)}`;
  }
  // Plotly's date axes take wall-clock strings; every time here is UTC, so drop the offset.
  function plotTime(iso) { return iso.slice(0, 19).replace("T", " "); }
  function utc(iso) { return iso ? `${plotTime(iso)} UTC` : "—"; }

  // Server clock minus browser clock, so data ages are right even on a skewed laptop.
  const clockOffsetMs = window.LCM && LCM.serverNow ? Date.parse(LCM.serverNow) - Date.now() : 0;
  function serverNow() { return Date.now() + clockOffsetMs; }

  function getJSON(url) {
    return fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}}).then(r => {
      if (!r.ok) return r.json().catch(() => ({})).then(b => { throw new Error(b.error || `HTTP ${r.status}`); });
      return r.json();
    });
  }

  /* onOpen runs on every (re)connect: the page resyncs from the JSON API there, since
     updates sent while disconnected are lost. */
  function liveSocket(path, {onMessage, onOpen, statusEl}) {
    let delay = 500, socket = null, closedByPage = false;
    const setState = (state, text) => { if (statusEl) { statusEl.dataset.state = state; statusEl.textContent = text; } };
    function connect() {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      socket = new WebSocket(`${scheme}://${location.host}${path}`);
      socket.onopen = () => { delay = 500; setState("live", "● live"); onOpen && onOpen(); };
      socket.onmessage = ev => onMessage(JSON.parse(ev.data));
      socket.onclose = ev => {
        if (closedByPage) return;
        if (ev.code === 4401) { setState("down", "session expired — log in again"); return; }
        setState("down", `disconnected — retrying in ${Math.round(delay / 1000)} s`);
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 15000);
      };
    }
    connect();
    return {close() { closedByPage = true; socket && socket.close(); }};
  }

  window.LCMUI = {esc, badge, age, ESCALATION, pct, usd, plotTime, utc, serverNow, getJSON, liveSocket, LABEL, SEVERITY};
})();
