// roofline report: draws the page's charts as SVG from the JSON in #report-data (SI units;
// null: a figure that does not exist), sorts the tables, shows hover details and toggles
// devices. No library, no network. Part of the roofline package (MIT).
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("report-data").textContent);
  const NS = "http://www.w3.org/2000/svg";
  // Okabe-Ito: distinguishable with the common colour-vision deficiencies
  const COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#7A3E9D", "#333333"];
  const VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"];
  const PARTS = [["params", "parameters", "#4e79a7"], ["gradients", "gradients", "#f28e2b"],
    ["optimizer", "optimizer state", "#e15759"], ["activations", "activations", "#76b7b2"],
    ["kv_cache", "KV cache", "#59a14f"]];
  // a layer's kind by its colour, as in the PNG charts (roofline/plot.py KIND_COLORS); a
  // device by its marker's shape (its roof and the marker's edge keep its colour)
  const KIND_COLORS = { matmul: "#1f77b4", conv: "#17becf", attention: "#ff7f0e", softmax: "#d62728",
    norm: "#9467bd", activation: "#8c564b", elementwise: "#e377c2", embedding: "#7f7f7f", pool: "#bcbd22",
    concat: "#2ca02c" };
  const kindColor = (k) => KIND_COLORS[k] || "#000000";
  const SHAPES = ["circle", "square", "triangle", "diamond", "triangle-down", "pentagon", "hexagon", "cross"];
  function shapePath(j, x, y, r) {  // a closed path of device j's shape, centred on (x, y), about r across
    const poly = (n, turn, k) => {
      let d = "";
      for (let i = 0; i < n; i++) {
        const a = turn + (2 * Math.PI * i) / n, q = k * r;
        d += (i ? "L" : "M") + (x + q * Math.sin(a)).toFixed(2) + "," + (y - q * Math.cos(a)).toFixed(2);
      }
      return d + "z";
    };
    switch (SHAPES[j % SHAPES.length]) {
      case "square": { const h = 0.89 * r; return "M" + (x - h) + "," + (y - h) + "h" + 2 * h + "v" + 2 * h + "h" + -2 * h + "z"; }
      case "triangle": return poly(3, 0, 1.25);
      case "diamond": return poly(4, 0, 1.2);
      case "triangle-down": return poly(3, Math.PI, 1.25);
      case "pentagon": return poly(5, 0, 1.1);
      case "hexagon": return poly(6, 0, 1.05);
      case "cross": { const a = r, b = r / 3;
        return "M" + (x - b) + "," + (y - a) + "h" + 2 * b + "v" + (a - b) + "h" + (a - b) + "v" + 2 * b + "h" + -(a - b) +
          "v" + (a - b) + "h" + -2 * b + "v" + -(a - b) + "h" + -(a - b) + "v" + -2 * b + "h" + (a - b) + "z"; }
      default: return "M" + (x - r) + "," + y + "a" + r + "," + r + " 0 1,0 " + 2 * r + ",0a" + r + "," + r + " 0 1,0 " + -2 * r + ",0z";
    }
  }
  function starPath(x, y, r) {  // a five-pointed star: the whole step, as in the PNG charts
    let d = "";
    for (let i = 0; i < 10; i++) {
      const a = (Math.PI * i) / 5, q = i % 2 ? r * 0.45 : r;
      d += (i ? "L" : "M") + (x + q * Math.sin(a)).toFixed(2) + "," + (y - q * Math.cos(a)).toFixed(2);
    }
    return d + "z";
  }
  const devices = DATA.devices;
  const hidden = devices.map(() => false);
  const color = (j) => COLORS[j % COLORS.length];

  // ------------------------------------------------------------ helpers
  function el(tag, attrs, parent) {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function label(parent, x, y, str, attrs) {
    const t = el("text", Object.assign({ x: x, y: y, fill: "#1a1a1a" }, attrs || {}), parent);
    t.textContent = str;
    return t;
  }
  function esc(s) {
    return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  }
  const ok = (v) => v !== null && v !== undefined && isFinite(v);
  const fmt3 = (x) => String(Number(x.toPrecision(3)));
  const PREFIXES = [[1e18, "E"], [1e15, "P"], [1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
  function si(v, unit) {
    if (!ok(v)) return "–";
    for (const [s, p] of PREFIXES) if (Math.abs(v) >= s) return fmt3(v / s) + " " + p + unit;
    return fmt3(v) + " " + unit;
  }
  function compact(v) {  // a heatmap cell: 199k, 1.2M
    for (const [s, p] of PREFIXES) if (Math.abs(v) >= s) return fmt3(v / s) + p;
    return fmt3(v);
  }
  function secs(v) {
    if (!ok(v)) return "–";
    if (v >= 1) return fmt3(v) + " s";
    if (v >= 1e-3) return fmt3(v * 1e3) + " ms";
    if (v >= 1e-6) return fmt3(v * 1e6) + " µs";
    return fmt3(v * 1e9) + " ns";
  }
  const gb = (v) => (ok(v) ? (v / 1e9).toLocaleString("en", { maximumFractionDigits: 2 }) + " GB" : "–");
  const logScale = (lo, hi, a, b) => (v) => a + ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (b - a);
  function decades(lo, hi) {
    const out = [];
    for (let e = Math.ceil(Math.log10(lo) - 1e-9); e <= Math.floor(Math.log10(hi) + 1e-9); e++) out.push(Math.pow(10, e));
    return out;
  }
  const tickText = (v) => (v >= 1e5 || v < 1e-3 ? v.toExponential(0).replace("e+", "e") : String(Number(v.toPrecision(2))));
  function span(values, pad, minDecades) {  // a log range around the values, at least minDecades wide
    const hi = Math.max(...values) * pad;
    return [Math.min(Math.min(...values) / pad, hi / Math.pow(10, minDecades)), hi];
  }

  // ------------------------------------------------------------ tooltip
  const tip = document.getElementById("tip");
  function place(evt) {
    const r = tip.getBoundingClientRect();
    let x = evt.clientX + 14, y = evt.clientY + 14;
    if (x + r.width > window.innerWidth) x = Math.max(0, evt.clientX - r.width - 14);
    if (y + r.height > window.innerHeight) y = Math.max(0, evt.clientY - r.height - 14);
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  }
  function hover(node, head, rows) {
    node.addEventListener("mouseenter", (evt) => {
      tip.innerHTML = "<b>" + esc(head()) + "</b><table>" +
        rows().map(([k, v]) => "<tr><th>" + esc(k) + "</th><td>" + esc(v) + "</td></tr>").join("") + "</table>";
      tip.style.display = "block";
      place(evt);
    });
    node.addEventListener("mousemove", place);
    node.addEventListener("mouseleave", () => { tip.style.display = "none"; });
    // keyboard and touch: focus (Tab, or a tap) shows the same figures beside the mark
    node.setAttribute("tabindex", "0");
    node.addEventListener("focus", () => {
      const b = node.getBoundingClientRect();
      node.dispatchEvent(new MouseEvent("mouseenter", { clientX: b.right, clientY: b.bottom }));
    });
    node.addEventListener("blur", () => { tip.style.display = "none"; });
  }

  // ------------------------------------------------------------ device toggles
  function setHidden(j, value) {
    hidden[j] = value;
    document.getElementById("hidden-devices").textContent =
      hidden.map((h, i) => (h ? ".dev-" + i + "{display:none}" : "")).join("");
    const box = document.querySelector('#device-toggles input[data-device="' + j + '"]');
    if (box) box.checked = !value;
  }
  function toggles() {
    const holder = document.getElementById("device-toggles");
    devices.forEach((d, j) => {
      const lab = document.createElement("label");
      lab.title = "show or hide " + d.key + " on the whole page";
      lab.innerHTML = '<input type="checkbox" checked data-device="' + j + '">' +
        '<svg class="shape" width="16" height="16" viewBox="0 0 16 16" aria-hidden="true"><path d="' +
        shapePath(j, 8, 8, 5.5) + '" fill="#fff" stroke="' + color(j) + '" stroke-width="2"/></svg>' +
        "<span><b>" + esc(d.key) + "</b> " + esc(d.name) + ": " + esc(si(d.peak_flops_per_s, "FLOP/s")) + " " +
        esc(DATA.scenario.dtype) + ", " + esc(si(d.memory_bandwidth_bytes_per_s, "B/s")) + ", ridge " +
        d.ridge_point.toFixed(1) + " FLOP/B</span>";
      holder.appendChild(lab);
      lab.querySelector("input").addEventListener("change", (evt) => setHidden(j, !evt.target.checked));
    });
  }

  // ------------------------------------------------------------ roofline chart
  function axes(svg, sx, sy, box, xt, yt, xlabel, ylabel, yscale) {
    const g = el("g", { class: "grid" }, svg);
    const a = el("g", { class: "axis" }, svg);
    el("path", { d: "M" + box.l + "," + box.t + "V" + box.b + "H" + box.r, fill: "none" }, a);
    xt.forEach((v) => {
      el("line", { x1: sx(v), x2: sx(v), y1: box.t, y2: box.b }, g);
      label(a, sx(v), box.b + 18, tickText(v), { "text-anchor": "middle", "font-size": 12 });
    });
    yt.forEach((v) => {
      el("line", { x1: box.l, x2: box.r, y1: sy(v), y2: sy(v) }, g);
      label(a, box.l - 6, sy(v) + 4, tickText(v / yscale), { "text-anchor": "end", "font-size": 12 });
    });
    label(a, (box.l + box.r) / 2, box.b + 42, xlabel, { "text-anchor": "middle", "font-size": 14 });
    label(a, 0, 0, ylabel, { "text-anchor": "middle", "font-size": 14,
      transform: "translate(" + (box.l - 58) + "," + (box.t + box.b) / 2 + ") rotate(-90)" });
  }
  function roofline() {
    const W = 1100, H = 560, box = { l: 84, t: 14, r: 830, b: 500 };
    const pts = [], xs = [], ys = [];
    // every layer at its roofline bound (FLOPs / bound time: on its roof), as in the PNG
    // charts; its area its share of the bound step time; the expected figures in its tooltip
    devices.forEach((d, j) => {
      const total = d.summary.time_s;
      DATA.layers.forEach((L, i) => {
        const t = d.time_s[i];
        if (!(L.flops > 0 && ok(L.intensity) && L.intensity > 0 && ok(t) && t > 0)) return;
        pts.push({ j: j, i: i, x: L.intensity, y: L.flops / t, share: t / total, t: t });
        xs.push(L.intensity); ys.push(L.flops / t);
      });
      const s = d.summary;
      if (ok(s.expected_time_s) && s.expected_time_s > 0) ys.push(s.flops / s.expected_time_s);
      xs.push(d.ridge_point); ys.push(d.peak_flops_per_s);
    });
    const [xlo, xhi] = span(xs, 2, 3), [ylo, yhi] = span(ys, 1.6, 3);
    const sx = logScale(xlo, xhi, box.l, box.r), sy = logScale(ylo, yhi, box.b, box.t);
    const svg = el("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img",
      "aria-label": "roofline chart: performance against arithmetic intensity, log-log" });
    document.getElementById("roofline-chart").appendChild(svg);
    axes(svg, sx, sy, box, decades(xlo, xhi), decades(ylo, yhi),
      "Arithmetic intensity (FLOP/byte, log scale)", "Performance at the bound (TFLOP/s = 1e12 FLOP/s, log)", 1e12);
    const clip = el("clipPath", { id: "plot-area" }, el("defs", {}, svg));
    el("rect", { x: box.l, y: box.t, width: box.r - box.l, height: box.b - box.t }, clip);
    const labels = [];
    devices.forEach((d, j) => {
      const bw = d.memory_bandwidth_bytes_per_s, peak = d.peak_flops_per_s;
      const x0 = Math.max(xlo, ylo / bw);
      const g = el("g", { class: "roof dev-" + j, "clip-path": "url(#plot-area)" }, svg);
      el("path", { d: "M" + sx(x0) + "," + sy(bw * x0) + "L" + sx(d.ridge_point) + "," + sy(peak) + "H" + box.r,
        fill: "none", stroke: color(j), "stroke-width": 2.5 }, g);
      el("line", { x1: sx(d.ridge_point), x2: sx(d.ridge_point), y1: sy(peak), y2: box.b, stroke: color(j),
        "stroke-dasharray": "4 4", "stroke-opacity": 0.6 }, g);
      labels.push({ j: j, y: sy(peak), text: d.key + ": " + si(peak, "FLOP/s") + ", ridge " + d.ridge_point.toFixed(0) + " FLOP/B" });
    });
    labels.sort((a, b) => a.y - b.y).forEach((lab, k, all) => {  // keep the roof labels apart
      if (k > 0 && lab.y < all[k - 1].y + 15) lab.y = all[k - 1].y + 15;
      const t = label(svg, box.r + 8, lab.y + 4, lab.text, { class: "roof-label dev-" + lab.j, "font-size": 12,
        fill: color(lab.j), style: "cursor:pointer" });
      t.addEventListener("click", () => setHidden(lab.j, true));
    });
    devices.forEach((d, j) => {
      const s = d.summary;
      // the whole step at the bound (filled star) and as expected (hollow star), as in the
      // PNG charts; each device's shifted sideways by its own 14 px (one workload has one
      // intensity), and drawn before the layer points: a layer is never under a step mark
      const x = sx(s.intensity) + 14 * (j - (devices.length - 1) / 2), r = 9;
      const marks = [["bound", s.time_s, color(j)]];
      if (ok(s.expected_time_s) && s.expected_time_s > 0) marks.push(["expected", s.expected_time_s, "#fff"]);
      const yb = sy(s.flops / s.time_s), ye = marks.length > 1 ? sy(s.flops / s.expected_time_s) : yb;
      el("line", { x1: x, x2: x, y1: yb, y2: ye, stroke: color(j), "stroke-width": 1, class: "dev-" + j }, svg);
      marks.forEach(([which, t, fill]) => {
        const m = el("path", { d: starPath(x, sy(s.flops / t), r), fill: fill, stroke: which === "bound" ? "#000" : color(j),
          "stroke-width": which === "bound" ? 1 : 2, class: "step-mark step-" + which + " dev-" + j,
          "aria-label": "whole step on " + d.key + " " + (which === "bound" ? "at the bound" : "as expected") }, svg);
        hover(m, () => "whole step on " + d.key + (which === "bound" ? ", at the bound" : ", as expected"), () => [
          ["FLOPs", si(s.flops, "FLOP")], ["bytes", si(s.bytes, "B")], ["intensity", fmt3(s.intensity) + " FLOP/B"],
          ["bound time", secs(s.time_s)], ["expected time", secs(s.expected_time_s)],
          [which === "bound" ? "FLOP/s at the bound" : "expected FLOP/s", si(s.flops / t, "FLOP/s")],
          ["MFU", ok(s.mfu) ? (100 * s.mfu).toFixed(1) + "%" : "–"]]);
      });
    });
    // layers that land on the same spot (a decoder's projections all near one intensity
    // and rate) are set side by side, largest first, so each one's centre is its own to
    // hover; the tooltip keeps the exact figures
    const anchors = [];
    pts.sort((a, b) => b.share - a.share).forEach((p) => {
      p.r = 3 + 11 * Math.sqrt(p.share);
      p.cx = sx(p.x);
      const a = anchors.find((q) => Math.abs(q.x - p.cx) < q.r && Math.abs(q.y - sy(p.y)) < q.r);
      if (a) { p.cx = a.next + p.r; a.next = p.cx + p.r + 1; }
      else anchors.push({ j: p.j, x: p.cx, y: sy(p.y), r: p.r, next: p.cx + p.r + 1 });
    });
    pts.forEach((p) => {
      const L = DATA.layers[p.i], d = devices[p.j];
      const c = el("path", { d: shapePath(p.j, p.cx, sy(p.y), p.r),
        fill: kindColor(L.kind), "fill-opacity": 0.8, stroke: color(p.j), "stroke-width": 1.2,
        class: "layer-point dev-" + p.j, "data-device": p.j, "data-layer": p.i, "data-kind": L.kind,
        "data-flops-per-s": p.y,
        "aria-label": L.name + " on " + d.key }, svg);
      hover(c, () => L.name, () => [
        ["device", d.key], ["kind", L.kind], ["count", L.count], ["FLOPs", si(L.flops, "FLOP")],
        ["bytes", si(L.bytes, "B") + " (GB = 1e9 B)"], ["intensity", fmt3(L.intensity) + " FLOP/B"],
        ["bound time", secs(d.time_s[p.i])], ["expected time", secs(d.expected_time_s[p.i])],
        ["FLOP/s at the bound (drawn)", si(p.y, "FLOP/s")],
        ["expected FLOP/s", ok(d.expected_time_s[p.i]) && d.expected_time_s[p.i] > 0 ? si(L.flops / d.expected_time_s[p.i], "FLOP/s") : "–"],
        ["share of the bound step", (100 * p.share).toFixed(1) + "%"],
        ["bound by", (d.compute_bound[p.i] ? "compute" : "memory") + " (ridge " + d.ridge_point.toFixed(1) + " FLOP/B)"]]);
    });
    // the legend, at the lower right beside the plot: a layer's colour is its kind, a
    // device's shape is in the toggles above; the stars are the whole step
    const kinds = Array.from(new Set(pts.map((p) => DATA.layers[p.i].kind))).sort();
    const lg = el("g", { class: "kind-legend", "aria-label": "legend" }, svg);
    let ly = box.b - 16 * (kinds.length + 3) + 8;
    label(lg, box.r + 12, ly, "layer kind (area = share of the step)", { "font-size": 12, "font-weight": 600 });
    kinds.forEach((k) => {
      ly += 16;
      el("circle", { cx: box.r + 18, cy: ly - 4, r: 5, fill: kindColor(k), "fill-opacity": 0.8 }, lg);
      label(lg, box.r + 28, ly, k, { "font-size": 12, class: "kind-name" });
    });
    ly += 20;
    el("path", { d: starPath(box.r + 18, ly - 4, 7), fill: "#555", stroke: "#000", "stroke-width": 1 }, lg);
    label(lg, box.r + 30, ly, "whole step at the bound", { "font-size": 12 });
    ly += 16;
    el("path", { d: starPath(box.r + 18, ly - 4, 7), fill: "#fff", stroke: "#555", "stroke-width": 2 }, lg);
    label(lg, box.r + 30, ly, "whole step as expected", { "font-size": 12 });
    const skipped = DATA.layers.filter((L) => !(L.flops > 0)).length;
    if (skipped) {
      label(svg, box.l + 6, box.t + 14, skipped + (skipped > 1 ? " layers" : " layer") +
        " with no FLOPs (lookups, concatenations) on a log axis: not drawn",
        { "font-size": 12, fill: "#5a5a5a" });
    }
    return pts.length;
  }

  // ------------------------------------------------------------ what-if heatmaps
  function viridis(t) {
    const x = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1), i = Math.min(VIRIDIS.length - 2, Math.floor(x));
    const a = VIRIDIS[i], b = VIRIDIS[i + 1], f = x - i;
    const ch = (s, k) => parseInt(s.substr(1 + 2 * k, 2), 16);
    return "rgb(" + [0, 1, 2].map((k) => Math.round(ch(a, k) + f * (ch(b, k) - ch(a, k)))).join(",") + ")";
  }
  function hatch(defs, id) {
    const p = el("pattern", { id: id, width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" }, defs);
    el("rect", { width: 6, height: 6, fill: "#e4e4e4" }, p);
    el("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#9a9a9a", "stroke-width": 2.5 }, p);
  }
  function whatif() {
    const w = DATA.whatif, nx = w.x.values.length, ny = w.y.values.length;
    const unit = w.metric === "tokens_per_s" ? "tokens/s" : "samples/s";
    const yname = { seq: "sequence length (tokens)", context: "context (cached tokens)" }[w.y.name] || "fixed input";
    const rates = [];
    w.devices.forEach((d) => d.rate.forEach((row, iy) => row.forEach((v, ix) => { if (d.fits[iy][ix] && ok(v) && v > 0) rates.push(v); })));
    const lo = rates.length ? Math.min(...rates) : 1, hi = rates.length ? Math.max(...rates) : 10;
    const shade = (v) => viridis(hi > lo ? (Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)) : 0.5);
    document.getElementById("whatif-note").textContent = "Expected " + unit + " of every scenario (colour, log scale; " +
      "the same scale for every device) over batch x " + (w.y.name ? yname : "the model's fixed input") +
      ". Hatched cells (OOM) need more memory per device than the device has; the red line is the boundary " +
      "between what fits and what does not. The outlined cell is the run above. Hover a cell for its figures.";
    const legend = el("svg", { width: 760, height: 50, viewBox: "0 0 760 50", role: "img", "aria-label": "colour scale" });
    document.getElementById("whatif-legend").appendChild(legend);
    const grad = el("linearGradient", { id: "viridis" }, el("defs", {}, legend));
    hatch(legend.querySelector("defs"), "oom-hatch-legend");
    VIRIDIS.forEach((c, k) => el("stop", { offset: (100 * k / (VIRIDIS.length - 1)) + "%", "stop-color": c }, grad));
    el("rect", { x: 10, y: 6, width: 300, height: 14, fill: "url(#viridis)" }, legend);
    if (rates.length) {
      label(legend, 10, 36, compact(lo) + " " + unit, { "font-size": 12 });
      label(legend, 310, 36, compact(hi) + " " + unit, { "font-size": 12, "text-anchor": "end" });
    } else {
      label(legend, 10, 36, "no scenario fits on any device", { "font-size": 12 });
    }
    el("rect", { x: 340, y: 6, width: 26, height: 14, fill: "url(#oom-hatch-legend)" }, legend);
    label(legend, 372, 18, "does not fit (OOM)", { "font-size": 12 });
    el("line", { x1: 500, x2: 526, y1: 13, y2: 13, stroke: "#d00000", "stroke-width": 3 }, legend);
    label(legend, 532, 18, "fit boundary", { "font-size": 12 });
    el("rect", { x: 630, y: 6, width: 26, height: 14, fill: "none", stroke: "#000", "stroke-width": 2.5 }, legend);
    label(legend, 662, 18, "this run", { "font-size": 12 });
    const cw = Math.max(44, Math.min(60, 560 / nx)), ch = Math.max(24, Math.min(40, 320 / ny));
    const m = { l: 78, t: 30, b: 48, r: 12 }, W = m.l + nx * cw + m.r, H = m.t + ny * ch + m.b;
    const top = (iy) => m.t + (ny - 1 - iy) * ch;
    w.devices.forEach((d, j) => {
      const fig = document.createElement("figure");
      fig.className = "heatmap dev-" + j;
      fig.style.margin = "0";
      document.getElementById("whatif-charts").appendChild(fig);
      const svg = el("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img",
        "aria-label": "what-if heatmap of " + d.key }, fig);
      hatch(el("defs", {}, svg), "oom-hatch-" + j);
      label(svg, m.l, 18, d.key + ": expected " + unit + " (capacity " + gb(d.capacity_bytes) + ")",
        { "font-size": 14, "font-weight": 600 });
      let edges = "";
      for (let iy = 0; iy < ny; iy++) {
        for (let ix = 0; ix < nx; ix++) {
          const fits = d.fits[iy][ix], v = d.rate[iy][ix], x = m.l + ix * cw, y = top(iy);
          const good = fits && ok(v) && v > 0;
          const cell = el("rect", { x: x, y: y, width: cw, height: ch, class: "cell dev-" + j + (fits ? "" : " oom"),
            fill: good ? shade(v) : "url(#oom-hatch-" + j + ")", stroke: "#fff", "stroke-width": 0.5 }, svg);
          const dark = good && (Math.log10(v) - Math.log10(lo)) / Math.max(1e-12, Math.log10(hi) - Math.log10(lo)) < 0.6;
          const txt = label(svg, x + cw / 2, y + ch / 2 + 4, fits ? (good ? compact(v) : "–") : "OOM",
            { "text-anchor": "middle", "font-size": 11, fill: dark ? "#fff" : "#1a1a1a", "pointer-events": "none" });
          if (!fits) txt.setAttribute("font-weight", 600);
          hover(cell, () => d.key + ": batch " + w.x.values[ix] + (w.y.name ? ", " + w.y.name + " " + w.y.values[iy] : ""), () => [
            [unit + " (expected)", si(v, unit)], ["expected time", secs(d.expected_time_s[iy][ix])],
            ["bound time", secs(d.time_s[iy][ix])], ["memory per device", gb(w.memory_bytes[iy][ix])],
            ["capacity", gb(d.capacity_bytes)], ["fits", fits ? "yes" : "no (OOM)"]]);
          if (ix + 1 < nx && d.fits[iy][ix + 1] !== fits) edges += "M" + (x + cw) + "," + y + "v" + ch;
          if (iy + 1 < ny && d.fits[iy + 1][ix] !== fits) edges += "M" + x + "," + y + "h" + cw;
        }
      }
      if (edges) el("path", { d: edges, class: "oom-boundary", stroke: "#d00000", "stroke-width": 3, fill: "none",
        "stroke-linecap": "square" }, svg);
      if (w.current.x !== null && w.current.y !== null) {
        el("rect", { x: m.l + w.current.x * cw + 1.5, y: top(w.current.y) + 1.5, width: cw - 3, height: ch - 3,
          fill: "none", stroke: "#000", "stroke-width": 2.5, class: "current" }, svg);
      }
      w.x.values.forEach((b, ix) => label(svg, m.l + ix * cw + cw / 2, m.t + ny * ch + 15, String(b), { "text-anchor": "middle", "font-size": 11 }));
      w.y.values.forEach((s, iy) => label(svg, m.l - 5, top(iy) + ch / 2 + 4, s === null ? "fixed" : String(s), { "text-anchor": "end", "font-size": 11 }));
      label(svg, m.l + (nx * cw) / 2, H - 8, "batch (samples)", { "text-anchor": "middle", "font-size": 12 });
      label(svg, 0, 0, yname, { "text-anchor": "middle", "font-size": 12,
        transform: "translate(" + 16 + "," + (m.t + (ny * ch) / 2) + ") rotate(-90)" });
    });
  }

  // ------------------------------------------------------------ memory bars
  function memoryBars() {
    const parts = DATA.memory.breakdown, total = parts.total;
    const cap = Math.max(...devices.map((d) => d.capacity_bytes));
    const top = Math.max(total, cap) * 1.08, W = 980, row = 34, m = { l: 110, t: 58, r: 170, b: 40 };
    const H = m.t + devices.length * row + m.b, sx = (v) => m.l + (v / top) * (W - m.l - m.r);
    const svg = el("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img",
      "aria-label": "memory footprint against each device's capacity" });
    document.getElementById("memory-chart").appendChild(svg);
    let lx = m.l, ly = 8;  // the legend, wrapped onto a second line when it runs out of width
    const wrap = (width) => { if (lx + width > W - 10) { lx = m.l; ly += 20; } };
    PARTS.forEach(([k, name, c]) => {
      const text = label(svg, 0, 0, name + " " + gb(parts[k]), { "font-size": 12 });
      const width = 20 + text.getComputedTextLength() + 16;
      wrap(width);
      el("rect", { x: lx, y: ly, width: 14, height: 14, fill: c }, svg);
      text.setAttribute("x", lx + 20);
      text.setAttribute("y", ly + 12);
      lx += width;
    });
    const cap_text = label(svg, 0, 0, "the device's capacity", { "font-size": 12 });
    wrap(14 + cap_text.getComputedTextLength());
    el("line", { x1: lx + 6, x2: lx + 6, y1: ly - 1, y2: ly + 15, stroke: "#000", "stroke-width": 2.5 }, svg);
    cap_text.setAttribute("x", lx + 14);
    cap_text.setAttribute("y", ly + 12);
    const step = Math.pow(10, Math.floor(Math.log10(top / 5)));
    const tick = [1, 2, 5, 10].map((f) => f * step).find((s) => top / s <= 6);
    for (let v = 0; v <= top; v += tick) {
      el("line", { x1: sx(v), x2: sx(v), y1: m.t - 4, y2: H - m.b, stroke: "#e6e6e6" }, svg);
      label(svg, sx(v), H - m.b + 16, fmt3(v / 1e9), { "text-anchor": "middle", "font-size": 11 });
    }
    label(svg, (m.l + W - m.r) / 2, H - 6, "memory per device (GB = 1e9 bytes)", { "text-anchor": "middle", "font-size": 12 });
    devices.forEach((d, j) => {
      const g = el("g", { class: "dev-" + j }, svg), y = m.t + j * row;
      label(g, m.l - 8, y + row / 2 + 4, d.key, { "text-anchor": "end", "font-size": 13, fill: color(j), "font-weight": 600 });
      let x = 0;
      PARTS.forEach(([k, name, c]) => {
        if (!(parts[k] > 0)) return;
        const r = el("rect", { x: sx(x), y: y + 6, width: Math.max(0.5, sx(x + parts[k]) - sx(x)), height: row - 12, fill: c, class: "mem-part" }, g);
        hover(r, () => name + " on " + d.key, () => [["bytes", gb(parts[k])], ["share of footprint", (100 * parts[k] / total).toFixed(1) + "%"]]);
        x += parts[k];
      });
      el("line", { x1: sx(d.capacity_bytes), x2: sx(d.capacity_bytes), y1: y + 1, y2: y + row - 1, stroke: "#000", "stroke-width": 2.5 }, g);
      label(g, W - m.r + 8, y + row / 2 + 4, (d.fits ? "fits in " : "OOM: ") + gb(d.capacity_bytes) +
        (d.fits ? "" : " (x" + (total / d.capacity_bytes).toFixed(1) + ")"), { "font-size": 12, fill: d.fits ? "#1a1a1a" : "#b00000" });
    });
  }

  // ------------------------------------------------------------ sortable tables
  function sortable(table) {
    const heads = Array.from(table.tHead.rows[0].cells);
    heads.forEach((th, col) => {
      th.tabIndex = 0;
      const go = () => {
        const num = th.dataset.type === "num", was = th.getAttribute("aria-sort");
        const asc = was ? was === "descending" : !num;  // numbers: largest first
        heads.forEach((h) => h.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        const key = (r) => {
          const c = r.cells[col];
          if (!num) return c.textContent.toLowerCase();
          const v = parseFloat(c.dataset.v);
          return isNaN(v) ? -Infinity : v;
        };
        const body = table.tBodies[0];
        Array.from(body.rows).sort((a, b) => {
          const ka = key(a), kb = key(b);
          return (ka < kb ? -1 : ka > kb ? 1 : 0) * (asc ? 1 : -1);
        }).forEach((r) => body.appendChild(r));
      };
      th.addEventListener("click", go);
      th.addEventListener("keydown", (evt) => { if (evt.key === "Enter") go(); });
    });
  }

  toggles();
  const points = roofline();
  whatif();
  memoryBars();
  document.querySelectorAll("table.sortable").forEach(sortable);
  // the layer table: say in words when it scrolls sideways (the shadows show where)
  const scroller = document.getElementById("layers-scroll"), cue = document.getElementById("layers-cue");
  const cueOn = () => { if (scroller && cue) cue.classList.toggle("on", scroller.scrollWidth > scroller.clientWidth + 1); };
  cueOn();
  window.addEventListener("resize", cueOn);
  window.__report = { ready: true, points: points };
})();
