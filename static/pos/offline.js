/* The till's own memory for selling without the network (IndexedDB through idb, one database per
   store): the store's catalogue snapshot, the till's id and receipt sequence, and the queue of
   sales made offline.  On every POS page it keeps the snapshot fresh while online and sends the
   queue, in order, to /pos/sync/ (each sale is recorded once by its client UUID, so a cut or
   repeated sync is harmless).  It also registers the service worker that keeps the offline till
   page and its scripts available without the network. */
(function () {
  "use strict";

  var BATCH = 10;
  var box = null;
  var dbPromise = null;
  var syncing = false;

  function conn() { return window.posConnection; }
  function cfg(name) { return box ? box.dataset[name] || "" : ""; }

  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || ""; }
    catch (e) { return ""; }
  }

  function db() {
    if (!dbPromise) {
      dbPromise = window.idb.openDB("o2o-pos-" + cfg("store"), 1, {
        upgrade: function (database) {
          database.createObjectStore("meta");
          var catalogue = database.createObjectStore("catalogue", {keyPath: "sku_id"});
          catalogue.createIndex("barcode", "barcode");
          catalogue.createIndex("code", "code");
          database.createObjectStore("queue", {keyPath: "client_uuid"}).createIndex("sequence", "sequence");
        }
      });
    }
    return dbPromise;
  }

  function emit(name, detail) { document.dispatchEvent(new CustomEvent(name, {detail: detail || {}})); }

  // --- the catalogue snapshot -------------------------------------------------------------------

  async function catalogueRefresh(full) {
    var database = await db();
    var at = full ? null : await database.get("meta", "catalogue_at");
    // A minute of overlap: a change stamped with its transaction's start may commit after the last
    // snapshot was taken; items sent twice are simply written again.
    var since = at ? new Date(Date.parse(at) - 60000).toISOString() : null;
    var url = cfg("catalogueUrl") + (since ? "?updated_since=" + encodeURIComponent(since) : "");
    var response;
    try { response = await fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}}); }
    catch (e) { conn().setOnline(false); return; }
    conn().setOnline(true);
    if (!response.ok) { return; }
    var data = await response.json();
    var tx = database.transaction(["catalogue", "meta"], "readwrite");
    if (data.full) { tx.objectStore("catalogue").clear(); }
    data.items.forEach(function (item) { tx.objectStore("catalogue").put(item); });
    tx.objectStore("meta").put(data.generated_at, "catalogue_at");
    await tx.done;
    emit("pos:catalogue", {count: await database.count("catalogue"), at: data.generated_at});
  }

  async function lookup(code) {
    var database = await db();
    code = String(code || "").trim();
    if (!code) { return null; }
    return (await database.getFromIndex("catalogue", "barcode", code)) ||
      (await database.getFromIndex("catalogue", "code", code)) ||
      (await database.getFromIndex("catalogue", "code", code.toUpperCase())) || null;
  }

  // --- the queue of offline sales ---------------------------------------------------------------

  function tillId() {
    var key = "o2o-till-" + cfg("store");
    var till = window.localStorage.getItem(key);
    if (!till) {
      var bytes = new Uint8Array(3);
      window.crypto.getRandomValues(bytes);
      till = "T" + Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); })
        .join("").toUpperCase();
      window.localStorage.setItem(key, till);
    }
    return till;
  }

  // Numbers the sale (store + till + sequence) and queues it in one IndexedDB transaction, so a
  // receipt number is never given twice, even with the tab closed right after.
  async function enqueue(sale) {
    var database = await db();
    var tx = database.transaction(["meta", "queue"], "readwrite");
    var meta = tx.objectStore("meta");
    var sequence = ((await meta.get("sequence")) || 0) + 1;
    await meta.put(sequence, "sequence");
    var till = tillId();
    sale.client_uuid = sale.client_uuid || window.crypto.randomUUID();
    sale.till = till;
    sale.sequence = sequence;
    sale.receipt_number = cfg("store") + "-" + till + "-" + ("00000" + sequence).slice(-6);
    sale.sold_at = new Date().toISOString();
    sale.clerk_id = parseInt(cfg("clerkId"), 10) || null;
    sale.status = "queued";
    await tx.objectStore("queue").put(sale);
    await tx.done;
    await pendingShow();
    window.setTimeout(sync, 0);
    return sale;
  }

  async function queued() {
    var database = await db();
    return database.getAllFromIndex("queue", "sequence");
  }

  async function pendingShow() {
    var all = await queued();
    var waiting = all.filter(function (s) { return s.status !== "rejected"; }).length;
    conn().setPending(waiting);
    emit("pos:queue", {sales: all});
    return waiting;
  }

  function payload(sale) {
    return {client_uuid: sale.client_uuid, till: sale.till, sequence: sale.sequence,
            receipt_number: sale.receipt_number, sold_at: sale.sold_at, lines: sale.lines, tenders: sale.tenders,
            clerk_id: sale.clerk_id || null};
  }

  async function post(batch) {
    var response;
    try {
      response = await fetch(cfg("syncUrl"), {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken(), "Accept": "application/json"},
        body: JSON.stringify({sales: batch.map(payload)})
      });
    } catch (e) {
      conn().setOnline(false);
      return null;
    }
    conn().setOnline(true);
    var body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok || !body || !body.results) {
      conn().say(conn().text("SyncFailed", {reason: (body && body.message) || response.status}), "error");
      return null;
    }
    return body.results;
  }

  // Sends the queue in order, a batch at a time.  A sale the server answers is taken off the queue
  // (recorded now or before); one it rejects for good stays, marked, for the manager; one to retry
  // later (no open shift) stops the run.  Runs once at a time across the till's tabs.
  async function syncRun() {
    var database = await db();
    for (;;) {
      var batch = (await queued()).filter(function (s) { return s.status !== "rejected"; }).slice(0, BATCH);
      if (!batch.length) { conn().clear(); return; }
      conn().setSyncing(true);
      var results = await post(batch);
      if (!results) { return; }
      var stop = false;
      for (var i = 0; i < results.length; i++) {
        var result = results[i];
        var sale = batch[i];
        if (result.status === "recorded" || result.status === "already_recorded") {
          await database.delete("queue", sale.client_uuid);
        } else if (result.error && result.error.retry) {
          conn().say(conn().text("SyncFailed", {reason: result.error.message}), "error");
          stop = true;
          break;
        } else {
          sale.status = "rejected";
          sale.error = result.error || {};
          await database.put("queue", sale);
        }
      }
      await pendingShow();
      if (stop) { return; }
    }
  }

  async function sync() {
    if (syncing || !box || !cfg("syncUrl")) { return; }
    syncing = true;
    try {
      if (navigator.locks) { await navigator.locks.request("o2o-sync-" + cfg("store"), syncRun); }
      else { await syncRun(); }
    } finally {
      syncing = false;
      conn().setSyncing(false);
      await pendingShow();
      emit("pos:synced");
    }
  }

  window.posOffline = {lookup: lookup, enqueue: enqueue, queued: queued, sync: sync, refresh: catalogueRefresh,
                       tillId: tillId, db: db};

  document.addEventListener("DOMContentLoaded", function () {
    box = document.getElementById("connection");
    if (!box || !cfg("store") || !window.idb) { return; }
    if ("serviceWorker" in navigator && cfg("swUrl")) {
      navigator.serviceWorker.register(cfg("swUrl"), {scope: cfg("swScope")}).catch(function () {});
    }
    pendingShow().then(function () { return catalogueRefresh(true); }).then(sync);
    window.addEventListener("online", function () { conn().setOnline(true); sync(); });
    window.setInterval(sync, 15000);
    window.setInterval(function () { catalogueRefresh(false); }, 60000);
  });
})();
