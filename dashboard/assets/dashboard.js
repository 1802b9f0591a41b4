/*
 * Hover linking, run in the browser so that mouse moves never reach the server.
 *
 * The server ships a lookup with each view (see dashboard/callbacks.py hover_lookup):
 * point_image[i] is the image of scatter point i, and each image lists the codes of its
 * features (scatter x and bar row) with their confidences. hoverData may lack customdata, so
 * only pointIndex is trusted. Figures are changed with Patch: the scatter's trace 1 gets the
 * hovered image's points, the bar charts get per-bar opacity and outline arrays.
 */
(function () {
  "use strict";

  var LINK_TRACE = 1;
  var DIM = 0.25;
  var OUTLINE = "#111827";
  var last = {token: null, image: -1};

  function html(type, props, children) {
    var p = Object.assign({}, props || {});
    if (children !== undefined) {
      p.children = children;
    }
    return {type: type, namespace: "dash_html_components", props: p};
  }

  function pct(value, digits) {
    return value === null || value === undefined || !isFinite(value) ? "–" : value.toFixed(digits) + "%";
  }

  function signedPp(value) {
    if (value === null || value === undefined || !isFinite(value)) {
      return "–";
    }
    return (value >= 0 ? "+" : "") + value.toFixed(2) + " pp";
  }

  function hoveredImage(hoverData, lookup) {
    if (!hoverData || !hoverData.points || !hoverData.points.length) {
      return -1;
    }
    var point = hoverData.points[0];
    if (point.curveNumber !== 0) {
      return -1;
    }
    var index = point.pointIndex !== undefined ? point.pointIndex : point.pointNumber;
    var image = lookup.point_image[index];
    return image === undefined ? -1 : image;
  }

  function hint() {
    return html("P", {className: "text-muted small mb-0"},
      "Hover a point in the chart to see its image, its CTR and its features.");
  }

  function panel(lookup, image) {
    var codes = lookup.image_codes[image];
    var conf = lookup.image_conf[image];
    var rows = codes.map(function (code, i) {
      return {feature: lookup.features[code], confidence: conf[i], impact: lookup.impact[code]};
    });
    rows.sort(function (a, b) { return b.confidence - a.confidence; });
    var children = [];
    var url = lookup.urls ? lookup.urls[image] : null;
    if (url) {
      children.push(html("Img", {src: url, alt: lookup.images[image], className: "hover-image"}));
    }
    children.push(html("Div", {className: "hover-name", title: lookup.images[image]}, lookup.images[image]));
    var facts = [html("Span", {className: "hover-ctr"}, "CTR " + pct(lookup.ctr[image], 2))];
    if (lookup.clicks && lookup.impressions && lookup.impressions[image] !== null) {
      facts.push(html("Span", {className: "text-muted"},
        " · " + lookup.clicks[image].toLocaleString() + " clicks / " +
        lookup.impressions[image].toLocaleString() + " impressions"));
    }
    children.push(html("Div", {className: "hover-facts"}, facts));
    children.push(html("Div", {className: "hover-subhead"},
      rows.length + (rows.length === 1 ? " feature" : " features") + " present (charted)"));
    var body = rows.map(function (r) {
      var sign = r.impact === null ? "" : (r.impact >= 0 ? "pos" : "neg");
      return html("Tr", {}, [
        html("Td", {className: "hover-feature"}, r.feature),
        html("Td", {className: "num"}, [
          html("Span", {className: "conf-bar", style: {width: Math.round(r.confidence * 40) + "px"}}),
          r.confidence.toFixed(2)
        ]),
        html("Td", {className: "num impact-" + sign}, signedPp(r.impact))
      ]);
    });
    children.push(html("Table", {className: "table table-sm hover-table mb-0"}, [
      html("Thead", {}, html("Tr", {}, [
        html("Th", {}, "Feature"), html("Th", {className: "num"}, "Confidence"), html("Th", {className: "num"}, "Impact")
      ])),
      html("Tbody", {}, body)
    ]));
    return html("Div", {className: "hover-card"}, children);
  }

  function barPatch(n, codes) {
    var patch = new window.dash_clientside.Patch();
    if (codes === null) {
      patch.assign(["data", 0, "marker", "opacity"], 1);
      patch.assign(["data", 0, "marker", "line", "width"], 0);
      return patch.build();
    }
    var opacity = new Array(n).fill(DIM);
    var width = new Array(n).fill(0);
    codes.forEach(function (code) {
      opacity[code] = 1;
      width[code] = 1.5;
    });
    patch.assign(["data", 0, "marker", "opacity"], opacity);
    patch.assign(["data", 0, "marker", "line", "width"], width);
    patch.assign(["data", 0, "marker", "line", "color"], OUTLINE);
    return patch.build();
  }

  function graphDiv(componentId) {
    var node = document.getElementById(componentId);
    return node ? node.querySelector(".js-plotly-plot") : null;
  }

  // Draws the link on the live graph; false when that is not possible (then a Patch is used).
  function drawLink(componentId, x, y) {
    var gd = graphDiv(componentId);
    if (!gd || !window.Plotly || !gd.data || gd.data.length <= LINK_TRACE) {
      return false;
    }
    window.Plotly.animate(
      gd,
      {data: [{x: x, y: y}], traces: [LINK_TRACE]},
      {transition: {duration: 0}, frame: {duration: 0, redraw: false}, mode: "immediate"}
    );
    return true;
  }

  function linkPatch(x, y) {
    var patch = new window.dash_clientside.Patch();
    patch.assign(["data", LINK_TRACE, "x"], x);
    patch.assign(["data", LINK_TRACE, "y"], y);
    return patch.build();
  }

  function linkHover(hoverData, lookup) {
    var dc = window.dash_clientside;
    var none = [dc.no_update, dc.no_update, dc.no_update, dc.no_update, dc.no_update];
    if (!lookup) {
      return none;
    }
    var image = hoveredImage(hoverData, lookup);
    if (lookup.token !== last.token) {
      last = {token: lookup.token, image: -1};
    }
    if (image === last.image) {
      return none;  // moving between points of the same image changes nothing
    }
    last.image = image;
    var n = lookup.features.length;
    var context = dc.callback_context;
    var scatterId = context && context.triggered && context.triggered.length
      ? context.triggered[0].prop_id.split(".")[0]
      : null;
    var codes = image < 0 ? [] : lookup.image_codes[image];
    var ctr = image < 0 ? null : lookup.ctr[image];
    var x = codes.slice();
    var y = codes.map(function () { return ctr; });
    var scatter = scatterId && drawLink(scatterId, x, y) ? dc.no_update : linkPatch(x, y);
    if (image < 0) {
      return [scatter, barPatch(n, null), barPatch(n, null), barPatch(n, null), hint()];
    }
    return [scatter, barPatch(n, codes), barPatch(n, codes), barPatch(n, codes), panel(lookup, image)];
  }

  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.creative = {linkHover: linkHover};
})();
