// Live alert toasts: joins the "alerts" group over /ws/alerts/ (alerts.consumers.AlertsConsumer).
(function () {
  "use strict";
  // Styles live here so the toasts need nothing from the shared stylesheet.
  var style = document.createElement("style");
  style.textContent = ".toasts{position:fixed;right:1rem;bottom:1rem;display:flex;flex-direction:column;gap:.5rem;z-index:1000}" +
    ".toast{display:block;max-width:28rem;padding:.6rem .8rem;background:#fff;border-left:4px solid #57606a;" +
    "box-shadow:0 2px 8px rgba(0,0,0,.2);color:#1f2328;text-decoration:none}" +
    ".toast.sev-warning{border-color:#9a6700}.toast.sev-critical{border-color:#cf222e}.toast-resolved{border-color:#1a7f37}";
  document.head.appendChild(style);
  var box = document.createElement("div");
  box.className = "toasts";
  box.setAttribute("aria-live", "polite");
  document.body.appendChild(box);

  function show(p) {
    var toast = document.createElement("a");
    toast.className = "toast toast-" + (p.notice || p.event) + " sev-" + p.severity;
    toast.href = p.url;
    var what = p.notice ? p.notice : p.event;
    var value = p.value === null || p.value === undefined ? "" : " — " + Number(p.value).toPrecision(4) +
      (p.limit === null || p.limit === undefined ? "" : " vs " + Number(p.limit).toPrecision(4));
    toast.textContent = "[" + what + "] " + p.title + value;
    box.appendChild(toast);
    setTimeout(function () { toast.remove(); }, p.severity === "critical" ? 20000 : 8000);
  }

  var delay = 1000;
  function connect() {
    var ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/alerts/");
    ws.onopen = function () { delay = 1000; };
    ws.onmessage = function (e) { show(JSON.parse(e.data)); };
    ws.onclose = function () { setTimeout(connect, delay); delay = Math.min(delay * 2, 30000); };
  }
  connect();
})();
