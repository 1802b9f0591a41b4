/* The date range picker (dcc.DatePickerRange) marks its popup trigger, a div around the two day
 * inputs, with aria-haspopup and aria-expanded though a div without a role may not carry them, and
 * its clear button is an anchor without href holding aria-label. Name the trigger a group (its
 * inputs are what a keyboard reaches) and the clear anchor a button, whenever the picker is drawn
 * or redrawn. */
(function () {
  "use strict";

  var TRIGGER = ".dash-datepicker-input-wrapper";

  function fix() {
    document.querySelectorAll(TRIGGER + "[aria-haspopup], " + TRIGGER + "[aria-expanded]").forEach(function (node) {
      node.setAttribute("role", "group");
      node.removeAttribute("aria-haspopup");
      node.removeAttribute("aria-expanded");
    });
    document.querySelectorAll("a.dash-datepicker-clear:not([role])").forEach(function (node) {
      node.setAttribute("role", "button");
      node.setAttribute("tabindex", "0");
    });
  }

  new MutationObserver(fix).observe(document.documentElement, {
    childList: true, subtree: true, attributes: true, attributeFilter: ["aria-expanded", "aria-haspopup"]
  });
})();
