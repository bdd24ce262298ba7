// The SVG view of tgLayout's boxes: pan by dragging, zoom with the wheel,
// hover for the type, click for the details in the side panel.
(function () {
  var data = JSON.parse(document.getElementById("tg-data").textContent);
  var NS = "http://www.w3.org/2000/svg", M = 40;
  var layout = tgLayout(data), boxes = layout.boxes;
  var svg = document.getElementById("tg-svg"), world = document.createElementNS(NS, "g");
  svg.appendChild(world);
  var colours = {input: "#b7e4b0", shared: "#ffe08a", constant: "#eeeeee", apply: "#dde6ff",
                 fused: "#c9d3ff", output: "#a9d4f5", update: "#ffc48a"};
  var byId = {};
  data.nodes.forEach(function (n) { byId[n.id] = n; });

  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    parent.appendChild(e);
    return e;
  }

  data.edges.forEach(function (e) {
    var a = boxes[e.source], b = boxes[e.target];
    var x1 = a.x + a.w / 2 + M, y1 = a.y + a.h + M, x2 = b.x + b.w / 2 + M, y2 = b.y + M;
    if (e.kind === "writes") { y1 = a.y + M; y2 = b.y + b.h + M; }
    var my = (y1 + y2) / 2, path = el("path", {
      d: "M" + x1 + "," + y1 + " C" + x1 + "," + my + " " + x2 + "," + my + " " + x2 + "," + y2,
      fill: "none", stroke: e.kind === "writes" ? "#e08a00" : "#778",
      "stroke-dasharray": e.kind === "writes" ? "5,4" : "none", "marker-end": "url(#tg-arrow)"
    }, world);
    el("title", {}, path).textContent = e.type + (e.label ? " (input " + e.label + ")" : "");
    if (e.label) {
      el("text", {x: x2 + 4, y: y2 - 6, "font-size": 10, fill: "#556"}, world)
        .textContent = e.label;
    }
  });

  var panel = document.getElementById("tg-panel");
  data.nodes.forEach(function (n) {
    var box = boxes[n.id], g = el("g", {transform: "translate(" + (box.x + M) + "," +
                                         (box.y + M) + ")", "class": "tg-node"}, world);
    var round = (n.kind === "apply" || n.kind === "fused") ? 3 : box.h / 2;
    el("rect", {width: box.w, height: box.h, rx: round, fill: colours[n.kind] || "#fff",
                stroke: n.kind === "fused" ? "#4455aa" : "#555",
                "stroke-dasharray": n.kind === "constant" ? "4,3" : "none"}, g);
    el("text", {x: box.w / 2, y: box.h / 2 + 4, "text-anchor": "middle", "font-size": 12},
       g).textContent = n.label;
    el("title", {}, g).textContent = n.detail;
    g.addEventListener("click", function (ev) {
      ev.stopPropagation();
      var text = byId[n.id].detail;
      if (n.steps) text += "\n\nsteps:\n" + n.steps.join("\n");
      panel.textContent = text;
    });
  });

  var view = {x: 0, y: 0, k: 1}, drag = null;
  function apply() {
    world.setAttribute("transform", "translate(" + view.x + "," + view.y + ") scale(" +
                       view.k + ")");
  }
  svg.addEventListener("mousedown", function (ev) {
    drag = {x: ev.clientX - view.x, y: ev.clientY - view.y};
  });
  window.addEventListener("mousemove", function (ev) {
    if (!drag) return;
    view.x = ev.clientX - drag.x; view.y = ev.clientY - drag.y; apply();
  });
  window.addEventListener("mouseup", function () { drag = null; });
  svg.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    var k = Math.min(8, Math.max(0.05, view.k * (ev.deltaY < 0 ? 1.15 : 1 / 1.15)));
    var r = svg.getBoundingClientRect(), px = ev.clientX - r.left, py = ev.clientY - r.top;
    view.x = px - (px - view.x) * k / view.k; view.y = py - (py - view.y) * k / view.k;
    view.k = k; apply();
  }, {passive: false});
  var r = svg.getBoundingClientRect(), W = layout.width + 2 * M, H = layout.height + 2 * M;
  view.k = Math.min(1, r.width / W, r.height / H) || 1;
  view.x = (r.width - W * view.k) / 2;
  apply();
})();
