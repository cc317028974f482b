/* Search pickers (crm.forms.SearchSelect): a search field lists the matches the server sends (htmx), a
   pick fills the hidden id and says "change" so filter forms refresh. Listeners sit on the document, so
   pickers that htmx swaps in work without setup. Without this script the text is posted as typed. */
(function () {
  "use strict";
  var ROOT = "[data-search-select]";

  function picker(el) {
    var root = el && el.closest && el.closest(ROOT);
    if (!root) return null;
    return {
      root: root,
      input: root.querySelector("input[type=search]"),
      value: root.querySelector("[data-search-select-value]"),
      listbox: root.querySelector("[role=listbox]"),
    };
  }

  function options(p) {
    return Array.prototype.slice.call(p.listbox.querySelectorAll("[role=option]"));
  }

  function activate(p, option) {
    options(p).forEach(function (o) { o.setAttribute("aria-selected", o === option ? "true" : "false"); });
    if (option) {
      p.input.setAttribute("aria-activedescendant", option.id);
      option.scrollIntoView({ block: "nearest" });
    } else {
      p.input.removeAttribute("aria-activedescendant");
    }
  }

  function show(p, open) {
    p.listbox.hidden = !open;
    p.input.setAttribute("aria-expanded", open ? "true" : "false");
    if (!open) activate(p, null);
  }

  function changed(p) {
    p.value.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function pick(p, option) {
    p.value.value = option.dataset.value;
    p.input.value = option.dataset.label;
    show(p, false);
    changed(p);
  }

  // The request sends what is typed as `q` (hx-params="none" keeps the form's fields out).
  document.addEventListener("htmx:configRequest", function (e) {
    var p = picker(e.detail.elt);
    if (p && e.detail.elt === p.input) e.detail.parameters.q = p.input.value;
  });

  document.addEventListener("htmx:afterSwap", function (e) {
    var p = picker(e.detail.target);
    if (!p || !e.detail.target.hasAttribute("data-search-select-matches")) return;
    options(p).forEach(function (o, i) { o.id = p.listbox.id + "-" + i; });
    if (document.activeElement === p.input) show(p, true);
  });

  document.addEventListener("focusin", function (e) {
    var p = picker(e.target);
    if (p && e.target === p.input) p.input.select();  // typing replaces the chosen name
  });

  document.addEventListener("focusout", function (e) {
    var p = picker(e.target);
    if (p && e.target === p.input) show(p, false);
  });

  // Typing un-picks: the id no longer matches the text. Emptying the field picks nothing ("All owners").
  document.addEventListener("input", function (e) {
    var p = picker(e.target);
    if (!p || e.target !== p.input) return;
    var had = p.value.value;
    p.value.value = "";
    if (had && !p.input.value) changed(p);
  });

  // The text's own "change" is not a choice: filter forms refresh on the hidden id's (see pick).
  document.addEventListener("change", function (e) {
    var p = picker(e.target);
    if (p && e.target === p.input) e.stopPropagation();
  }, true);

  // Keep the focus in the field while an option is clicked; the click picks it.
  document.addEventListener("mousedown", function (e) {
    if (e.target.closest(ROOT + " [role=listbox]")) e.preventDefault();
  });
  document.addEventListener("click", function (e) {
    var option = e.target.closest(ROOT + " [role=option]");
    if (option) pick(picker(option), option);
  });

  // Arrows move through the list, Enter picks, Escape closes it (and nothing else).
  document.addEventListener("keydown", function (e) {
    var p = picker(e.target);
    if (!p || e.target !== p.input) return;
    var list = options(p);
    var current = list.indexOf(p.listbox.querySelector("[aria-selected=true]"));
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      if (p.listbox.hidden) { show(p, true); }
      if (!list.length) return;
      var next = e.key === "ArrowDown" ? Math.min(current + 1, list.length - 1) : Math.max(current - 1, 0);
      activate(p, list[next]);
    } else if (e.key === "Enter" && !p.listbox.hidden && current >= 0) {
      e.preventDefault();
      pick(p, list[current]);
    } else if (e.key === "Escape" && !p.listbox.hidden) {
      e.preventDefault();
      e.stopPropagation();
      show(p, false);
    }
  }, true);
})();
