/*
 * The gallery of the selected feature's images (dashboard/page/gallery.py sends one page of
 * records per side): each image a tile built as DOM nodes, names as text (never markup), its
 * picture an <img> (the first 24 fetched at once, the rest lazily) with the name as alt text,
 * or a placeholder with the name where there is none (or it fails to load). Tiles are one tab stop per side (a roving tabindex):
 * Tab enters and leaves the grid, the arrow keys, Home and End move within it. Hovering or
 * focusing a tile links its image in the scatter through assets/dashboard.js, which also waits
 * for a selection's tiles here before it highlights the feature in the charts (afterShown).
 */
(function () {
  "use strict";

  var lists = [];  // the tile lists drawn last (their ids come with the records)

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

  function percent(value) {
    return value === null || value === undefined || !isFinite(value) ? "–" : (value * 100).toFixed(2) + "%";
  }

  function count(value) {
    return Number(value).toLocaleString("en-US");
  }

  function placeholder(name) {
    var node = element("div", "gallery-placeholder");
    node.appendChild(element("span", "gallery-placeholder-note", "No picture"));
    node.appendChild(element("span", "gallery-placeholder-name", name));
    return node;
  }

  // The first tiles of a side are fetched as soon as they are drawn: a lazy picture waits for a
  // layout pass to find it near the viewport, a frame or more after the tiles (about 150 ms while
  // the charts redraw for the same selection). The rest load as they scroll into view.
  var EAGER_TILES = 24;

  function picture(record, eager) {
    var frame = element("div", "gallery-frame");
    if (!record.url) {
      frame.appendChild(placeholder(record.image));
      return frame;
    }
    var img = element("img", "gallery-img");
    img.loading = eager ? "eager" : "lazy";  // set before src, or the browser fetches it at once
    if (eager) {
      img.fetchPriority = "high";
    }
    img.decoding = "async";
    img.alt = record.image;
    img.addEventListener("error", function () { frame.replaceChildren(placeholder(record.image)); }, {once: true});
    img.src = record.url;
    frame.appendChild(img);
    return frame;
  }

  function tile(record, index) {
    var node = element("li", "gallery-tile");
    node.tabIndex = index === 0 ? 0 : -1;
    node.dataset.image = record.image;
    var figure = element("figure", "gallery-figure");
    figure.appendChild(picture(record, index < EAGER_TILES));
    var caption = element("figcaption", "gallery-caption");
    var name = element("span", "gallery-name", record.image);
    name.title = record.image;
    caption.appendChild(name);
    caption.appendChild(element("strong", "gallery-ctr", "CTR " + percent(record.ctr)));
    caption.appendChild(element("span", "gallery-confidence",
      "confidence " + (record.confidence === null ? "–" : record.confidence.toFixed(2))));
    if (record.clicks !== null && record.impressions !== null) {
      caption.appendChild(element("span", "gallery-counts",
        count(record.clicks) + " clicks / " + count(record.impressions) + " impressions"));
    }
    figure.appendChild(caption);
    node.appendChild(figure);
    return node;
  }

  // Work that should wait until a selection's tiles are on screen with their first pictures:
  // the charts' highlight of the same selection holds the main thread for up to a second or
  // more at 10,000 images (Plotly redraws the WebGL scatter), and done first it delayed the
  // tiles by as much. Each waiter runs once: when the tiles of its feature have been drawn and
  // their first pictures decoded (or failed), or when a cap runs out, whichever comes first.
  var TILES_WAIT_MS = 1000;  // from the request: the gallery's answer may be slow or never come
  var PICTURES_WAIT_MS = 1000;  // from the tiles: a picture may be slow to arrive
  var waiters = [];

  function afterShown(feature, callback) {
    var waiter = {feature: feature, done: false, timer: null};
    waiter.run = function () {
      if (!waiter.done) {
        waiter.done = true;
        window.clearTimeout(waiter.timer);
        waiters = waiters.filter(function (w) { return w !== waiter; });
        callback();
      }
    };
    waiter.timer = window.setTimeout(waiter.run, TILES_WAIT_MS);
    waiters.push(waiter);
  }

  // Once the first pictures drawn are decoded and a frame has painted them, run the waiters of
  // ``feature``; the picture cap takes over from the tiles' cap.
  function releaseWaiters(feature, images) {
    var mine = waiters.filter(function (w) { return w.feature === feature; });
    if (!mine.length) {
      return;
    }
    mine.forEach(function (w) {
      window.clearTimeout(w.timer);
      w.timer = window.setTimeout(w.run, PICTURES_WAIT_MS);
    });
    var decoded = images.map(function (img) {
      return img.decode ? img.decode().catch(function () {}) : Promise.resolve();
    });
    Promise.all(decoded).then(function () {
      // After the next frame has painted them, not in the task before it.
      window.requestAnimationFrame(function () {
        window.setTimeout(function () { mine.forEach(function (w) { w.run(); }); }, 0);
      });
    });
  }

  function render(data) {
    lists.forEach(function (list) {
      var node = document.getElementById(list);
      if (node) {
        node.replaceChildren();
      }
    });
    lists = [];
    if (!data || !data.sides) {
      releaseWaiters(data ? data.feature : null, []);
      return;
    }
    Object.keys(data.sides).forEach(function (side) {
      var part = data.sides[side];
      var node = document.getElementById(part.list);
      if (!node) {
        return;
      }
      lists.push(part.list);
      var fragment = document.createDocumentFragment();
      part.images.forEach(function (record, i) { fragment.appendChild(tile(record, i)); });
      node.replaceChildren(fragment);
    });
    var first = [];
    lists.forEach(function (list) {
      var node = document.getElementById(list);
      first = first.concat(Array.prototype.slice.call(node.querySelectorAll(".gallery-img"), 0, EAGER_TILES));
    });
    releaseWaiters(data.feature === undefined ? null : data.feature, first);
  }

  // -- keyboard: one tab stop per grid, the arrows move by tile and by row --------------------

  function tilesOf(grid) {
    return Array.prototype.slice.call(grid.querySelectorAll(":scope > .gallery-tile"));
  }

  function columns(tiles) {
    if (!tiles.length) {
      return 1;
    }
    var top = tiles[0].offsetTop;
    var n = 0;
    while (n < tiles.length && tiles[n].offsetTop === top) {
      n++;
    }
    return Math.max(1, n);
  }

  function moveTo(tiles, from, to) {
    if (to < 0 || to >= tiles.length || to === from) {
      return;
    }
    tiles[from].tabIndex = -1;
    tiles[to].tabIndex = 0;
    tiles[to].focus();
  }

  document.addEventListener("keydown", function (event) {
    var current = event.target && event.target.closest ? event.target.closest(".gallery-tile") : null;
    if (!current || event.altKey || event.ctrlKey || event.metaKey) {
      return;
    }
    var tiles = tilesOf(current.parentNode);
    var at = tiles.indexOf(current);
    var across = columns(tiles);
    var to = {
      ArrowRight: at + 1, ArrowLeft: at - 1, ArrowDown: at + across, ArrowUp: at - across,
      Home: 0, End: tiles.length - 1
    }[event.key];
    if (to === undefined) {
      return;
    }
    event.preventDefault();
    moveTo(tiles, at, Math.max(0, Math.min(tiles.length - 1, to)));
  });

  // -- a hovered or focused tile shows its image's points in the scatter ----------------------

  function link(name) {
    if (window.creativeHover) {
      window.creativeHover.linkImageNamed(name);
    }
  }

  var linked = null;

  function follow(tileNode) {
    var name = tileNode ? tileNode.dataset.image : null;
    if (name !== linked) {
      linked = name;
      link(name);
    }
  }

  document.addEventListener("mouseover", function (event) {
    var node = event.target && event.target.closest ? event.target.closest(".gallery-tile") : null;
    if (node || linked !== null) {
      // Leaving the tiles for elsewhere ends the link, unless a tile holds the focus.
      var focused = document.activeElement && document.activeElement.closest
        ? document.activeElement.closest(".gallery-tile") : null;
      follow(node || focused);
    }
  }, {passive: true});

  document.addEventListener("focusin", function (event) {
    var node = event.target && event.target.closest ? event.target.closest(".gallery-tile") : null;
    if (node) {
      node.tabIndex = 0;  // the tab stop follows the tile last focused (clicked as well as keyed)
      tilesOf(node.parentNode).forEach(function (other) {
        if (other !== node) {
          other.tabIndex = -1;
        }
      });
    }
    if (node || linked !== null) {
      follow(node);
    }
  });

  // -- selecting a feature -------------------------------------------------------------------

  // A clicked bar selects its feature (the bars' y is the feature's name).
  function selectClicked() {
    var context = window.dash_clientside.callback_context;
    var trigger = context && context.triggered && context.triggered[0];
    var point = trigger && trigger.value && trigger.value.points && trigger.value.points[0];
    if (!point || point.y === undefined || point.y === null) {
      return window.dash_clientside.no_update;
    }
    return {ids: [String(point.y)]};
  }

  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.creative_gallery = {render: render, selectClicked: selectClicked};
  window.creativeGallery = {afterShown: afterShown};
})();
