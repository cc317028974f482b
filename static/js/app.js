// The behaviour every page shares (no script in the pages themselves: the Content-Security-Policy allows none).
// - Dialogs are loaded into #dialog-slot by htmx; a successful deal change closes them and says so in a toast.
// - A control marked data-autosubmit submits its form when it changes; a button marked data-print prints.
(function () {
  function closeDialog() { var slot = document.getElementById("dialog-slot"); if (slot) slot.innerHTML = ""; }

  document.addEventListener("click", function (e) {
    if (e.target.closest("[data-close-dialog]")) { e.preventDefault(); closeDialog(); return; }
    if (e.target.closest("[data-print]")) { e.preventDefault(); window.print(); }
  });
  document.addEventListener("change", function (e) {
    var control = e.target.closest("[data-autosubmit]");
    if (control && control.form) control.form.submit();
  });
  document.addEventListener("keydown", function (e) { if (e.key === "Escape") closeDialog(); });
  document.addEventListener("dealChanged", function (e) {
    closeDialog();
    var toast = document.getElementById("toast");
    if (toast && e.detail && e.detail.message) {
      toast.textContent = e.detail.message;
      toast.hidden = false;
      clearTimeout(toast._timer);
      toast._timer = setTimeout(function () { toast.hidden = true; }, 3500);
    }
  });
})();
