/*
 * The feature window shared by the charts that show a window of their features at a time (the
 * scatter's x axis, the three bar charts' y axes; FEATURE_WINDOW in dashboard/figures/style.py).
 * When the analyst pans or pages one of them, the others move to the same features; selecting
 * a table row moves them all to its feature (dashboard.js asks revealRange here).
 *
 * Each chart keeps the width of its own window; they share its centre, in feature codes (bar
 * row i and scatter x i are the same feature).
 */
(function () {
  "use strict";

  // Component ids come from the page (dashboard/page/ids.py BROWSER), as in dashboard.js.
  var IDS = window.CREATIVE_IDS || {};
  var AXES = {};
  AXES[IDS.SCATTER] = "xaxis";
  (IDS.BAR_CHARTS || []).forEach(function (chart) { AXES[chart] = "yaxis"; });
  var SAME = 0.01;  // centres closer than this are the same window

  function plotOf(componentId) {
    var node = document.getElementById(componentId);
    return node ? node.querySelector(".js-plotly-plot") : null;
  }

  // The drawn range of a windowed chart's feature axis, lowest code first; null when the chart
  // shows all its features (or is not drawn).
  function span(gd, axis) {
    var meta = gd && gd.layout && gd.layout.meta;
    var full = gd && gd._fullLayout && gd._fullLayout[axis];
    if (!meta || !meta.window || !full || !full.range) {
      return null;
    }
    var r0 = Number(full.range[0]), r1 = Number(full.range[1]);
    return {lo: Math.min(r0, r1), hi: Math.max(r0, r1), reversed: r0 > r1};
  }

  function centred(s, centre) {
    var half = (s.hi - s.lo) / 2;
    return s.reversed ? [centre + half, centre - half] : [centre - half, centre + half];
  }

  // The page slider's step whose window is nearest to ``centre`` (-1 without a slider).
  function pageNear(gd, axis, centre) {
    var slider = gd.layout.sliders && gd.layout.sliders[0];
    var best = -1, distance = Infinity;
    ((slider && slider.steps) || []).forEach(function (step, i) {
      var range = step.args && step.args[0] && step.args[0][axis + ".range"];
      if (range) {
        var d = Math.abs((range[0] + range[1]) / 2 - centre);
        if (d < distance) {
          best = i;
          distance = d;
        }
      }
    });
    return best;
  }

  // The relayout that puts ``gd``'s window at ``centre`` and names its page; {} when it is there.
  function moveUpdate(gd, axis, centre) {
    var s = span(gd, axis);
    var update = {};
    if (!s) {
      return update;
    }
    if (Math.abs((s.lo + s.hi) / 2 - centre) > SAME) {
      update[axis + ".range"] = centred(s, centre);
    }
    var page = pageNear(gd, axis, centre);
    if (page >= 0 && page !== gd.layout.sliders[0].active) {
      update["sliders[0].active"] = page;
    }
    return update;
  }

  // The chart whose window moved (by a pan, a page step or a follow) sets every chart's centre.
  // A follower's own relayout comes back here and finds every window in place: no loop.
  function followWindow() {
    var dc = window.dash_clientside;
    var context = dc.callback_context;
    var source = context && context.triggered && context.triggered.length
      ? context.triggered[0].prop_id.split(".")[0]
      : null;
    var gd = plotOf(source);
    var s = gd && AXES[source] ? span(gd, AXES[source]) : null;
    if (!s || !window.Plotly) {
      return;
    }
    var centre = (s.lo + s.hi) / 2;
    Object.keys(AXES).forEach(function (componentId) {
      var other = plotOf(componentId);
      var update = other ? moveUpdate(other, AXES[componentId], centre) : {};
      if (Object.keys(update).length) {
        window.Plotly.relayout(other, update);
      }
    });
  }

  // The window a windowed chart should move to so that feature ``code`` is in it: its range and
  // its page, or null when the chart shows the feature already (or all its features).
  function revealRange(componentId, code) {
    var gd = plotOf(componentId);
    var axis = AXES[componentId];
    var s = gd && axis ? span(gd, axis) : null;
    if (!s || code < 0 || (code >= s.lo && code <= s.hi)) {
      return null;
    }
    return {range: centred(s, code), page: pageNear(gd, axis, code)};
  }

  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.creative_window = {followWindow: followWindow};
  window.creativeWindow = {revealRange: revealRange};
})();
