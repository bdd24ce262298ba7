// Layered layout of a DAG (no DOM: tests run it under node).
// tgLayout(data) -> {boxes: {id: {x, y, w, h, layer}}, width, height, layers}
// Layers: longest path from the sources ("writes" edges of updates are
// drawn but do not constrain, as they point back at an input). Order within
// a layer: barycentres of the neighbours, sweeping down and up a few times.
var TG_LAYOUT = {charWidth: 7, pad: 20, height: 28, gapX: 24, gapY: 70, sweeps: 4};

function tgLayers(data) {
  var layer = {}, indeg = {}, next = {}, order = [];
  data.nodes.forEach(function (n) { indeg[n.id] = 0; next[n.id] = []; layer[n.id] = 0; });
  data.edges.forEach(function (e) {
    if (e.kind === "writes") return;
    indeg[e.target] += 1;
    next[e.source].push(e.target);
  });
  var queue = data.nodes.filter(function (n) { return indeg[n.id] === 0; })
                        .map(function (n) { return n.id; });
  while (queue.length) {
    var id = queue.shift();
    order.push(id);
    next[id].forEach(function (t) {
      layer[t] = Math.max(layer[t], layer[id] + 1);
      indeg[t] -= 1;
      if (indeg[t] === 0) queue.push(t);
    });
  }
  if (order.length !== data.nodes.length) throw new Error("tgLayout: the graph has a cycle");
  return layer;
}

function tgBarycentre(rows, neighbours, position) {
  rows.forEach(function (row) {
    var score = {};
    row.forEach(function (id, k) {
      var near = neighbours[id].filter(function (m) { return m in position; });
      score[id] = near.length ? near.reduce(function (s, m) { return s + position[m]; }, 0)
                                / near.length : k;
    });
    row.sort(function (a, b) { return score[a] - score[b]; });
    row.forEach(function (id, k) { position[id] = k; });
  });
}

function tgLayout(data) {
  var L = TG_LAYOUT, layer = tgLayers(data), rows = [], up = {}, down = {}, position = {};
  data.nodes.forEach(function (n) {
    (rows[layer[n.id]] = rows[layer[n.id]] || []).push(n.id);
    up[n.id] = []; down[n.id] = [];
  });
  data.edges.forEach(function (e) {
    if (e.kind === "writes") return;
    up[e.target].push(e.source);
    down[e.source].push(e.target);
  });
  rows.forEach(function (row) { row.forEach(function (id, k) { position[id] = k; }); });
  for (var s = 0; s < L.sweeps; s++) {
    tgBarycentre(rows.slice(1), up, position);
    tgBarycentre(rows.slice(0, -1).reverse(), down, position);
  }
  var label = {}, boxes = {}, width = 0;
  data.nodes.forEach(function (n) { label[n.id] = n.label; });
  rows.forEach(function (row) {
    var x = 0;
    row.forEach(function (id) {
      var w = Math.min(360, L.pad + L.charWidth * String(label[id]).length);
      boxes[id] = {x: x, y: layer[id] * (L.height + L.gapY), w: w, h: L.height,
                   layer: layer[id]};
      x += w + L.gapX;
    });
    width = Math.max(width, x - L.gapX);
  });
  rows.forEach(function (row) {  // centre each row
    var last = boxes[row[row.length - 1]], shift = (width - (last.x + last.w)) / 2;
    row.forEach(function (id) { boxes[id].x += shift; });
  });
  return {boxes: boxes, width: width, height: rows.length * (L.height + L.gapY) - L.gapY,
          layers: rows};
}

if (typeof module !== "undefined") module.exports = {tgLayout: tgLayout, tgLayers: tgLayers};
