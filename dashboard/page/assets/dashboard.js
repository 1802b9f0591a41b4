/*
 * Hover linking and table-row highlighting, run in the browser so that mouse moves and row
 * clicks never reach the server; cell formats of the summary table; back/forward navigation.
 *
 * The server ships a lookup with each view (see dashboard/hover.py hover_lookup) holding only
 * what the scatter's trace lacks: point_image[i] is the image of scatter point i and
 * point_conf_pct[i] its confidence in hundredths (base64 typed arrays), with the names once
 * (the images' as one zlib stream, inflated when the view arrives: see inflateNames).
 * When a view arrives its points are grouped by image here (groupByImage, a counting sort); a
 * point's feature (the code of the scatter x and of the bar rows) and its image's CTR are read
 * from the drawn trace's own x and y, or from the lookup's feature_start and image_ctr_pct when
 * the trace holds only the part of a large scatter in view (drawWindow draws the rest as the
 * window moves). Hover data may lack customdata, so only pointIndex is trusted. The scatter's
 * own plotly_hover and plotly_unhover events (see bindScatter) join the hovered image's points
 * in an overlay over the scatter (see drawLink) and fill the side panel in the event's own task,
 * so that they show in the next frame: no Dash callback and no React render stands between the
 * mouse and the link. The bar charts' highlight follows once the pointer rests (markBarsAtRest).
 */
