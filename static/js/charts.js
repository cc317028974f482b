// Charts: the server renders each as <div class="chart" data-figure="{data, layout, config}"> (salesmgmt.charts),
// with no script in the page (the Content-Security-Policy allows none); plotly.js, loaded by the pages with
// charts, draws them here once the page is parsed and after every htmx swap.
// A chart drawn before the cells beside it exist takes the whole row's width: once the page (or an htmx
// fragment) is laid out, every chart is fitted to its cell. Pages without charts have no chart library.
(function () {
  function pending() { return document.querySelectorAll(".chart[data-figure]:not([data-drawn])"); }

  function draw() {
    var charts = pending();
    if (!charts.length) return;
    if (!window.Plotly) {
      // plotly.js is still loading (a fragment htmx swapped in brings its script tag): draw once it is there.
      var script = document.querySelector('script[src*="plotly"]');
      if (script && !script.dataset.chartsWaiting) {
        script.dataset.chartsWaiting = "1";
        script.addEventListener("load", function () { draw(); fit(); });
      }
      return;
    }
    charts.forEach(function (el) {
      el.setAttribute("data-drawn", "");
      var figure = JSON.parse(el.dataset.figure);
      window.Plotly.newPlot(el, figure.data, figure.layout || {}, figure.config || {});
    });
  }

  function fit() {
    if (!window.Plotly) return;
    document.querySelectorAll(".js-plotly-plot").forEach(function (el) { window.Plotly.Plots.resize(el); });
  }

  document.addEventListener("DOMContentLoaded", draw);
  window.addEventListener("load", function () { draw(); fit(); });
  document.addEventListener("htmx:afterSettle", function () { draw(); fit(); });
})();
