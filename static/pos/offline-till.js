/* The till page: scan from the catalogue kept on the till, change quantities, take cash and
   card-slip tenders.  The basket lives here.  Online, the sale is completed at once through
   /pos/till/complete/ (a refusal such as "out of stock" is shown and the clerk fixes the basket),
   and the server prices the basket (/pos/till/price/) only when a member or coupon is on it.
   Offline, or when the network fails on the way, the sale is queued (offline.js numbers and syncs
   it, under the same client UUID) and its offline receipt shown.
   Amounts are whole fen (integers) until they are written out as "12.30" strings. */
(function () {
  "use strict";

  var lines = [];  // {sku_id, code, barcode, name, price (fen), qty, stock}
  var root;
  var extras = {member: "", coupon: ""};  // what the server must price: the member, the coupon
  var priced = null;  // the server's pricing of the basket as it is now (/pos/till/price/), or null
  var pricing = 0;  // a counter: an answer to an older price request is dropped
  var saleUuid = null;  // the sale's client UUID, kept across retries until it is made

  function fen(text) {
    var match = /^\s*(\d+)(?:\.(\d{1,2}))?\s*$/.exec(String(text || ""));
    if (!match) { return text && String(text).trim() ? NaN : 0; }
    return parseInt(match[1], 10) * 100 + parseInt(((match[2] || "") + "00").slice(0, 2), 10);
  }
  function yuan(value) { return (value / 100).toFixed(2); }
  function $(sel) { return root.querySelector(sel); }
  function text(name, params) {
    var value = root.dataset["text" + name] || "";
    Object.keys(params || {}).forEach(function (k) { value = value.replace("{" + k + "}", params[k]); });
    return value;
  }
  function say(message) { $("[data-offline-error]").textContent = message || ""; }
  function localTotal() { return lines.reduce(function (sum, ln) { return sum + ln.price * ln.qty; }, 0); }
  function total() { return priced ? fen(priced.total) : localTotal(); }
  function needsServer() { return Boolean(extras.member || extras.coupon); }
  function online() { return navigator.onLine !== false; }

  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || ""; }
    catch (e) { return ""; }
  }

  // POSTs JSON; {status, body} or null when the network failed.
  async function postJson(url, body) {
    var response;
    try {
      response = await fetch(url, {method: "POST", credentials: "same-origin", body: JSON.stringify(body),
        headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken()}});
    } catch (e) {
      if (window.posConnection) { window.posConnection.setOnline(false); }
      return null;
    }
    if (window.posConnection) { window.posConnection.setOnline(true); }
    var data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    return {status: response.status, body: data || {}};
  }

  function basketBody() {
    var body = {lines: lines.map(function (ln) { return {sku: ln.sku_id, qty: ln.qty}; })};
    if (extras.member) { body.member = extras.member; }
    if (extras.coupon) { body.coupon = extras.coupon; }
    return body;
  }

  // Asks the server for the basket's price when a member or coupon is on it (the catalogue's
  // prices are enough otherwise).
  async function reprice() {
    priced = null;
    var ticket = ++pricing;
    if (!needsServer() || !lines.length) { render(); return; }
    render();
    var answer = await postJson(root.dataset.priceUrl, basketBody());
    if (ticket !== pricing) { return; }
    if (!answer) { say(text("PriceOffline")); render(); return; }
    if (answer.status !== 200) {
      say(answer.body.message || text("PriceOffline"));
      if (answer.body.field === "member") { extras.member = ""; document.getElementById("till-member").value = ""; }
      render();
      return;
    }
    priced = answer.body;
    if (priced.coupon_error) { say(priced.coupon_error.message); }
    render();
  }

  function changed() {
    saleUuid = null;
    reprice();
  }

  function cell(row, value, cls) {
    var td = document.createElement("td");
    if (cls) { td.className = cls; }
    td.textContent = value;
    row.appendChild(td);
    return td;
  }

  function render() {
    var body = $("[data-offline-lines]");
    body.textContent = "";
    lines.forEach(function (ln, index) {
      var row = document.createElement("tr");
      row.dataset.sku = ln.code;
      var name = cell(row, ln.name);
      var sub = document.createElement("div");
      sub.className = "muted small";
      sub.textContent = ln.code + " · " + (ln.barcode || "") + " · " + text("Stock", {count: ln.stock});
      name.appendChild(sub);
      cell(row, "¥" + yuan(ln.price), "num");
      var qtyCell = cell(row, "", "num");
      var qty = document.createElement("input");
      qty.type = "number"; qty.min = "0"; qty.max = "999"; qty.value = ln.qty; qty.className = "qty";
      qty.setAttribute("aria-label", "qty");
      qty.addEventListener("change", function () {
        var n = parseInt(qty.value, 10);
        if (!(n > 0)) { lines.splice(index, 1); } else { ln.qty = Math.min(n, 999); }
        changed();
      });
      qtyCell.appendChild(qty);
      var server = priced && priced.lines.find(function (p) { return p.sku === ln.sku_id; });
      cell(row, "¥" + (server ? server.amount : yuan(ln.price * ln.qty)), "num");
      var actions = cell(row, "");
      var remove = document.createElement("button");
      remove.type = "button"; remove.className = "icon"; remove.textContent = "✕";
      remove.addEventListener("click", function () { lines.splice(index, 1); changed(); });
      actions.appendChild(remove);
      body.appendChild(row);
    });
    if (!lines.length) {
      var empty = document.createElement("tr");
      cell(empty, $("[data-offline-lines]").dataset.empty || "", "empty").colSpan = 5;
      body.appendChild(empty);
    }
    $("[data-offline-total]").textContent = "¥" + yuan(total());
    var member = $("[data-till-member]");
    member.textContent = priced && priced.member
      ? text("Member", {name: priced.member.name || priced.member.phone, points: priced.member.points_available})
      : "";
    var saving = priced ? fen(priced.subtotal) - fen(priced.total) : 0;
    $("[data-till-saving]").textContent = saving > 0 ? text("Saving", {amount: yuan(saving)}) : "";
    root.dataset.priced = priced ? "1" : "";
    change();
  }

  function change() {
    var pay = document.getElementById("offline-pay");
    var card = fen(pay.elements.card_amount.value) || 0;
    var cash = fen(pay.elements.cash_tendered.value) || 0;
    var due = Math.max(total() - card, 0);
    $("[data-offline-change]").textContent = "¥" + yuan(Math.max(cash - due, 0));
  }

  async function scan(code) {
    say("");
    $("#offline-receipt").hidden = true;
    var item = await window.posOffline.lookup(code);
    if (!item) { say(text("Unknown") + " (" + code + ")"); return; }
    var line = lines.find(function (ln) { return ln.sku_id === item.sku_id; });
    if (line) { line.qty += 1; }
    else {
      lines.push({sku_id: item.sku_id, code: item.code, barcode: item.barcode, name: item.name,
                  price: fen(item.price), qty: 1, stock: item.stock});
    }
    changed();
  }

  async function complete(event) {
    event.preventDefault();
    say("");
    if (!lines.length) { say(text("Empty")); return; }
    var pay = event.target;
    var due = total();
    var card = fen(pay.elements.card_amount.value);
    var cash = fen(pay.elements.cash_tendered.value);
    var reference = pay.elements.card_reference.value.trim();
    if (isNaN(card) || isNaN(cash)) { say(text("CashLow")); return; }
    if (card > due) { say(text("TooMuch")); return; }
    if (card > 0 && !reference) { say(text("CardRef")); return; }
    var cashDue = due - card;
    if (cashDue > 0 && cash < cashDue) { say(text("CashLow")); return; }
    var tenders = [];
    if (cashDue > 0 || card === 0) { tenders.push({tender: "cash", amount: yuan(cashDue), tendered: yuan(Math.max(cash, cashDue))}); }
    if (card > 0) { tenders.push({tender: "card", amount: yuan(card), reference: reference}); }
    var button = pay.querySelector("[data-offline-complete]");
    button.disabled = true;
    try {
      saleUuid = saleUuid || window.crypto.randomUUID();
      if (online()) {
        var body = basketBody();
        body.client_uuid = saleUuid;
        body.payment = {cash_tendered: yuan(cash), card_amount: yuan(card), card_reference: reference};
        var answer = await postJson(root.dataset.completeUrl, body);
        if (answer && (answer.status === 201 || answer.status === 200)) {
          receiptOnline(answer.body);
          done(pay);
          return;
        }
        if (answer) {  // refused (stock, shift, member…) or a server fault: the basket stays for the clerk
          say(answer.body.message || text("ServerError", {status: answer.status}));
          return;
        }
      }
      // Offline, or the network failed on the way: queued under the same client UUID, so a sale the
      // server made before the answer was lost is recorded once.
      if (needsServer()) { say(text("MemberOffline")); return; }
      var sold = lines.map(function (ln) {
        return {sku_id: ln.sku_id, qty: ln.qty, unit_price: yuan(ln.price), name: ln.name, code: ln.code};
      });
      var sale = await window.posOffline.enqueue({client_uuid: saleUuid, lines: sold, tenders: tenders,
                                                  total: yuan(due), change: yuan(Math.max(cash - cashDue, 0))});
      receipt(sale);
      done(pay);
    } finally {
      button.disabled = false;
    }
  }

  function done(pay) {
    lines = [];
    priced = null;
    saleUuid = null;
    extras = {member: "", coupon: ""};
    document.getElementById("till-extras").reset();
    pay.reset();
    render();
  }

  function receiptOnline(sale) {
    var slip = $("#offline-receipt");
    slip.dataset.mode = "online";
    slip.querySelector("[data-receipt-number]").textContent = sale.number;
    slip.querySelector("[data-receipt-time]").textContent = new Date().toLocaleString("zh-CN", {timeZone: "Asia/Shanghai"});
    slip.querySelector("[data-receipt-uuid]").textContent = saleUuid;
    slip.querySelector("[data-receipt-total]").textContent = "¥" + sale.total;
    slip.querySelector("[data-receipt-change]").textContent = "¥" + sale.change;
    slip.querySelector("[data-receipt-link]").href = sale.receipt_url;
    var body = slip.querySelector("[data-receipt-lines]");
    body.textContent = "";
    lines.forEach(function (ln) {
      var server = priced && priced.lines.find(function (p) { return p.sku === ln.sku_id; });
      var row = document.createElement("tr");
      cell(row, ln.name + " ×" + ln.qty);
      cell(row, "¥" + (server ? server.amount : yuan(ln.price * ln.qty)), "num");
      body.appendChild(row);
    });
    slip.hidden = false;
  }

  function receipt(sale) {
    var slip = $("#offline-receipt");
    slip.dataset.mode = "offline";
    slip.querySelector("[data-receipt-number]").textContent = sale.receipt_number;
    slip.querySelector("[data-receipt-time]").textContent = new Date(sale.sold_at).toLocaleString("zh-CN", {timeZone: "Asia/Shanghai"});
    slip.querySelector("[data-receipt-uuid]").textContent = sale.client_uuid;
    slip.querySelector("[data-receipt-total]").textContent = "¥" + sale.total;
    slip.querySelector("[data-receipt-change]").textContent = "¥" + sale.change;
    var body = slip.querySelector("[data-receipt-lines]");
    body.textContent = "";
    sale.lines.forEach(function (ln) {
      var row = document.createElement("tr");
      cell(row, ln.name + " ×" + ln.qty);
      cell(row, "¥" + yuan(fen(ln.unit_price) * ln.qty), "num");
      body.appendChild(row);
    });
    slip.hidden = false;
  }

  function queueShow(event) {
    var body = $("[data-offline-queue]");
    body.textContent = "";
    (event.detail.sales || []).forEach(function (sale) {
      var row = document.createElement("tr");
      row.dataset.status = sale.status;
      cell(row, sale.receipt_number);
      cell(row, "¥" + sale.total, "num");
      cell(row, sale.status === "rejected" ? (sale.error && sale.error.message) || sale.status : "");
      body.appendChild(row);
    });
  }

  function catalogueShow(event) {
    var status = $("[data-catalogue-status]");
    status.dataset.count = String(event.detail.count);
    status.querySelector("[data-catalogue-count]").textContent = event.detail.count;
    status.querySelector("[data-catalogue-time]").textContent =
      new Date(event.detail.at).toLocaleString("zh-CN", {timeZone: "Asia/Shanghai"});
  }

  // What the till already holds (the page may open without the network).
  async function catalogueFromTill() {
    var database = await window.posOffline.db();
    var n = await database.count("catalogue");
    var at = await database.get("meta", "catalogue_at");
    var status = $("[data-catalogue-status]");
    if (status.dataset.count === "0") {
      status.dataset.count = String(n);
      status.querySelector("[data-catalogue-count]").textContent = n;
    }
    var time = status.querySelector("[data-catalogue-time]");
    if (at && !time.textContent) { time.textContent = new Date(at).toLocaleString("zh-CN", {timeZone: "Asia/Shanghai"}); }
    if (!n) { say(text("NoCatalogue")); }
    root.dataset.ready = "1";
  }

  document.addEventListener("DOMContentLoaded", function () {
    root = document.getElementById("offline-till");
    if (!root || !window.posOffline) { return; }
    $("[data-offline-lines]").dataset.empty = $("[data-offline-lines] .empty").textContent;
    document.getElementById("offline-scan-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var input = event.target.elements.code;
      var code = input.value;
      input.value = "";
      if (code.trim()) { scan(code.trim()); }
    });
    document.getElementById("offline-pay").addEventListener("submit", complete);
    document.getElementById("till-extras").addEventListener("submit", function (event) {
      event.preventDefault();
      say("");
      extras.member = event.target.elements.member.value.trim();
      extras.coupon = event.target.elements.coupon.value.trim();
      changed();
    });
    document.getElementById("offline-pay").addEventListener("input", change);
    root.querySelector("[data-offline-next]").addEventListener("click", function () {
      $("#offline-receipt").hidden = true;
      document.getElementById("offline-scan").focus();
    });
    document.addEventListener("pos:queue", queueShow);
    document.addEventListener("pos:catalogue", catalogueShow);
    catalogueFromTill();
  });
})();
