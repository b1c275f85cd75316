// The Orders page's live rows (templates/orders/orders.html). The topic "orders" of /ws/live/ sends the row
// of each changed order (orders/_row.html) out of band; htmx swaps a row already on the page by its id. This
// script keeps the page what a reload would show (orders.web.views.orders_page), reading the filters and the
// pager's figures from #orders-table's data-* (orders/_orders_table.html):
// - a row htmx finds no place for (a new order, or one that now matches the filters) goes where the page's
//   order puts it (newest first: created, then id) when the page takes new rows (data-live-insert: the first
//   page, no filter the script cannot match) and the row matches the filters. The page keeps its page size:
//   the row pushed past it belongs to page 2 now, and the pager counts the new order (and offers page 2).
//   A row older than a full page's last belongs to a later page and is left out (it may be counted there).
// - the element holding the live connection says whether it is open (data-live).
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

  // The live connection's state on its element (data-live="open" / "closed"): the page is live once open.
  document.body.addEventListener("htmx:wsOpen", (evt) => { evt.target.dataset.live = "open"; });
  document.body.addEventListener("htmx:wsClose", (evt) => { evt.target.dataset.live = "closed"; });

  document.body.addEventListener("htmx:oobErrorNoTarget", function (evt) {
    const t = table(), row = evt.detail.content;
    if (!t || !isRow(row) || t.dataset.liveInsert !== "1" || !matches(t, row)) return;
    insert(t, row);
  });
})();
