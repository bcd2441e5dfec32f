/* POS keyboard and focus handling.  The server renders everything; this only moves focus,
   maps hotkeys, prints, and previews the change while the clerk types the cash handed over. */
(function () {
  "use strict";

  function focusFirst(root) {
    var el = (root || document).querySelector("[data-autofocus], [autofocus]") || document.getElementById("scan");
    if (el && !el.disabled) {
      el.focus();
      if (el.select && el.type !== "number") { el.select(); }
    }
  }

  function money(text) {
    var n = parseFloat(String(text || "").replace(/[^0-9.]/g, ""));
    return isNaN(n) ? 0 : Math.round(n * 100);
  }

  function fen(value) { return "¥" + (value / 100).toFixed(2); }

  // What the typed points pay, in fen: whole fen only, as the server rounds them.
  function pointsValue(pay) {
    var points = pay.querySelector("[data-points]");
    if (!points || !points.value) { return 0; }
    return Math.floor((parseInt(points.value, 10) || 0) * 100 / (parseInt(points.dataset.points, 10) || 100));
  }

  function nonCash(pay) {
    var total = 0;
    pay.querySelectorAll("[data-tender]").forEach(function (input) { total += money(input.value); });
    return total + pointsValue(pay);
  }

  // 抹零: the store hands cash over in whole units (data-cash-unit, in fen); the cash due is rounded
  // down to it, as the server does, and the difference becomes a discount on the sale.
  function cashRounded(cashDue, due) {
    var unit = parseInt(due.dataset.cashUnit, 10) || 1;
    return cashDue > 0 ? Math.floor(cashDue / unit) * unit : cashDue;
  }

  // While the clerk splits the tenders: what is still to collect (还差) and the change (找零).
  function updateChange() {
    var pay = document.getElementById("pay");
    var due = document.querySelector("[data-due]");
    if (!pay || !due) { return; }
    var cashDue = cashRounded(money(due.dataset.due) - nonCash(pay), due);
    var cash = money(pay.elements.cash_tendered.value);
    var change = cash - Math.max(cashDue, 0);
    var out = pay.querySelector("[data-change]");
    if (out) { out.textContent = fen(Math.max(change, 0)); }
    var remaining = pay.querySelector("[data-remaining]");
    if (remaining) {
      var left = Math.max(cashDue - cash, 0);
      remaining.textContent = fen(left);
      remaining.closest(".remaining").classList.toggle("settled", left === 0);
    }
    var value = pay.querySelector("[data-points-value]");
    if (value) { value.textContent = "= " + fen(pointsValue(pay)); }
  }

  function shortcuts() {
    var sheet = document.getElementById("shortcuts");
    if (sheet && !sheet.open && sheet.showModal) { sheet.showModal(); }
  }

  function updateCount() {
    var form = document.getElementById("close-form");
    if (!form) { return; }
    var total = 0;
    form.querySelectorAll("[data-denomination]").forEach(function (input) {
      var value = Math.round(parseFloat(input.dataset.denomination) * 100) * (parseInt(input.value, 10) || 0);
      total += value;
      var cell = input.closest("tr").querySelector("[data-line-total]");
      if (cell) { cell.textContent = value ? fen(value) : ""; }
    });
    var out = form.querySelector("[data-count-total]");
    if (out) { out.textContent = fen(total); }
  }

  // Scans are queued as the scanner sends them: each code is taken from the field on Enter and
  // posted in order, so codes typed while an earlier one is still on its way are never lost.
  // A scan the network lost goes back to the head of the queue and is sent again when the
  // connection returns (or every few seconds), never dropped.
  var scans = [];
  var scanning = false;
  var scanPaused = false;
  var inFlight = null;

  function resumeScans() { scanPaused = false; pumpScans(); }

  document.addEventListener("htmx:sendError", function () {
    if (!inFlight) { return; }
    scans.unshift(inFlight);
    inFlight = null;
    if (!scanPaused) {
      scanPaused = true;
      window.setTimeout(resumeScans, 3000);
    }
    document.dispatchEvent(new CustomEvent("pos:scan-queued", {detail: {count: scans.length}}));
  });
  window.addEventListener("online", resumeScans);

  function pumpScans() {
    if (scanning || scanPaused || !scans.length || !window.htmx) { return; }
    scanning = true;
    var item = scans.shift();
    inFlight = item;
    var done = function () { inFlight = null; scanning = false; pumpScans(); };
    window.htmx.ajax("POST", item.url, {target: "#workspace", swap: "outerHTML", source: item.form,
                                         values: {code: item.code}}).then(done, done);
  }

  function queueScan(input) {
    var code = input.value.trim();
    input.value = "";
    if (code) {
      scans.push({code: code, url: input.form.action, form: input.form});
      pumpScans();
    }
  }

  function hotkeyName(event) {
    return (event.altKey ? "Alt+" : "") + (event.key.length === 1 ? event.key.toUpperCase() : event.key);
  }

  // The field the clerk jumped to with a hotkey since the last request went out.  A response that
  // lands afterwards must not pull the focus back to where the server pointed (the clerk would type
  // a phone number into the scan field).
  var pendingHotkey = null;
  document.addEventListener("htmx:beforeRequest", function () { pendingHotkey = null; });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && event.target.form && event.target.form.hasAttribute("data-scan-form") &&
        window.htmx) {
      event.preventDefault();
      queueScan(event.target);
      return;
    }
    var name = hotkeyName(event);
    var typing = event.target.matches && event.target.matches("input, select, textarea");
    if (event.key === "?" && (!typing || (event.target.id === "scan" && !event.target.value))) {
      event.preventDefault();
      shortcuts();
      return;
    }
    if (event.key === "Escape") {
      var dismiss = document.querySelector("[data-dismiss]");
      if (dismiss) { event.preventDefault(); dismiss.click(); return; }
    }
    var target = document.querySelector('[data-hotkey="' + name + '"]');
    if (target) {
      event.preventDefault();
      if (target.matches("input, select, textarea")) {
        target.focus(); target.select && target.select();
        pendingHotkey = name;  // kept if a request in flight swaps the page under the clerk
      }
      else { target.click(); }
      return;
    }
    // A barcode scanner types like a keyboard: keystrokes that land nowhere go to the scan field.
    var active = document.activeElement;
    var scan = document.getElementById("scan");
    if (scan && event.key.length === 1 && !event.ctrlKey && !event.metaKey && !event.altKey &&
        (!active || active === document.body)) {
      scan.focus();
    }
  });

  document.addEventListener("click", function (event) {
    var print = event.target.closest("[data-print]");
    if (print) { window.print(); return; }
    if (event.target.closest("[data-shortcuts]")) { shortcuts(); return; }
    var exact = event.target.closest("[data-exact]");
    if (exact) {
      var pay = document.getElementById("pay");
      var due = document.querySelector("[data-due]");
      var rest = cashRounded(money(due.dataset.due) - nonCash(pay), due);
      pay.elements.cash_tendered.value = (Math.max(rest, 0) / 100).toFixed(2);
      updateChange();
      pay.elements.cash_tendered.focus();
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var confirmer = event.submitter && event.submitter.dataset.confirm;
    if (confirmer && !window.confirm(confirmer)) { event.preventDefault(); event.stopPropagation(); return; }
    if (!form.hasAttribute("hx-post") && !form.closest("[hx-post]") && !form.hasAttribute("data-js-form")) {
      // Plain forms: one submit only (htmx forms disable their buttons themselves).
      if (form.dataset.submitted) { event.preventDefault(); return; }
      form.dataset.submitted = "1";
    }
  }, true);

  document.addEventListener("input", function (event) {
    if (event.target.closest("#pay")) { updateChange(); }
    if (event.target.closest("#close-form")) { updateCount(); }
  });

  document.addEventListener("htmx:afterSettle", function () {
    var jumped = pendingHotkey && document.querySelector('[data-hotkey="' + pendingHotkey + '"]');
    if (jumped && jumped.matches("input, select, textarea") && !jumped.disabled) {
      if (document.activeElement !== jumped) { jumped.focus(); jumped.select && jumped.select(); }
      updateChange();
      return;
    }
    var active = document.activeElement;
    // Keep the clerk where they are typing; otherwise go where the server pointed, or to the scan field.
    if (active && active.id === "scan" && !document.querySelector("#workspace [data-autofocus]")) { return; }
    focusFirst(document.getElementById("workspace") || document);
    updateChange();
  });

  document.addEventListener("DOMContentLoaded", function () {
    if (!document.querySelector("[autofocus]")) { focusFirst(document); }
    updateChange();
    updateCount();
  });
})();
