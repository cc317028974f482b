// The tree: a toggle shows / hides a node's children (htmx loads them on the first click).
// After a change the dialog closes and a toast says what happened.
(function () {
  document.addEventListener("click", function (e) {
    var button = e.target.closest("[data-toggle-children]");
    if (!button) return;
    var box = document.getElementById(button.getAttribute("aria-controls"));
    var open = button.getAttribute("aria-expanded") !== "true";
    button.setAttribute("aria-expanded", open ? "true" : "false");
    if (box) box.hidden = !open;
  });
  document.body.addEventListener("targetChanged", function (e) {
    var slot = document.getElementById("dialog-slot");
    if (slot) slot.innerHTML = "";
    var toast = document.getElementById("toast");
    if (toast && e.detail && e.detail.message) {
      toast.textContent = e.detail.message;
      toast.hidden = false;
      clearTimeout(toast._timer);
      toast._timer = setTimeout(function () { toast.hidden = true; }, 3500);
    }
  });
})();
