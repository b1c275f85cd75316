// The Orders page's live rows (templates/orders/orders.html). The topic "orders" of /ws/live/ sends the row
// of each changed order (orders/_row.html) out of band; htmx swaps a row already on the page by its id. This
// script keeps the page what a reload would show (orders.web.views.orders_page), reading the filters and the
// pager's figures from #orders-table's data-* (orders/_orders_table.html):
// - a row the page does not hold (a new order, or one that now matches the filters) goes where the page's
//   order puts it (newest first: created, then id) when the page takes new rows (data-live-insert: the first
//   page, no filter the script cannot match) and the row matches the filters. The page keeps its page size:
//   the row pushed past it belongs to page 2 now, and the pager counts the new order (and offers page 2).
//   A row older than a full page's last belongs to a later page and is left out (it may be counted there).
// - a row on the page whose order no longer matches the filters (now FILLED under status=ACCEPTED; a venue or
//   routed listing outside them) leaves the list, and #orders-notice says which order left and why: the list
//   goes on matching its filters, as a reload would, and the trader is told what happened rather than seeing
//   a row vanish. The pager counts one order less. When a later page exists, its first row belongs here now:
//   the table is read again from the server (one request at a time; rows pushed meanwhile are applied again
//   to the new table), so page 1 stays full and "older →" lines up.
// - when its live connection comes back after dropping, the table is read again (changes meanwhile were missed).
// The live connection's state (data-live) and the notice when it ends are every live page's: static/js/live.js.
(function () {
  "use strict";

  function table() { return document.getElementById("orders-table"); }

  function rows(t) { return Array.from(t.querySelectorAll("#orders-rows > tr.order-row")); }

  function isRow(element) { return Boolean(element && element.matches && element.matches("tr.order-row")); }

  // The page's filters the script can match (orders.api.filters.OrderFilter): each empty, or one of its values.
  function matches(t, row) {
    const ok = (name, values) => {
      const wanted = (t.dataset["filter" + name] || "").split(" ").filter(Boolean);
      return wanted.length === 0 || values.some((value) => wanted.includes(value));
    };
    return ok("Status", [row.dataset.status]) && ok("Venue", [row.dataset.venue])
      && ok("Strategy", [row.dataset.strategy]) && ok("Instrument", [row.dataset.instrument, row.dataset.routed]);
  }

  // Newest first, as orders.selectors.order_list orders them (created_at, then id: both compare as text).
  function isNewer(a, b) {
    const ac = a.dataset.created, bc = b.dataset.created;
    return ac > bc || (ac === bc && a.id > b.id);
  }

  // The pager's text and its "older →" link for ``count`` orders (as the template renders them).
  function setCount(t, count) {
    t.dataset.count = String(count);
    const page = Number(t.dataset.page), pages = Math.max(1, Math.ceil(count / Number(t.dataset.pageSize)));
    const label = t.querySelector("#orders-count");
    if (label) label.textContent = "page " + page + " of " + pages + " · " + count + " orders";
    const older = t.querySelector("#orders-older");
    if (pages > page && !older && label) {
      const link = document.createElement("a");
      link.id = "orders-older";
      link.href = "?" + (t.dataset.query ? t.dataset.query + "&" : "") + "page=" + (page + 1);
      link.textContent = "older →";
      label.after(" ", link);
    } else if (pages <= page && older) {
      older.remove();
    }
  }

  function insert(t, row) {
    const present = rows(t), size = Number(t.dataset.pageSize);
    const next = present.find((other) => isNewer(row, other));
    if (!next && present.length >= size) return;  // a later page's row
    document.getElementById("orders-empty")?.remove();
    document.getElementById("orders-rows").insertBefore(row, next || null);
    htmx.process(row);
    rows(t).slice(size).forEach((pushed) => pushed.remove());  // now the first rows of page 2
    setCount(t, Number(t.dataset.count) + 1);
  }

  let pushedDuringRefill = null;  // row id → the latest row pushed while the table is read again
  let refillAgain = false;

  // Read the table again (the page's URL, as the filter form's htmx request does), then apply the rows pushed
  // meanwhile to the new table: its answer may predate them.
  function refill() {
    if (pushedDuringRefill) { refillAgain = true; return; }
    pushedDuringRefill = new Map();
    const done = () => {
      const pushed = pushedDuringRefill;
      pushedDuringRefill = null;
      const t = table();
      if (t) pushed.forEach((row) => upsert(t, row));
      if (refillAgain) { refillAgain = false; refill(); }
    };
    htmx.ajax("GET", window.location.pathname + window.location.search,
              {target: "#orders-table", swap: "outerHTML"}).then(done, done);
  }

  function leave(t, old, row) {
    const count = Number(t.dataset.count), page = Number(t.dataset.page), size = Number(t.dataset.pageSize);
    old.remove();
    const notice = document.getElementById("orders-notice");
    if (notice) {
      notice.textContent = "Order " + (row.dataset.operation || row.id) + " is now " + row.dataset.status
        + " and no longer matches the filter: removed from the list.";
    }
    setCount(t, count - 1);
    if (count > page * size || rows(t).length === 0) refill();  // a later page's row moves up, or none is left
  }

  function remember(row) {
    if (pushedDuringRefill) pushedDuringRefill.set(row.id, row.cloneNode(true));
  }

  // A pushed row applied to the table: replaces its row (or leaves), or goes in as a new one.
  function upsert(t, row) {
    const old = t.querySelector("#" + CSS.escape(row.id));
    if (old && !matches(t, row)) {
      leave(t, old, row);
    } else if (old) {
      old.replaceWith(row);
      htmx.process(row);
    } else if (t.dataset.liveInsert === "1" && matches(t, row)) {
      insert(t, row);
    }
  }

  // The connection back after it dropped (htmx reconnects when the server went away): what changed meanwhile was
  // pushed to no one, so the table is read again. (live.js marks it open after this, on document.)
  document.body.addEventListener("htmx:wsOpen", function (evt) {
    if (evt.target.dataset.live === "closed" && table()) refill();
  });

  // A pushed row the page does not hold (a new order, or one that now matches the filters) is taken here, before
  // htmx: it would find no place for it and log an error in the console (htmx:oobErrorNoTarget) for each.
  document.body.addEventListener("htmx:wsBeforeMessage", function (evt) {
    const t = table();
    if (!t) return;
    const parsed = document.createElement("template");
    parsed.innerHTML = evt.detail.message;
    const pushed = Array.from(parsed.content.children);
    if (pushed.length === 0 || !pushed.every((row) => isRow(row) && !document.getElementById(row.id))) return;
    evt.preventDefault();
    pushed.forEach((row) => { remember(row); upsert(t, row); });
  });

  document.body.addEventListener("htmx:oobBeforeSwap", function (evt) {
    const t = table(), old = evt.detail.target, row = evt.detail.fragment && evt.detail.fragment.firstElementChild;
    if (!t || !isRow(old) || !isRow(row) || !t.contains(old)) return;
    remember(row);
    if (matches(t, row)) return;  // htmx swaps it in
    evt.detail.shouldSwap = false;
    leave(t, old, row);
  });
})();
