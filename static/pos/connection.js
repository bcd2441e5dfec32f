/* The till's connection light (在线 / 离线 / 同步中 N 笔) and the messages for requests the network
   lost.  Nothing fails silently: a request htmx could not send says so here, scans are queued by
   pos.js and sent again, and the offline-sale sync (offline.js) reports its count and progress. */
(function () {
  "use strict";

  var state = {online: navigator.onLine, pending: 0, syncing: false, message: "", messageKind: ""};

  function el() { return document.getElementById("connection"); }

  function text(name, params) {
    var box = el();
    var value = (box && box.dataset["text" + name]) || "";
    Object.keys(params || {}).forEach(function (key) { value = value.replace("{" + key + "}", params[key]); });
    return value;
  }

  function render() {
    var box = el();
    if (!box) { return; }
    var mode = state.syncing ? "syncing" : (state.online ? "online" : "offline");
    box.dataset.state = mode;
    box.dataset.pending = String(state.pending);
    var label = mode === "syncing" ? text("Syncing", {count: state.pending})
      : text(mode === "online" ? "Online" : "Offline");
    box.querySelector("[data-label]").textContent = label;
    var detail = state.message;
    if (!detail && state.pending && !state.syncing) { detail = text("Pending", {count: state.pending}); }
    var out = box.querySelector("[data-detail]");
    out.textContent = detail;
    out.dataset.kind = state.messageKind || (state.pending ? "pending" : "");
  }

  function say(message, kind) { state.message = message; state.messageKind = kind || "error"; render(); }

  var api = {
    isOnline: function () { return state.online; },
    setOnline: function (value) {
      if (state.online === value) { return; }
      state.online = value;
      if (value && state.messageKind === "network") { state.message = ""; state.messageKind = ""; }
      render();
      document.dispatchEvent(new CustomEvent(value ? "pos:online" : "pos:offline"));
    },
    setPending: function (count) { state.pending = count; render(); },
    setSyncing: function (value) { state.syncing = value; render(); },
    say: say,
    text: text,
    clear: function () { state.message = ""; state.messageKind = ""; render(); }
  };
  window.posConnection = api;

  window.addEventListener("online", function () { api.setOnline(true); });
  window.addEventListener("offline", function () { api.setOnline(false); });

  // A sale's complete is idempotent on its client UUID (a repeat returns the sale already made),
  // so one the network lost is sent again by itself once the connection is back.
  var retryForm = null;
  function retryComplete() {
    var form = retryForm;
    retryForm = null;
    if (form && document.contains(form) && window.htmx) { window.htmx.trigger(form, "submit"); }
  }
  window.addEventListener("online", function () { window.setTimeout(retryComplete, 300); });
  window.setInterval(function () { if (retryForm && navigator.onLine) { retryComplete(); } }, 5000);

  // htmx could not reach the server: the clerk is told, and the light turns to offline.
  document.addEventListener("htmx:sendError", function (event) {
    api.setOnline(false);
    var elt = event.detail && event.detail.elt;
    if (elt && elt.closest && elt.closest("[data-scan-form]")) {
      return;  // pos.js queues the scan and reports the count (pos:scan-queued)
    }
    if (elt && elt.matches && elt.matches("form#pay")) {
      retryForm = elt;
      say(text("CompleteQueued"), "network");
      return;
    }
    say(text("RequestFailed"), "network");
  });
  document.addEventListener("pos:scan-queued", function (event) {
    say(text("ScanQueued", {count: event.detail.count}), "network");
  });
  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail && event.detail.xhr ? event.detail.xhr.status : "";
    say(text("ServerError", {status: status}), "error");
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail && event.detail.xhr && event.detail.xhr.status) {
      api.setOnline(true);
      if (state.messageKind === "network") { api.clear(); }
    }
  });
  document.addEventListener("DOMContentLoaded", render);
})();
