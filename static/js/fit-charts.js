// A chart drawn before the cells beside it exist takes the whole row's width: once the page (or an htmx
// fragment) is laid out, every chart is fitted to its cell. Pages without charts have no chart library: nothing to do.
(function () {
  function fitCharts() {
    var charts = window.Plotly;
    if (!charts) return;
    document.querySelectorAll(".js-plotly-plot").forEach(function (el) { charts.Plots.resize(el); });
  }
  window.addEventListener("load", fitCharts);
  document.addEventListener("htmx:afterSettle", fitCharts);
})();
