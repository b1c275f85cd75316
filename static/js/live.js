// Every live page's connection (templates/base.html loads this): an element with ws-connect="/ws/live/?topics=..."
// holds a WebSocket (htmx's ws extension, hx-ws-2).
// - The element says whether its connection is open: data-live="open" / "closed".
// - When htmx reconnects, the part of the page the element names in data-reread is read again.
// - A connection that ends for good leaves the page showing what it showed, no longer updated: the trader must be
//   told. The server says why before it closes (odum_live/live.py: #live-notice swapped in out of band, 4401 when
//   the session ended, 4403 when the page follows what is no longer in scope). When a connection ends without that
//   and htmx will not reconnect (it does after 1006, 1011, 1012 and 1013: the server went away, restarted, ...),
//   the notice (templates/_live_notice.html) says so here. An element that left the page (e.g. the ticket's status
//   replaced by a new submission) closes its own connection: nothing to say then.
(function () {
  "use strict";

  const RECONNECTS = [1006, 1011, 1012, 1013];  // hx-ws-2 reconnects after these
  let leaving = false;  // the page itself is going away (navigation): its connections close with it
  window.addEventListener("pagehide", () => { leaving = true; });

  function stopped(code) {
    const notice = document.getElementById("live-notice");
    if (!notice || !notice.hidden) return;  // none on this page, or the server already said why
    notice.replaceChildren();
    const lead = document.createElement("strong");
    lead.textContent = "Live updates stopped";
    const reload = document.createElement("a");
    reload.href = "";
    reload.textContent = "Reload";
    notice.append(lead, ": the connection closed (code " + code + "). This page no longer updates: what it shows is "
      + "as of " + new Date().toISOString().slice(0, 19).replace("T", " ") + " UTC. ", reload, " the page.");
    notice.dataset.closeCode = String(code);
    notice.hidden = false;
  }

  // A connection back after dropping: what changed meanwhile was pushed to no one. An element naming what it shows
  // (data-reread="#positions-book") has that read again from the page's URL (the Orders page does its own: orders.js).
  document.addEventListener("htmx:wsOpen", (evt) => {
    const element = evt.target, selector = element.dataset.reread;
    if (element.dataset.live === "closed" && selector) {
      htmx.ajax("GET", window.location.pathname + window.location.search,
                {target: selector, select: selector, swap: "outerHTML"});
    }
    element.dataset.live = "open";
  });
  document.addEventListener("htmx:wsClose", (evt) => {
    const element = evt.target, code = evt.detail.event && evt.detail.event.code;
    element.dataset.live = "closed";
    if (leaving || !document.contains(element) || RECONNECTS.includes(code)) return;
    stopped(code);
  });
})();
