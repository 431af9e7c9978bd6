// momoflow console: the only script. Pages work without it; with it, parts of a page
// marked data-refresh-url refresh themselves (a campaign's live progress) without a reload.
"use strict";

function refreshLater(element) {
  const url = element.getAttribute("data-refresh-url");
  if (!url) {
    return;
  }
  const every = Number(element.getAttribute("data-refresh-ms") || "2000");
  window.setTimeout(async () => {
    if (!element.isConnected) {
      return;
    }
    try {
      const answer = await fetch(url, {
        headers: { "X-Console-Fragment": "1" },
        credentials: "same-origin",
        cache: "no-store",
      });
      if (answer.status === 401) {
        window.location.reload();
        return;
      }
      if (!answer.ok) {
        element.setAttribute("data-stale", String(answer.status));
        refreshLater(element);
        return;
      }
      const holder = document.createElement("div");
      holder.innerHTML = await answer.text();
      const fresh = holder.firstElementChild;
      if (fresh === null) {
        refreshLater(element);
        return;
      }
      // A campaign that leaves pre-flight has its verdict to read and approve: the rest of
      // the page (problems, totals, the approval form) is rendered again with it.
      const leaving = element.getAttribute("data-reload-when-leaving");
      if (leaving && fresh.getAttribute("data-phase") !== leaving) {
        window.location.reload();
        return;
      }
      element.replaceWith(fresh);
      refreshLater(fresh);
    } catch (error) {
      element.setAttribute("data-stale", "network");
      refreshLater(element);
    }
  }, every);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-refresh-url]").forEach(refreshLater);
});
