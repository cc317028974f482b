// Live check of the total while amounts are typed; the server checks again on submit.
(function () {
  var form = document.getElementById("adjust-form");
  if (!form) return;
  var status = document.getElementById("total-status"), output = document.getElementById("new-total");
  function parse(text) { var v = String(text).replace(/[,\s¥￥]/g, ""); return v === "" ? NaN : Number(v); }
  function cents(x) { return Math.round(x * 100); }
  function update() {
    var current = 0, proposed = 0, bad = false;
    form.querySelectorAll("input.new-amount").forEach(function (input) {
      current += cents(parse(input.dataset.current));
      var v = parse(input.value);
      if (isNaN(v)) { bad = true; } else { proposed += cents(v); }
    });
    if (bad) { status.textContent = status.dataset.invalid; status.className = "total-status changed"; return; }
    output.textContent = (proposed / 100).toLocaleString(undefined, {minimumFractionDigits: 2, maximumFractionDigits: 2});
    var delta = proposed - current;
    var kind = form.querySelector('input[name="kind"][value="' + (delta ? "total_change" : "reallocation") + '"]');
    if (kind) kind.checked = true;
    if (!delta) { status.textContent = status.dataset.kept; status.className = "total-status kept"; return; }
    var text = (delta > 0 ? "+" : "−") + (Math.abs(delta) / 100).toLocaleString(undefined, {minimumFractionDigits: 2});
    status.textContent = status.dataset.changed.replace("{delta}", text);
    status.className = "total-status changed";
  }
  form.addEventListener("input", update);
  update();
})();
