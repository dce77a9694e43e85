(function () {
  "use strict";
  var hint = document.getElementById("hint");
  // Shows one cell's detail; `target` is the cell's id or the id of an element inside it.
  function show(target, scroll) {
    var element = target && document.getElementById(target);
    var detail = element && element.closest(".cell-detail");
    if (!detail) return false;
    document.querySelectorAll(".cell-detail").forEach(function (d) { d.hidden = d !== detail; });
    document.querySelectorAll(".cell").forEach(function (c) {
      c.setAttribute("aria-pressed", c.getAttribute("data-cell") === detail.id ? "true" : "false");
    });
    hint.hidden = true;
    if (scroll) {
      var line = element !== detail ? element : detail.querySelector(".l.ev");
      if (line) line.scrollIntoView({ block: "center" });
      else detail.scrollIntoView({ block: "start" });
    }
    return true;
  }
  document.addEventListener("click", function (event) {
    var cell = event.target.closest(".cell");
    if (!cell) return;
    var id = cell.getAttribute("data-cell");
    if (show(id, true)) history.replaceState(null, "", "#" + id);
  });
  window.addEventListener("hashchange", function () { show(location.hash.slice(1), true); });
  if (location.hash) show(decodeURIComponent(location.hash.slice(1)), true);
})();
