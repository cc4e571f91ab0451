// Keeps the status page current: asks for the order's state every 5 seconds while work is
// pending, and reloads the page when it changes. Without JavaScript, a meta refresh does it.
(function () {
  "use strict";
  var root = document.getElementById("status");
  if (!root || root.dataset.pending !== "true") return;
  var seen = root.dataset.progress;
  function poll() {
    fetch(root.dataset.api, { cache: "no-store", credentials: "omit" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (order) {
        if (order && order.progress !== seen) { window.location.reload(); return; }
        window.setTimeout(poll, 5000);
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 5000);
})();
