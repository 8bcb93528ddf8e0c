// Small SVG charts drawn by hand: lines (training curves), bars (SE gates) and points
// (a comparison). Each reads its data, scales it into the box and labels both axes.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const MARGIN = { left: 52, right: 120, top: 14, bottom: 34 };
const COLOURS = ["#3b6fb6", "#d1603d", "#2f9e44", "#9c36b5", "#e8a300", "#0b7285"];

function svgElement(name, attributes, parent) {
  const element = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes || {})) element.setAttribute(key, value);
  if (parent) parent.appendChild(element);
  return element;
}

function svgText(parent, x, y, text, anchor) {
  const element = svgElement("text", { x, y, "text-anchor": anchor || "start" }, parent);
  element.textContent = text;
  return element;
}

function extent(values) {
  const finite = values.filter((v) => Number.isFinite(v));
  if (!finite.length) return [0, 1];
  let low = Math.min(...finite), high = Math.max(...finite);
  if (low === high) { low -= 0.5; high += 0.5; }
  return [low, high];
}

// A range widened by a tenth on each side, so points on its edges and their labels stay inside.
function padded(range) {
  const margin = (range[1] - range[0]) / 10;
  return [range[0] - margin, range[1] + margin];
}

function chartFrame(svg, xRange, yRange, xLabel, yLabel) {
  svg.replaceChildren();
  const width = svg.clientWidth || 640, height = svg.clientHeight || 260;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const inner = { width: width - MARGIN.left - MARGIN.right, height: height - MARGIN.top - MARGIN.bottom };
  const x = (v) => MARGIN.left + ((v - xRange[0]) / (xRange[1] - xRange[0])) * inner.width;
  const y = (v) => MARGIN.top + (1 - (v - yRange[0]) / (yRange[1] - yRange[0])) * inner.height;
  svgElement("rect", { x: MARGIN.left, y: MARGIN.top, width: inner.width, height: inner.height,
    fill: "none", stroke: "#c5ccd3" }, svg);
  for (const fraction of [0, 0.5, 1]) {
    const xv = xRange[0] + fraction * (xRange[1] - xRange[0]);
    const yv = yRange[0] + fraction * (yRange[1] - yRange[0]);
    svgText(svg, x(xv), height - MARGIN.bottom + 14, formatNumber(xv), "middle");
    svgText(svg, MARGIN.left - 4, y(yv) + 4, formatNumber(yv), "end");
  }
  svgText(svg, MARGIN.left + inner.width / 2, height - 4, xLabel, "middle");
  const label = svgText(svg, 12, MARGIN.top + inner.height / 2, yLabel, "middle");
  label.setAttribute("transform", `rotate(-90 12 ${MARGIN.top + inner.height / 2})`);
  return { x, y, inner, width, height };
}

function formatNumber(value) {
  const size = Math.abs(value);
  if (size >= 1e9) return (value / 1e9).toPrecision(3) + "G";
  if (size >= 1e6) return (value / 1e6).toPrecision(3) + "M";
  if (size >= 1e3) return (value / 1e3).toPrecision(3) + "K";
  return Number.isInteger(value) ? String(value) : value.toPrecision(3);
}

// series: [{name, points: [[x, y], ...]}]
function lineChart(svg, series, xLabel, yLabel) {
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const frame = chartFrame(svg, extent(xs), extent(ys), xLabel, yLabel);
  series.forEach((s, index) => {
    const colour = COLOURS[index % COLOURS.length];
    const points = s.points.filter((p) => Number.isFinite(p[1]));
    const path = points.map((p, i) => `${i ? "L" : "M"}${frame.x(p[0])},${frame.y(p[1])}`).join("");
    svgElement("path", { d: path, fill: "none", stroke: colour, "stroke-width": 2,
      class: "series", "data-name": s.name, "data-points": points.length }, svg);
    for (const p of points) svgElement("circle", { cx: frame.x(p[0]), cy: frame.y(p[1]), r: 2.5, fill: colour }, svg);
    svgText(svg, frame.width - MARGIN.right + 8, MARGIN.top + 12 + 14 * index, s.name).style.fill = colour;
  });
}

function barChart(svg, values, xLabel, yLabel, yRange) {
  const range = yRange || extent(values);
  const frame = chartFrame(svg, [0, values.length], range, xLabel, yLabel);
  const step = frame.inner.width / Math.max(values.length, 1);
  values.forEach((value, index) => {
    const top = frame.y(value);
    svgElement("rect", { x: MARGIN.left + index * step, y: top, width: Math.max(step - 0.5, 0.5),
      height: frame.y(range[0]) - top, fill: COLOURS[0], class: "bar-value" }, svg);
  });
}

// points: [{label, x, y}]
function pointChart(svg, points, xLabel, yLabel) {
  const frame = chartFrame(svg, padded(extent(points.map((p) => p.x))), padded(extent(points.map((p) => p.y))), xLabel, yLabel);
  points.forEach((p, index) => {
    const colour = COLOURS[index % COLOURS.length];
    svgElement("circle", { cx: frame.x(p.x), cy: frame.y(p.y), r: 6, fill: colour, class: "point" }, svg);
    svgText(svg, frame.x(p.x) + 8, frame.y(p.y) - 8, p.label).style.fill = colour;
  });
}