(function () {
  "use strict";

  // Component ids come from the page (dashboard/page/ids.py BROWSER, put in the page's HTML by
  // dashboard/page/layout.py INDEX_STRING): this script spells none of its own.
  var IDS = window.CREATIVE_IDS || {};
  var SCATTER = IDS.SCATTER;
  var HOVER_HINT = IDS.HOVER_HINT;  // the panel's hint (dashboard/page/components.py hover_panel)
  var HOVER_CARD = IDS.HOVER_CARD;  // where the hovered image's card goes
  var LINK_TRACE = 1;
  var DIM = 0.25;
  var OUTLINE = "#111827";
  var BAND = "rgba(234, 179, 8, 0.16)";
  var last = {token: null, image: -1};
  var view = {lookup: null, groups: null};  // the view shown (newView): its lookup, its points by image
  // The table row selected (highlightRow), so that a new view knows whether there is one to undo.
  var selection = {feature: null, token: null, code: -1};

  function html(type, props, children) {
    var p = Object.assign({}, props || {});
    if (children !== undefined) {
      p.children = children;
    }
    return {type: type, namespace: "dash_html_components", props: p};
  }

  var MINUS = "\u2212";  // the typographic minus, as dashboard/figures/style.py MINUS

  function pct(value, digits) {
    return value === null || value === undefined || !isFinite(value) ? "–" : value.toFixed(digits) + "%";
  }

  function signedPp(value) {
    if (value === null || value === undefined || !isFinite(value)) {
      return "–";
    }
    return (value >= 0 ? "+" : MINUS) + Math.abs(value).toFixed(2) + " pp";
  }

  // The image of the point a plotly_hover event is about, or -1 (no point, or another trace).
  function hoveredImage(hover, lookup, gd) {
    if (!hover || !hover.points || !hover.points.length) {
      return -1;
    }
    var point = hover.points[0];
    if (point.curveNumber !== 0) {
      return -1;
    }
    var index = point.pointIndex !== undefined ? point.pointIndex : point.pointNumber;
    var image = numbers(lookup.point_image)[drawnFrom(gd, lookup) + index];
    return image === undefined ? -1 : image;
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined) {
      node.textContent = text;  // names are data: text, never markup
    }
    return node;
  }

  function append(parent, children) {
    children.forEach(function (child) { parent.appendChild(child); });
    return parent;
  }

  // The hovered image's card, built as DOM nodes: as Dash components (a few hundred for an image
  // with 60 features) React and the Dash renderer took 350-500 ms to mount it at 632k points.
  function card(lookup, image, points) {
    var rows = Array.prototype.map.call(points.codes, function (code, i) {
      return {feature: lookup.features[code], confidence: points.conf[i] / 100, impact: lookup.impact[code]};
    });
    rows.sort(function (a, b) { return b.confidence - a.confidence; });
    var node = element("div", "hover-card");
    var url = lookup.urls ? lookup.urls[image] : null;
    var known = imageNames(lookup);
    var called = known ? known[image] : "";
    if (url) {
      var img = element("img", "hover-image");
      img.src = url;
      img.alt = called;
      node.appendChild(img);
    }
    var name = element("div", "hover-name", called);
    name.title = called;
    node.appendChild(name);
    var facts = element("div", "hover-facts");
    facts.appendChild(element("span", "hover-ctr", "CTR " + pct(points.ctr, 2)));
    var clicks = numbers(lookup.clicks), impressions = numbers(lookup.impressions);
    if (clicks && impressions && impressions[image] !== null && impressions[image] !== undefined) {
      facts.appendChild(element("span", "text-muted",
        " · " + clicks[image].toLocaleString() + " clicks / " +
        impressions[image].toLocaleString() + " impressions"));
    }
    node.appendChild(facts);
    node.appendChild(element("div", "hover-subhead",
      rows.length + (rows.length === 1 ? " feature" : " features") + " present (charted)"));
    var body = element("tbody");
    rows.forEach(function (r) {
      var sign = r.impact === null ? "" : (r.impact >= 0 ? "pos" : "neg");
      var bar = element("span", "conf-bar");
      bar.style.width = Math.round(r.confidence * 40) + "px";
      var confidence = append(element("td", "num"), [bar, document.createTextNode(r.confidence.toFixed(2))]);
      body.appendChild(append(element("tr"), [
        element("td", "hover-feature", r.feature), confidence, element("td", "num impact-" + sign, signedPp(r.impact))
      ]));
    });
    var head = append(element("tr"), [
      element("th", "", "Feature"), element("th", "num", "Confidence"), element("th", "num", "Impact")
    ]);
    node.appendChild(append(element("table", "table table-sm hover-table mb-0"), [append(element("thead"), [head]), body]));
    return node;
  }

  // Shows the image's card in the side panel (``points``: its imagePoints), or the hint when image < 0.
  function showCard(lookup, image, points) {
    var slot = document.getElementById(HOVER_CARD);
    var hintNode = document.getElementById(HOVER_HINT);
    if (!slot) {
      return;
    }
    slot.replaceChildren();
    if (lookup && image >= 0) {
      slot.appendChild(card(lookup, image, points));
    }
    if (hintNode) {
      hintNode.hidden = Boolean(lookup && image >= 0);
    }
  }

  // ``more(patch)``, when given, adds to the patch (a selected row moves the chart's window).
  // A chart drawn in part (see drawRows) gets the highlight in its trace's meta too, for every
  // row, and its trace the rows it holds.
  function barPatch(componentId, n, codes, more) {
    var patch = new window.dash_clientside.Patch();
    if (more) {
      more(patch);
    }
    var marker = {"marker.opacity": 1, "marker.line.width": 0};
    if (codes !== null) {
      var opacity = new Array(n).fill(DIM);
      var width = new Array(n).fill(0);
      codes.forEach(function (code) {
        opacity[code] = 1;
        width[code] = 1.5;
      });
      marker = {"marker.opacity": opacity, "marker.line.width": width, "marker.line.color": OUTLINE};
    }
    var gd = graphDiv(componentId);
    var part = rowParts(gd).indexOf(0) >= 0 ? gd.data[0].meta : null;
    var values = part ? Object.assign({}, part.full, marker) : marker;
    if (part) {
      patch.assign(["data", 0, "meta"], {rows: part.rows, full: values});
    }
    Object.keys(values).forEach(function (path) {
      var value = part ? rowValues(values[path], part.rows[0], part.rows[1]) : values[path];
      patch.assign(["data", 0].concat(path.split(".")), value);
    });
    return patch.build();
  }

  var BAR_CHARTS = IDS.BAR_CHARTS || [];

  // Hover highlights bars by classes on their SVG elements (dashboard.css): the chart's class
  // dims every bar, a class on the hovered image's bars keeps them solid and outlined. Only the
  // hovered bars are touched; Plotly.restyle or a figure Patch restyles and relabels all bars
  // of all three charts, seconds with 1,000 bars. False when a chart is not drawn yet.
  var hoveredBars = new WeakMap();  // graph div -> the bar elements marked

  function markBars(codes) {
    var gds = BAR_CHARTS.map(graphDiv);
    if (gds.some(function (gd) { return !gd || !gd.querySelector(".barlayer .trace"); })) {
      return false;
    }
    gds.forEach(function (gd) {
      (hoveredBars.get(gd) || []).forEach(function (node) { node.classList.remove("bar-hit"); });
      if (codes === null) {
        gd.classList.remove("bars-dimmed");
        hoveredBars.delete(gd);
        return;
      }
      var points = gd.querySelector(".barlayer .trace").querySelectorAll(".point");
      var first = rowsFrom(gd);  // a chart drawn in part holds rows from there
      var marked = [];
      Array.prototype.forEach.call(codes, function (code) {
        var point = code >= first ? points[code - first] : null;
        if (point) {
          point.classList.add("bar-hit");
          marked.push(point);
        }
      });
      hoveredBars.set(gd, marked);
      gd.classList.add("bars-dimmed");
    });
    return true;
  }

  // Marks the bars once the pointer has rested on an image for BARS_DELAY_MS: dimming every bar
  // of three 1,000-bar charts restyles and repaints them all (a 60-70 ms frame in software GL).
  // Done at once, that frame delayed the link's; done at each image the pointer crosses, it
  // would hold up the next mouse move. Only the last request of a burst is carried out.
  var BARS_DELAY_MS = 120;
  var barsWanted = {codes: null, timer: null};

  function markBarsAtRest(codes) {
    barsWanted.codes = codes;
    window.clearTimeout(barsWanted.timer);
    barsWanted.timer = window.setTimeout(function () {
      barsWanted.timer = null;
      markBars(barsWanted.codes);
    }, BARS_DELAY_MS);
  }

  function graphDiv(componentId) {
    var node = document.getElementById(componentId);
    return node ? node.querySelector(".js-plotly-plot") : null;
  }

  // Numeric arrays may arrive as {dtype, bdata} (base64 typed arrays, as Plotly 7 and Dash send
  // numpy arrays) or as plain lists; both read the same through this.
  var TYPED = {f8: Float64Array, f4: Float32Array, i4: Int32Array, u4: Uint32Array, i2: Int16Array,
    u2: Uint16Array, i1: Int8Array, u1: Uint8Array};

  var decoded = new WeakMap();

  // The browser's own decoder where it has one (Chromium 140+): several times faster than atob
  // and a loop over its characters, which took most of a view's 10-20 ms of decoding.
  function base64Bytes(text) {
    if (typeof Uint8Array.fromBase64 === "function") {
      return Uint8Array.fromBase64(text);
    }
    var raw = window.atob(text);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) {
      bytes[i] = raw.charCodeAt(i);
    }
    return bytes;
  }

  function numbers(value) {
    if (!value || typeof value.bdata !== "string") {
      return value;
    }
    if (decoded.has(value)) {
      return decoded.get(value);
    }
    var Type = TYPED[String(value.dtype).replace(/^[<>|=]/, "")] || Float64Array;
    var array = new Type(base64Bytes(value.bdata).buffer);
    decoded.set(value, array);
    return array;
  }

  // The images' names: sent packed (dashboard/page/hover.py packed_names, one zlib stream of the
  // names joined by NUL), inflated once per view off the main path; null until then.
  var names = new WeakMap();  // lookup -> its images' names

  function imageNames(lookup) {
    return Array.isArray(lookup.images) ? lookup.images : (names.get(lookup) || null);
  }

  function imageCount(lookup) {
    return Array.isArray(lookup.images) ? lookup.images.length : lookup.images.count;
  }

  function inflateNames(lookup) {
    var packed = lookup.images;
    if (Array.isArray(packed) || names.has(lookup)) {
      return;
    }
    if (!packed.count) {
      names.set(lookup, []);
      return;
    }
    var stream = new Blob([base64Bytes(packed.deflate)]).stream().pipeThrough(new DecompressionStream("deflate"));
    new Response(stream).text().then(function (text) {
      names.set(lookup, text.split("\u0000"));
      if (view.lookup === lookup && last.image >= 0) {
        var gd = graphDiv(SCATTER);
        var points = gd ? imagePoints(gd, lookup, last.image) : null;
        if (points) {
          showCard(lookup, last.image, points);  // a card shown meanwhile gets its image's name
        }
      }
    });
  }

  // Decoded once when a view arrives, so that the first hover does not pay for it.
  function decodeLookup(lookup) {
    ["point_image", "point_conf_pct", "clicks", "impressions", "feature_start", "image_ctr_pct"].forEach(function (name) {
      numbers(lookup[name]);
    });
    inflateNames(lookup);
  }

  // The view's points grouped by image: points order[start[j]] to order[start[j + 1] - 1] are
  // image j's, in trace order. A counting sort, a few ms at 662k points, once per view.
  function groupByImage(lookup) {
    if (view.groups && view.groups.lookup === lookup) {
      return view.groups;
    }
    var image = numbers(lookup.point_image);
    var n = image.length;
    var m = imageCount(lookup);
    var start = new Int32Array(m + 1);
    var i;
    for (i = 0; i < n; i++) {
      start[image[i] + 1]++;
    }
    for (i = 0; i < m; i++) {
      start[i + 1] += start[i];
    }
    var next = start.slice(0, m);
    var order = new Int32Array(n);
    for (i = 0; i < n; i++) {
      order[next[image[i]]++] = i;
    }
    view.groups = {lookup: lookup, start: start, order: order};
    return view.groups;
  }

  // Image j's features (codes, ascending), their confidences in hundredths and the image's CTR,
  // read from the drawn scatter trace (x: feature codes, y: the CTR of the point's image), or from
  // the lookup when the trace holds only a part of the points (see drawWindow); null when the
  // trace drawn is not the lookup's.
  function imagePoints(gd, lookup, image) {
    var trace = gd._fullData && gd._fullData[0];
    var n = numbers(lookup.point_image).length;
    var x, y, ctr;
    if (lookup.feature_start) {
      var part = drawnPart(gd, lookup);
      x = part ? pointCodes(lookup) : null;
      ctr = part ? numbers(lookup.image_ctr_pct)[image] : NaN;
    } else {
      x = trace ? numbers(trace.x) : null;
      y = trace ? numbers(trace.y) : null;
      if (!x || !y || x.length !== n || y.length !== n) {
        return null;
      }
    }
    if (!x) {
      return null;
    }
    var groups = groupByImage(lookup);
    var conf = numbers(lookup.point_conf_pct);
    var at = Array.prototype.slice.call(groups.order.subarray(groups.start[image], groups.start[image + 1]));
    at.sort(function (a, b) { return x[a] - x[b] || a - b; });
    return {
      codes: Int32Array.from(at, function (i) { return x[i]; }),
      conf: Uint8Array.from(at, function (i) { return conf[i]; }),
      ctr: lookup.feature_start ? ctr : (at.length ? y[at[0]] : NaN)
    };
  }

  // A scatter of many features and points holds only the part in view (dashboard/figures/scatter.py
  // draw_limit): its trace's meta names the points it holds, [first, end), of features [first, stop),
  // and the view's token. Null when the trace holds every point, or is not the lookup's view.
  function drawnPart(gd, lookup) {
    var trace = gd && gd.data && gd.data[0];
    var meta = trace && trace.meta;
    if (!lookup || !lookup.feature_start || !meta || !meta.points || meta.token !== lookup.token) {
      return null;
    }
    return meta;
  }

  // The index in the lookup of the trace's first point (0 when it holds them all).
  function drawnFrom(gd, lookup) {
    var part = drawnPart(gd, lookup);
    return part ? part.points[0] : 0;
  }

  var pointArrays = new WeakMap();  // lookup -> {codes, y}: every point's feature code and y

  // Every point's feature code and y (its image's CTR in percent), as the full trace would hold them.
  function allPoints(lookup) {
    var known = pointArrays.get(lookup);
    if (known) {
      return known;
    }
    var starts = numbers(lookup.feature_start);
    var image = numbers(lookup.point_image);
    var ctr = numbers(lookup.image_ctr_pct);
    var k = starts.length - 1;
    var Codes = k <= 256 ? Uint8Array : (k <= 65536 ? Uint16Array : Uint32Array);
    var codes = new Codes(image.length);
    for (var f = 0; f < k; f++) {
      codes.fill(f, starts[f], starts[f + 1]);
    }
    var y = new Float32Array(image.length);
    for (var i = 0; i < image.length; i++) {
      y[i] = ctr[image[i]];
    }
    known = {codes: codes, y: y};
    pointArrays.set(lookup, known);
    return known;
  }

  function pointCodes(lookup) {
    return allPoints(lookup).codes;
  }

  // Makes the scatter hold the points of the features in view when it holds only a part: the
  // features in view and half a window either side (a pan that far shows points at once).
  // Runs after each draw and window move; a no-op when the part drawn covers the view.
  function drawWindow(gd) {
    var lookup = view.lookup;
    var part = drawnPart(gd, lookup);
    var axis = gd && gd._fullLayout && gd._fullLayout.xaxis;
    if (!part || !axis || !axis.range || !window.Plotly) {
      return;
    }
    var starts = numbers(lookup.feature_start);
    var k = starts.length - 1;
    var r0 = Number(axis.range[0]), r1 = Number(axis.range[1]);
    var lo = Math.max(0, Math.ceil(Math.min(r0, r1)));
    var hi = Math.min(k - 1, Math.floor(Math.max(r0, r1)));
    if (hi < lo || (part.features[0] <= lo && hi < part.features[1])) {
      return;
    }
    var margin = Math.ceil((hi - lo + 1) / 2);
    var first = Math.max(0, lo - margin);
    var stop = Math.min(k, hi + 1 + margin);
    var from = starts[first], end = starts[stop];
    var points = allPoints(lookup);
    window.Plotly.restyle(gd, {
      x: [points.codes.subarray(from, end)],
      y: [points.y.subarray(from, end)],
      meta: [{points: [from, end], features: [first, stop], token: lookup.token}]
    }, [0]);
  }

  // A bar chart of many rows holds only the rows near its window (dashboard/figures/bars.py
  // draw_limit): each such trace's meta names the rows it holds, [first, stop), and keeps every
  // row's values by attribute path. The indices of those traces.
  function rowParts(gd) {
    var parts = [];
    ((gd && gd.data) || []).forEach(function (trace, i) {
      if (trace.meta && trace.meta.rows && trace.meta.full) {
        parts.push(i);
      }
    });
    return parts;
  }

  // The first row a bar chart's traces hold (0 when they hold every row).
  function rowsFrom(gd) {
    var parts = rowParts(gd);
    return parts.length ? gd.data[parts[0]].meta.rows[0] : 0;
  }

  // Rows [first, stop) of one attribute's values (a plain array; a single value stays as it is).
  function rowValues(value, first, stop) {
    var values = numbers(value);
    return values && typeof values.length === "number" && typeof values !== "string"
      ? Array.prototype.slice.call(values, first, stop) : values;
  }

  function valueAt(trace, path) {
    return path.split(".").reduce(function (node, key) { return node == null ? undefined : node[key]; }, trace);
  }

  // The restyle that makes traces ``parts`` of ``gd`` hold rows [first, stop): each attribute in
  // a trace's meta cut to those rows (a trace without it keeps its own value).
  function rowsUpdate(gd, parts, first, stop) {
    var update = {meta: []};
    parts.forEach(function (i) {
      Object.keys(gd.data[i].meta.full).forEach(function (path) {
        update[path] = update[path] || [];
      });
    });
    parts.forEach(function (i, j) {
      var trace = gd.data[i];
      var full = trace.meta.full;
      Object.keys(update).forEach(function (path) {
        if (path === "meta") {
          update.meta[j] = {rows: [first, stop], full: full};
        } else if (path in full) {
          update[path][j] = rowValues(full[path], first, stop);
        } else {
          update[path][j] = valueAt(trace, path);
        }
      });
    });
    return update;
  }

  // Makes a bar chart drawn in part hold the rows in view and half a window either side; a
  // no-op when the rows held cover the view. Runs after each draw and window move.
  function drawRows(gd) {
    var parts = rowParts(gd);
    var axis = gd && gd._fullLayout && gd._fullLayout.yaxis;
    var n = gd && gd.layout && gd.layout.meta && gd.layout.meta.features;
    if (!parts.length || !axis || !axis.range || !n || !window.Plotly) {
      return;
    }
    var rows = gd.data[parts[0]].meta.rows;
    var r0 = Number(axis.range[0]), r1 = Number(axis.range[1]);
    var lo = Math.max(0, Math.ceil(Math.min(r0, r1)));
    var hi = Math.min(n - 1, Math.floor(Math.max(r0, r1)));
    if (hi < lo || (rows[0] <= lo && hi < rows[1])) {
      return;
    }
    var margin = Math.ceil((hi - lo + 1) / 2);
    var first = Math.max(0, lo - margin);
    window.Plotly.restyle(gd, rowsUpdate(gd, parts, first, Math.min(n, hi + 1 + margin)), parts);
  }

  var drawing = new WeakMap();  // graph div -> the gd.on its drawWindow handlers were registered with

  // Binds each windowed chart's drawing of the part in view (the scatter's points, the bar
  // charts' rows) to its draws and window moves, and draws it.
  function watchWindow() {
    [SCATTER].concat(BAR_CHARTS).forEach(function (componentId) {
      var gd = graphDiv(componentId);
      if (!gd || typeof gd.on !== "function") {
        return;
      }
      var draw = componentId === SCATTER ? drawWindow : drawRows;
      if (drawing.get(gd) !== gd.on) {
        var handler = function () { draw(gd); };
        gd.on("plotly_afterplot", handler);
        gd.on("plotly_relayout", handler);
        drawing.set(gd, gd.on);
      }
      draw(gd);
    });
  }

  // The link is drawn in an SVG of our own laid over the plot, not through Plotly: any Plotly
  // call that changes a trace or a shape replots every trace (and a relayout makes dcc.Graph
  // write the figure back and replot it again), 100 ms to seconds a hover, growing with the
  // points; Plotly.animate of the link trace alone is fast but leaves the other traces
  // unpainted. The overlay costs the same at any size and never touches the points.
  var SVG_NS = "http://www.w3.org/2000/svg";
  var links = new WeakMap();  // graph div -> {data, codes, ctr}: the link drawn on it
  var repainters = new WeakMap();  // graph div -> its handler of Plotly's redraw events

  function svg(tag, attrs) {
    var node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    return node;
  }

  // The link's look comes from the figure's (empty) link trace, so dashboard/figures/ stays its one source.
  function linkStyle(gd) {
    var trace = gd._fullData[LINK_TRACE] || {};
    var line = trace.line || {};
    var ring = (trace.marker || {}).line || {};
    var width = line.width || 2;
    var dot = Math.max(width, 3);
    return {
      color: line.color || "#e0162b",
      width: width,
      dash: line.dash === "solid" ? null : dot + "," + dot,
      radius: ((trace.marker || {}).size || 10) / 2,
      ringColor: ring.color || line.color || "#e0162b",
      ringWidth: ring.width || width
    };
  }

  // Above the points (SVG or WebGL), below the mode bar and the hover label; mouse events pass through it.
  function overlay(gd) {
    var container = gd.querySelector(".svg-container");
    if (!container) {
      return null;
    }
    var node = container.querySelector(":scope > svg.hover-link");
    if (!node) {
      node = svg("svg", {"class": "hover-link"});
      node.style.cssText = "position: absolute; top: 0; left: 0; pointer-events: none; overflow: hidden;";
      var hover = container.querySelector(":scope > svg .hoverlayer");
      var above = container.querySelector(":scope > .modebar-container") || (hover && hover.ownerSVGElement);
      container.insertBefore(node, above || null);
    }
    return node;
  }

  function paintLink(gd) {
    var node = overlay(gd);
    if (!node) {
      return;
    }
    while (node.firstChild) {
      node.removeChild(node.firstChild);
    }
    var link = links.get(gd);
    var layout = gd._fullLayout;
    if (!link || !layout || !layout.xaxis || !layout.yaxis || !gd._fullData || gd._fullData.length <= LINK_TRACE) {
      node.style.display = "none";
      return;
    }
    var xa = layout.xaxis;
    var ya = layout.yaxis;
    node.style.display = "";
    node.setAttribute("width", layout.width);
    node.setAttribute("height", layout.height);
    // A nested SVG at the plot area clips the link to it when the user zooms in.
    var area = svg("svg", {x: xa._offset, y: ya._offset, width: xa._length, height: ya._length, overflow: "hidden"});
    var style = linkStyle(gd);
    var y = ya.l2p(link.ctr);
    var xs = Array.prototype.map.call(link.codes, function (code) { return xa.l2p(code); });
    if (xs.length > 1) {
      var attrs = {points: xs.map(function (x) { return x + "," + y; }).join(" "), fill: "none",
        stroke: style.color, "stroke-width": style.width};
      if (style.dash) {
        attrs["stroke-dasharray"] = style.dash;
      }
      area.appendChild(svg("polyline", attrs));
    }
    xs.forEach(function (x) {
      area.appendChild(svg("circle", {cx: x, cy: y, r: style.radius, fill: "none",
        stroke: style.ringColor, "stroke-width": style.ringWidth}));
    });
    node.appendChild(area);
  }

  // Zoom, pan and resize move the points: the link follows. New data (a new figure) ends it.
  // Registered again at each draw, since a new plot (Plotly.newPlot, purge) drops listeners.
  function watch(gd) {
    if (typeof gd.on !== "function" || typeof gd.removeListener !== "function") {
      return;
    }
    var repaint = repainters.get(gd);
    if (!repaint) {
      repaint = function () {
        var link = links.get(gd);
        if (link && link.data !== gd.data) {
          links.delete(gd);
        }
        paintLink(gd);
      };
      repainters.set(gd, repaint);
    }
    ["plotly_afterplot", "plotly_relayout"].forEach(function (name) {
      gd.removeListener(name, repaint);
      gd.on(name, repaint);
    });
  }

  // Draws (codes, ctr) as the link on the graph, or clears it when codes is null.
  function drawLink(gd, codes, ctr) {
    if (codes === null) {
      links.delete(gd);
    } else {
      links.set(gd, {data: gd.data, codes: codes, ctr: ctr});
      watch(gd);
    }
    paintLink(gd);
  }

  // Links the hovered point's image (or nothing, for image < 0): the overlay and the side panel
  // before the browser paints again, the bars once the pointer rests.
  function showImage(gd, image) {
    var lookup = view.lookup;
    if (!lookup) {
      return;
    }
    if (lookup.token !== last.token) {
      last = {token: lookup.token, image: -1};
    }
    if (image === last.image) {
      return;  // moving between points of the same image changes nothing
    }
    last.image = image;
    var points = image < 0 ? null : imagePoints(gd, lookup, image);
    if (points === null) {
      drawLink(gd, null);
      showCard(lookup, -1);
      markBarsAtRest(null);  // the bars show the figure's own state again (a selected row's highlight)
      return;
    }
    drawLink(gd, points.codes, points.ctr);
    showCard(lookup, image, points);
    markBarsAtRest(points.codes);
  }

  // The scatter's hover events drive the link directly. dcc.Graph still copies each hover into
  // its hoverData, but no callback listens to it: a Dash callback here cost a store update and
  // a React render of the page per hover, and the link waited for them.
  var bound = new WeakMap();  // graph div -> the gd.on its handlers were registered with

  function bindScatter() {
    var gd = graphDiv(SCATTER);
    // Plotly.purge (a new plot) drops the listeners and gives the graph a new gd.on.
    if (!gd || typeof gd.on !== "function" || bound.get(gd) === gd.on) {
      return;
    }
    gd.on("plotly_hover", function (event) {
      showImage(gd, view.lookup ? hoveredImage(event, view.lookup, gd) : -1);
    });
    gd.on("plotly_unhover", function () { showImage(gd, -1); });
    bound.set(gd, gd.on);
  }

  // Before Plotly's own handlers see a move over the scatter, make sure ours are registered.
  document.addEventListener("mousemove", function (event) {
    var target = event.target;
    if (target && target.closest && target.closest("#" + SCATTER)) {
      bindScatter();
    }
  }, {capture: true, passive: true});

  // Links the image named ``name`` as hovering one of its points does (the link over the scatter,
  // the side panel, the bars), or ends the link for null; for the rest of the page (assets/gallery.js).
  // True when the image has points in the scatter shown.
  var imageIndex = new WeakMap();  // lookup -> Map of image name -> its index in lookup.images

  function linkImageNamed(name) {
    var gd = graphDiv(SCATTER);
    var lookup = view.lookup;
    if (!gd || !lookup) {
      return false;
    }
    var index = imageIndex.get(lookup);
    if (!index) {
      var known = imageNames(lookup);
      if (!known) {
        return false;  // still inflating: a moment after the view arrives
      }
      index = new Map(known.map(function (image, i) { return [image, i]; }));
      imageIndex.set(lookup, index);
    }
    var image = name === null || !index.has(name) ? -1 : index.get(name);
    showImage(gd, image);
    return image >= 0;
  }

  window.creativeHover = {linkImageNamed: linkImageNamed};

  // A new view: keep its lookup, decoded and its points grouped by image, and clear what the
  // last one linked.
  function newView(lookup) {
    view.lookup = lookup || null;
    view.groups = null;
    last = {token: lookup ? lookup.token : null, image: -1};
    if (lookup) {
      decodeLookup(lookup);
      groupByImage(lookup);
    }
    var gd = graphDiv(SCATTER);
    if (gd) {
      drawLink(gd, null);
    }
    watchWindow();
    window.clearTimeout(barsWanted.timer);  // a mark still pending would mark the new view's bars
    barsWanted = {codes: null, timer: null};
    markBars(null);
    showCard(null, -1, null);
  }

  function bandPatch(code) {
    var patch = new window.dash_clientside.Patch();
    patch.assign(["layout", "shapes"], code < 0 ? [] : [{
      type: "rect", xref: "x", yref: "paper", x0: code - 0.5, x1: code + 0.5, y0: 0, y1: 1,
      fillcolor: BAND, line: {width: 0}, layer: "below"
    }]);
    moveWindow(patch, SCATTER, "xaxis", code);
    return patch.build();
  }

  // A chart that shows a window of its features moves the window to the highlighted one
  // (assets/window.js keeps the four charts' windows together). The range, when it moves.
  function moveWindow(patch, componentId, axis, code) {
    var reveal = window.creativeWindow ? window.creativeWindow.revealRange(componentId, code) : null;
    if (!reveal) {
      return null;
    }
    patch.assign(["layout", axis, "range"], reveal.range);
    if (reveal.page >= 0) {
      patch.assign(["layout", "sliders", 0, "active"], reveal.page);
    }
    return reveal.range;
  }

  function selectionNote(feature, code, lookup) {
    if (feature === null) {
      return null;
    }
    var clear = html("Button", {id: IDS.TABLE_CLEAR, className: "btn btn-link btn-sm p-0 ms-2"}, "Clear");
    if (code < 0) {
      var charted = lookup ? lookup.features.length : 0;
      return html("Div", {className: "selection-note muted"}, [
        html("Strong", {}, feature),
        " is not among the " + charted + " features charted. Choose \u201cAll features\u201d under " +
        "Features charted to see it in the charts.",
        clear
      ]);
    }
    return html("Div", {className: "selection-note"}, [
      html("Span", {className: "swatch band"}),
      html("Strong", {}, feature),
      " is highlighted in the charts.",
      html("Button", {id: IDS.SHOW_IN_CHARTS, className: "btn btn-link btn-sm p-0 ms-2"}, "Show in charts \u2191"),
      clear
    ]);
  }

  function highlightRow(selectedRows, lookup) {
    var dc = window.dash_clientside;
    var none = dc.no_update;
    // Rows as the grid reports them, or {ids: [...]} as a script sets them (selectAtLoad).
    var feature = Array.isArray(selectedRows) ? (selectedRows.length ? selectedRows[0].feature : null)
      : (selectedRows && selectedRows.ids && selectedRows.ids.length ? selectedRows.ids[0] : null);
    var context = dc.callback_context;
    var byNewView = context && context.triggered && context.triggered.length &&
      context.triggered[0].prop_id.indexOf(IDS.LOOKUP) === 0;
    if (byNewView && lookup) {
      decodeLookup(lookup);
    }
    markVerdict(feature);
    highlightWanted++;  // whatever follows supersedes a highlight still waiting
    if (feature === null && (byNewView || selection.feature === null)) {
      selection = {feature: null, token: lookup ? lookup.token : null, code: -1};
      return [none, none, none, null];  // nothing highlighted, nothing to undo
    }
    if (!lookup) {
      selection = {feature: feature, token: null, code: -1};
      return [none, none, none, selectionNote(feature, -1, null)];
    }
    var code = feature === null ? -1 : lookup.features.indexOf(feature);
    selection = {feature: feature, token: lookup.token, code: code};
    var charts = [SCATTER].concat(BAR_CHARTS);
    var note = selectionNote(feature, code, lookup);
    if (byNewView || !window.creativeGallery) {
      return chartPatches(lookup, code).concat([note]);  // the charts are redrawn anyway
    }
    // A selection: the charts follow once the gallery shows the feature's first pictures (see
    // assets/gallery.js afterShown). Redrawing them first (0.4-1.2 s of main thread at
    // 10,000 x 1,000, most of it the WebGL scatter's) held up the tiles, whose answer arrives
    // meanwhile. A later selection or view supersedes a highlight still waiting.
    var wanted = ++highlightWanted;
    window.creativeGallery.afterShown(feature, function () {
      if (wanted !== highlightWanted) {
        return;
      }
      var patches = chartPatches(lookup, code);
      charts.forEach(function (componentId, i) {
        dc.set_props(componentId, {figure: patches[i]});
      });
    });
    return [none, none, none, note];
  }

  var highlightWanted = 0;  // counts highlights asked for; a waiting one runs only if still the last

  // The figure patches that highlight feature ``code`` (none for -1): the scatter's band, then
  // each bar chart's bar, each chart's window moved to show it.
  function chartPatches(lookup, code) {
    var n = lookup.features.length;
    var codes = code >= 0 ? [code] : null;
    var bars = BAR_CHARTS.map(function (componentId) {
      return barPatch(componentId, n, codes, function (patch) { moveWindow(patch, componentId, "yaxis", code); });
    });
    return [bandPatch(code)].concat(bars);
  }

  // The verdict's buttons of the selected feature show it (aria-pressed), the others do not.
  function markVerdict(feature) {
    var panel = document.getElementById(IDS.VERDICT);
    if (!panel) {
      return;
    }
    Array.prototype.forEach.call(panel.querySelectorAll("[data-feature]"), function (node) {
      node.setAttribute("aria-pressed", node.getAttribute("data-feature") === feature ? "true" : "false");
    });
  }

  // Selects ``feature`` everywhere by selecting its table row: the charts, "Travels with" and the
  // URL follow the table's selection. A second press on the selected feature clears it.
  function selectFeature(feature) {
    if (!window.dash_ag_grid || !window.dash_ag_grid.getApiAsync) {
      return;
    }
    window.dash_ag_grid.getApiAsync(IDS.TABLE).then(function (api) {
      var node = api.getRowNode(feature);
      if (!node) {
        return;
      }
      if (node.isSelected()) {
        api.deselectAll();
      } else {
        node.setSelected(true, true);
        api.ensureNodeVisible(node, "middle");
      }
    });
  }

  // A click (or Enter or Space, which buttons turn into a click) on a feature of the verdict.
  document.addEventListener("click", function (event) {
    var target = event.target && event.target.closest ? event.target.closest("[data-feature]") : null;
    if (target && target.closest("#" + IDS.VERDICT)) {
      selectFeature(target.getAttribute("data-feature"));
    }
  });

  // The URL's feature= (``feature``), selected once the table holds the view's rows; then forgotten.
  function selectAtLoad(rows, feature) {
    var none = window.dash_clientside.no_update;
    if (!feature || !rows || !rows.length) {
      return [none, none];
    }
    var found = rows.some(function (row) { return row.feature === feature; });
    return [found ? {ids: [feature]} : none, null];
  }

  // The view's rows for the table, sent by column (dashboard/page/views.py packed_rows): a
  // column of floats as a typed array (NaN for none), any other as a list.
  function unpackRows(packed) {
    if (!packed || !packed.columns) {
      return window.dash_clientside.no_update;
    }
    var keys = Object.keys(packed.columns);
    var columns = keys.map(function (key) { return numbers(packed.columns[key]); });
    var floats = keys.map(function (key) { return typeof packed.columns[key].bdata === "string"; });
    var rows = new Array(packed.n);
    for (var i = 0; i < packed.n; i++) {
      var row = {};
      for (var k = 0; k < keys.length; k++) {
        var v = columns[k][i];
        row[keys[k]] = floats[k] && v !== v ? null : v;
      }
      rows[i] = row;
    }
    return rows;
  }

  // The search box above the table: rows whose feature name holds the text.
  function filterTable(text) {
    var patch = new window.dash_clientside.Patch();
    patch.assign(["quickFilterText"], text || "");
    return patch.build();
  }

  function clearSelection(nClicks) {
    return nClicks ? true : window.dash_clientside.no_update;
  }

  function showInCharts(nClicks) {
    var card = document.getElementById(IDS.BAR_CARD);
    if (nClicks && card) {
      card.scrollIntoView({behavior: "smooth", block: "start"});
    }
    return window.dash_clientside.no_update;
  }

  window.dash_clientside = window.dash_clientside || {};
  // A view was drawn (its impact heading written): with a row selected, raise the count that
  // makes the Travels-with panel follow the view; with none, nothing to ask the server.
  function redrawnWithSelection(_title, selectedRows, count) {
    return selectedRows && selectedRows.length ? (count || 0) + 1 : window.dash_clientside.no_update;
  }

  // The scatter's config with WebGL buffers at the screen's pixel ratio (1 to 2), which the page
  // serves as 1 (dashboard/page/components.py GRAPH_CONFIG): no change on a standard screen.
  function glPixelRatio(_id, config) {
    var ratio = Math.min(2, Math.max(1, window.devicePixelRatio || 1));
    if (config && config.plotGlPixelRatio === ratio) {
      return window.dash_clientside.no_update;
    }
    return Object.assign({}, config, {plotGlPixelRatio: ratio});
  }

  window.dash_clientside.creative = {
    redrawnWithSelection: redrawnWithSelection, glPixelRatio: glPixelRatio,
    newView: newView, highlightRow: highlightRow, showInCharts: showInCharts, clearSelection: clearSelection,
    writeUrl: writeUrl, selectAtLoad: selectAtLoad, filterTable: filterTable, unpackRows: unpackRows
  };

  // Cell formats of the summary table (dash-ag-grid looks functions up here by name). They
  // follow dashboard/figures/: CTR in %, impact in percentage points, p and q to 2 digits.
  function missing(v) {
    return v === null || v === undefined || !isFinite(v);
  }

  var SUPERSCRIPT = {"-": "\u207b", "0": "\u2070", "1": "\u00b9", "2": "\u00b2", "3": "\u00b3",
    "4": "\u2074", "5": "\u2075", "6": "\u2076", "7": "\u2077", "8": "\u2078", "9": "\u2079"};

  function formatP(v) {
    if (missing(v)) { return "\u2013"; }
    if (v === 0) { return "< 10\u207b\u00b3\u2070\u2070"; }
    if (v >= 0.001) { return String(Number(v.toPrecision(2))); }
    var parts = v.toExponential(1).split("e");
    var exponent = String(parseInt(parts[1], 10)).split("").map(function (c) { return SUPERSCRIPT[c]; }).join("");
    return parts[0] + " \u00d7 10" + exponent;
  }

  function pp(v) {
    return (v >= 0 ? "+" : MINUS) + Math.abs(v * 100).toFixed(3);
  }

  var grid = window.dashAgGridFunctions = window.dashAgGridFunctions || {};
  grid.formatCount = function (v) { return missing(v) ? "\u2013" : Number(v).toLocaleString("en-US"); };
  grid.formatShare = function (v) { return missing(v) ? "\u2013" : v.toFixed(1) + "%"; };
  grid.formatCtr = function (v) { return missing(v) ? "\u2013" : (v * 100).toFixed(3) + "%"; };
  grid.formatImpact = function (v) { return missing(v) ? "\u2013" : pp(v) + " pp"; };
  // ``unchanged``: the field that marks a row whose interval is 0 by construction (a build comparison).
  grid.formatInterval = function (row, low, high, unchanged) {
    if (row && unchanged && row[unchanged]) { return "unchanged"; }
    if (!row || missing(row[low]) || missing(row[high])) { return "\u2013"; }
    return pp(row[low]) + " to " + pp(row[high]) + " pp";
  };
  grid.formatLift = function (v) {
    return missing(v) ? "\u2013" : (v >= 0 ? "+" : MINUS) + Math.abs(v).toFixed(1) + " %";
  };
  grid.formatP = formatP;

  // The controls write the view into the URL without a reload: a slider move replaces the
  // history entry (Back then leaves the view instead of replaying each drag), any other change
  // adds one. Back and forward change the URL without telling the controls, so then the page
  // reloads and opens at that URL's view.
  var current = window.location.pathname + window.location.search;

  function writeUrl(entry) {
    if (!entry || typeof entry.search !== "string") {
      return;
    }
    var url = window.location.pathname + entry.search;
    if (url === window.location.pathname + window.location.search) {
      return;  // unchanged: no new history entry
    }
    if (entry.replace) {
      window.history.replaceState(window.history.state, "", url);
    } else {
      window.history.pushState({}, "", url);
    }
    current = url;
  }

  window.addEventListener("popstate", function () {
    var now = window.location.pathname + window.location.search;
    if (now !== current) {
      current = now;
      window.location.reload();
    }
  });
  // Repairs to the markup of widgets the page does not draw itself, so that assistive
  // technology reads them right; run again whenever the page's DOM changes (cheap: a few queries).
  //  - Dash's dropdowns keep a focusable input inside aria-hidden: take it out of the tab order
  //    (the dropdown's own button, which its label names, takes the focus).
  //  - Slider handles have no name: name them by their control's label.
  //  - AG Grid keeps row groups for pinned, sticky and full-width rows even when they hold no
  //    row: hide the empty ones from the accessibility tree.
  function repairAccessibility() {
    Array.prototype.forEach.call(document.querySelectorAll("[aria-hidden=true] input, input[aria-hidden=true]"),
      function (node) {
        if (node.getAttribute("tabindex") !== "-1") {
          node.setAttribute("tabindex", "-1");
        }
      });
    Array.prototype.forEach.call(document.querySelectorAll("[role=slider]:not([aria-labelledby]):not([aria-label])"),
      function (node) {
        var label = node.closest(".control") && node.closest(".control").querySelector("label[id]");
        if (label) {
          node.setAttribute("aria-labelledby", label.id);
        }
      });
    Array.prototype.forEach.call(document.querySelectorAll(".ag-root [role=rowgroup]"), function (node) {
      var empty = !node.querySelector("[role=row]");
      if (empty && node.getAttribute("aria-hidden") !== "true") {
        node.setAttribute("aria-hidden", "true");
      } else if (!empty && node.getAttribute("aria-hidden") === "true") {
        node.removeAttribute("aria-hidden");
      }
    });
  }

  var repairPending = false;
  new MutationObserver(function () {
    if (!repairPending) {
      repairPending = true;
      window.requestAnimationFrame(function () {
        repairPending = false;
        repairAccessibility();
        // A new plot drops the scatter's listeners (Plotly.purge): bind drawWindow again, and
        // draw the part in view if a redraw (a figure patched by the selection) left another.
        watchWindow();
      });
    }
  }).observe(document.documentElement, {subtree: true, childList: true});
})();
