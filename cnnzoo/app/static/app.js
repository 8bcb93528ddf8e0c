// The page of `cnnzoo app`: four views over the JSON answers of cnnzoo/app/server.py.
// Plain JavaScript, no framework: the receptive-field box is an SVG rectangle in input
// pixels over the input image, so its size can be read back from the page.
"use strict";

const state = { zoo: null, source: "", image: "", inspected: null, run: "", runMtime: null };
const $ = (selector) => document.querySelector(selector);

function element(name, attributes, ...children) {
  const node = document.createElement(name);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (key === "text") node.textContent = value;
    else if (key === "className") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function showMessage(text) {
  const box = $("#message");
  box.textContent = text || "";
  box.hidden = !text;
}

async function ask(path, options) {
  $("#busy").hidden = false;
  try {
    const response = await fetch(path, options);
    const body = await response.json().catch(() => ({ error: `the server answered ${response.status}` }));
    if (!response.ok || body.error) throw new Error(body.error || `the server answered ${response.status}`);
    return body;
  } finally {
    $("#busy").hidden = true;
  }
}

function query(parameters) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(parameters)) {
    for (const item of [].concat(value)) if (item !== undefined && item !== null && item !== "") search.append(key, item);
  }
  return search.toString();
}

// A user's action: the last message goes when it starts (not when some answer arrives, which
// may belong to an earlier action), and its own failure becomes the message.
function guarded(action) {
  return (...args) => {
    showMessage("");
    return Promise.resolve(action(...args)).catch((error) => showMessage(error.message));
  };
}

function table(header, rows, numeric) {
  const head = element("tr", {}, ...header.map((h, i) => element("th", { className: numeric && numeric.includes(i) ? "number" : "", text: h })));
  const body = rows.map((row) => element("tr", { className: row.className || "" },
    ...row.cells.map((cell, i) => element("td", { className: numeric && numeric.includes(i) ? "number" : "", text: cell }))));
  return element("table", {}, element("thead", {}, head), element("tbody", {}, ...body));
}

// --- routing -------------------------------------------------------------------------

const VIEWS = ["zoo", "inspect", "runs", "experiments"];
const ROUTES = { network: "zoo", run: "runs", experiment: "experiments" };

function route() {
  const [key, value] = decodeURIComponent(location.hash.slice(1)).split("=");
  const view = ROUTES[key] || (VIEWS.includes(key) ? key : "zoo");
  for (const name of VIEWS) $(`#view-${name}`).hidden = name !== view;
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.view === view));
  const openers = { zoo: openZoo, inspect: openInspect, runs: openRuns, experiments: openExperiments };
  guarded(openers[view])(key in ROUTES ? value : null);
}

// --- Zoo -----------------------------------------------------------------------------

async function openZoo(name) {
  if (!state.zoo) {
    state.zoo = await ask("/api/zoo");
    for (const family of state.zoo.families) $("#family-filter").append(element("option", { value: family, text: family }));
    for (const task of state.zoo.tasks) $("#task-filter").append(element("option", { value: task, text: task }));
    for (const select of [$("#pair-first"), $("#pair-second")]) {
      for (const n of state.zoo.networks) select.append(element("option", { value: n.name, text: n.name }));
    }
    $("#pair-second").selectedIndex = 1;
  }
  listNetworks();
  if (name) await showNetwork(name);
}

function listNetworks() {
  const family = $("#family-filter").value, task = $("#task-filter").value;
  const text = $("#name-filter").value.trim().toLowerCase();
  const shown = state.zoo.networks.filter((n) => (!family || n.family === family) && (!task || n.task === task) && n.name.includes(text));
  $("#zoo-list").replaceChildren(...shown.map((n) => element("li", { "data-name": n.name },
    element("a", { href: `#network=${n.name}`, className: "network-link", text: n.name }), " ",
    element("span", { className: "meta", text: `${n.family} · ${n.task}` }))));
  $("#zoo-count").textContent = `${shown.length} of ${state.zoo.networks.length} networks`;
}

async function showNetwork(name) {
  const page = await ask(`/api/network?${query({ name })}`);
  const totals = `input ${page.input_shape.join("×")} · ${formatNumber(page.total_params)} parameters · ` +
    `${formatNumber(page.total_flops)} FLOPs · output receptive field ${page.output_field}`;
  const diagram = element("div", { className: "diagram", id: "diagram" }, ...page.diagram.map((stage) =>
    element("div", { className: "stage", "data-name": stage.name },
      element("div", { className: "name", text: `${stage.name} (${stage.type})` }),
      element("div", { className: "shape", text: stage.shape.join("×") }),
      ...stage.blocks.map((b) => element("div", { className: "block", text: `${b.name.split(".").pop()} ${b.type} → ${b.shape.join("×")}` })))));
  const rows = page.rows.map((r) => ({ className: `depth-${Math.min(r.depth, 4)}`, cells: [r.name, r.type,
    r.output_shape.join("×"), r.params.toLocaleString(), r.flops_text, strideText(r), r.field_text] }));
  $("#network-page").replaceChildren(
    element("h2", { text: name, id: "network-name" }),
    element("p", { text: `${page.family} · ${page.task} · ${page.paper}`, id: "network-paper" }),
    element("p", { className: "hint", text: totals }),
    element("h3", { text: "Blocks" }), diagram,
    element("h3", { text: "Layers" }),
    element("div", { className: "table-scroll" }, table(["layer", "type", "output", "params", "FLOPs", "stride", "receptive field"], rows, [3, 4, 5, 6])),
    element("p", { className: "hint", text: "receptive field and stride in input pixels; global = sees the whole input; * = also modulated by a global summary; ~ = upper bound" }));
}

// As `cnnzoo info` writes it: one number when both axes agree, "-" for a global summary.
function strideText(row) {
  if (!row.stride || row.global) return "-";
  const [height, width] = row.stride.map(formatNumber);
  return height === width ? height : `${height}×${width}`;
}

async function comparePair() {
  const answer = await ask(`/api/network/compare?${query({ first: $("#pair-first").value, second: $("#pair-second").value })}`);
  const [a, b] = answer.networks;
  const line = (label, key, format) => ({ cells: [label, format(a[key]), format(b[key])] });
  const same = (v) => String(v);
  $("#pair-result").replaceChildren(table(["", a.name, b.name], [
    line("family", "family", same), line("paper", "paper", same),
    line("input", "input_shape", (v) => v.join("×")), line("parameters", "total_params", (v) => v.toLocaleString()),
    line("FLOPs", "total_flops", formatNumber), line("convolutions", "convolutions", same),
    line("output receptive field", "output_field", same), line("smallest input side", "min_size", same),
  ], [1, 2]));
}

// --- Inspect -------------------------------------------------------------------------

async function openInspect() {
  if ($("#source").options.length) return;
  const sources = await ask("/api/sources");
  const group = (label, kind, names) => element("optgroup", { label }, ...names.map((n) => element("option", { value: `${kind}:${n}`, text: n })));
  $("#source").replaceChildren(group("trained runs", "run", sources.runs), group("pretrained (cached weights)", "pretrained", sources.pretrained), group("fresh weights", "model", sources.models));
  const preferred = sources.runs.length ? `run:${sources.runs[0]}` : "model:resnet18";
  $("#source").value = preferred;
  await chooseSource();
}

async function chooseSource() {
  state.source = $("#source").value;
  state.inspected = null;
  $("#cam-layer").replaceChildren();
  $("#feature-layer").replaceChildren();
  await Promise.all([state.image ? inspect() : null, listSamples(state.source)]);
}

// The samples of a source; reading a data set may take seconds, and by then another source
// may have been chosen, whose list this must not overwrite.
async function listSamples(source) {
  $("#sample").replaceChildren(element("option", { value: "", text: "–" }));
  const answer = await ask(`/api/samples?${query({ source })}`).catch((error) => { showMessage(error.message); return { samples: [] }; });
  if (source !== state.source) return;
  for (const s of answer.samples) $("#sample").append(element("option", { value: s.id, text: s.name }));
}

async function upload(file, extra) {
  const answer = await ask(`/api/images?${query({ name: file.name, ...extra })}`, { method: "POST", body: file, headers: { "Content-Type": "application/octet-stream" } });
  return answer.id;
}

async function uploadImage() {
  const file = $("#upload").files[0];
  if (!file) return;
  state.image = await upload(file, {});
  $("#sample").value = "";
  await inspect();
}

async function uploadMask() {
  const file = $("#mask-upload").files[0];
  if (!file || !state.image) { showMessage("choose an image before its mask"); return; }
  await upload(file, { mask_for: state.image });
  await inspect();
}

async function inspect() {
  if (!state.source || !state.image) return;
  $("#inspect-status").textContent = "looking inside…";
  const parameters = { source: state.source, image: state.image, cam_layer: $("#cam-layer").value, layer: $("#feature-layer").value };
  const answer = await ask(`/api/inspect?${query(parameters)}`).finally(() => { $("#inspect-status").textContent = ""; });
  state.inspected = answer;
  $("#inspect-result").hidden = false;
  fillLayerChoices(answer);
  fitPictures($("#inspect-result"), "input", answer.input_width, answer.input_height, INPUT_SIDE);
  $("#input-image").src = answer.input;
  const overlay = $("#rf-overlay");
  overlay.setAttribute("viewBox", `0 0 ${answer.input_width} ${answer.input_height}`);
  overlay.replaceChildren();
  $("#erf-figure").hidden = true;
  $("#unit-info").textContent = "";
  $("#cam-image").src = answer.cam.picture;
  $("#cam-caption").textContent = `Grad-CAM at ${answer.cam.layer} for class ${answer.cam.class}`;
  showPredictions(answer);
  showFeatureMaps(answer.features);
  showSegmentation(answer.segmentation);
  await showGates(answer.se_blocks);
}

const INPUT_SIDE = 256, MAP_SIDE = 112; // the longer side of a drawn input and of a feature map

// Sizes `--NAME-width` and `--NAME-height` on `container` so that a width x height picture
// fills `side` pixels along its longer side and keeps its aspect ratio (the input, its
// Grad-CAM and mask overlays, the receptive-field SVG in input pixels, the feature maps).
function fitPictures(container, name, width, height, side) {
  const scale = side / Math.max(width, height, 1);
  container.style.setProperty(`--${name}-width`, `${Math.max(1, Math.round(width * scale))}px`);
  container.style.setProperty(`--${name}-height`, `${Math.max(1, Math.round(height * scale))}px`);
}

function fillLayerChoices(answer) {
  for (const [select, chosen] of [[$("#cam-layer"), answer.cam.layer], [$("#feature-layer"), answer.layer]]) {
    if (select.options.length !== answer.layers.length) {
      select.replaceChildren(...answer.layers.map((l) => element("option", { value: l.name, text: `${l.name} (${l.height}×${l.width})` })));
    }
    select.value = chosen;
  }
}

function showPredictions(answer) {
  if (!answer.predictions) { $("#predictions").replaceChildren(); return; }
  const items = answer.predictions.map((p) => element("li", { className: "prediction", "data-class": p.class, "data-probability": p.probability },
    element("span", { text: `${p.class} ${(100 * p.probability).toFixed(1)} %` }),
    element("span", { className: "bar", style: `width: ${Math.round(120 * p.probability)}px` })));
  $("#predictions").replaceChildren(element("h3", { text: `Top ${items.length}` }), element("ol", { id: "prediction-list" }, ...items),
    element("p", { className: "hint", text: `${answer.network}: ${answer.source}` }));
}

function showFeatureMaps(features) {
  fitPictures($("#feature-maps"), "map", features.width, features.height, MAP_SIDE);
  $("#feature-title").textContent = `${features.layer}: ${features.maps.length} most active of ${features.channels} maps, ${features.height}×${features.width}; click a unit`;
  $("#feature-maps").replaceChildren(...features.maps.map((m) => {
    const picture = element("img", { className: "feature-map", src: m.picture, alt: `channel ${m.channel}`, "data-channel": m.channel,
      "data-height": features.height, "data-width": features.width });
    picture.addEventListener("click", guarded((event) => clickUnit(event, features)));
    return element("figure", {}, picture, element("figcaption", { text: String(m.channel) }));
  }));
}

async function clickUnit(event, features) {
  const picture = event.target;
  const row = Math.min(features.height - 1, Math.floor((event.offsetY / picture.clientHeight) * features.height));
  const column = Math.min(features.width - 1, Math.floor((event.offsetX / picture.clientWidth) * features.width));
  const parameters = { source: state.source, image: state.image, layer: features.layer, row, column };
  const unit = await ask(`/api/unit?${query(parameters)}`);
  drawFields(unit);
}

function drawFields(unit) {
  const field = unit.theoretical, answer = state.inspected;
  const overlay = $("#rf-overlay");
  overlay.replaceChildren();
  // The unclipped box in input pixels: pixel i spans [i, i + 1), so the first pixel's left edge
  // is `left` and the box is as wide as the field; the SVG viewport clips it at the image's edges.
  svgElement("rect", { id: "rf-box", x: field.left, y: field.top, width: field.width, height: field.height,
    fill: "rgba(255, 200, 0, 0.15)", stroke: "#ffbf00", "stroke-width": Math.max(answer.input_width / 128, 0.5),
    "data-layer": unit.layer, "data-row": unit.row, "data-column": unit.column,
    "data-rf-height": field.height, "data-rf-width": field.width }, overlay);
  const centreX = (field.left + field.right) / 2 + 0.5, centreY = (field.top + field.bottom) / 2 + 0.5;
  svgElement("circle", { cx: centreX, cy: centreY, r: Math.max(answer.input_width / 100, 0.6), fill: "#ff3b30" }, overlay);
  $("#erf-image").src = unit.effective.picture;
  const erf = $("#erf-overlay");
  erf.setAttribute("viewBox", `0 0 ${answer.input_width} ${answer.input_height}`);
  erf.replaceChildren();
  const box = unit.effective.box;
  if (box) svgElement("rect", { id: "erf-box", x: box.left, y: box.top, width: box.right - box.left + 1, height: box.bottom - box.top + 1,
    fill: "none", stroke: "white", "stroke-dasharray": "2 1", "stroke-width": Math.max(answer.input_width / 128, 0.5) }, erf);
  $("#erf-figure").hidden = false;
  markUnit(unit, answer.features);
  const support = box ? `${box.bottom - box.top + 1}×${box.right - box.left + 1}` : "none";
  $("#unit-info").textContent = `unit (${unit.row}, ${unit.column}) of ${unit.layer}: theoretical receptive field ` +
    `${field.height}×${field.width} input pixels${field.exact ? "" : " (upper bound)"}; gradient support ${support} within the image`;
}

// The clicked unit outlined on every map of the layer: the same position in each channel.
function markUnit(unit, features) {
  document.querySelectorAll(".unit-marker").forEach((marker) => marker.remove());
  if (unit.layer !== features.layer) return;
  for (const picture of document.querySelectorAll("#feature-maps img")) {
    const width = picture.clientWidth / features.width, height = picture.clientHeight / features.height;
    picture.parentElement.append(element("div", { className: "unit-marker",
      style: `left: ${picture.offsetLeft + picture.clientLeft + unit.column * width}px; top: ${picture.offsetTop + picture.clientTop + unit.row * height}px; width: ${width}px; height: ${height}px` }));
  }
}

function showSegmentation(segmentation) {
  if (!segmentation) { $("#segmentation").replaceChildren(); return; }
  const legend = segmentation.legend.map((c) => element("li", {}, element("span", { className: "legend-swatch", style: `background: ${c.colour}` }), c.class));
  const parts = [element("h3", { text: "Predicted mask" }), element("img", { src: segmentation.overlay, className: "picture", id: "mask-overlay" }), element("ul", { id: "mask-legend" }, ...legend)];
  if (segmentation.iou) {
    parts.push(element("h3", { text: "IoU per class against the image's mask" }),
      table(["class", "IoU"], segmentation.iou.map((c) => ({ cells: [c.class, c.iou === null ? "absent" : c.iou.toFixed(3)] })), [1]));
  }
  $("#segmentation").replaceChildren(...parts);
}

async function showGates(blocks, chosen) {
  $("#se-panel").hidden = !blocks.length;
  if (!blocks.length) return;
  if ($("#se-block").options.length !== blocks.length) {
    $("#se-block").replaceChildren(...blocks.map((b) => element("option", { value: b, text: b })));
    $("#se-block").value = blocks[blocks.length - 1];
  }
  const answer = await ask(`/api/se?${query({ source: state.source, image: state.image, block: chosen || $("#se-block").value })}`);
  barChart($("#se-chart"), answer.gates, `channel of ${answer.block}`, "gate", [0, 1]);
}

// --- Runs ----------------------------------------------------------------------------

async function openRuns(name) {
  const listing = await ask("/api/runs");
  $("#runs-root").textContent = `runs under ${listing.root}`;
  if (!listing.runs.length) $("#run-list").replaceChildren(element("li", { className: "hint", text: "no runs yet: `make demo` trains one" }));
  else $("#run-list").replaceChildren(...listing.runs.map((r) => element("li", {},
    element("input", { type: "checkbox", className: "run-select", value: r }), " ",
    element("a", { href: `#run=${r}`, className: "run-link", text: r }))));
  if (name) await showRun(name);
}

async function showRun(name) {
  const run = await ask(`/api/run?${query({ run: name })}`);
  state.run = name;
  state.runMtime = run.log_mtime;
  const status = run.finished ? element("span", { text: "finished" }) : element("span", { className: "live", id: "live", text: "training: updates as epochs finish" });
  const metrics = run.metrics ? table(["metric", "value"], Object.entries(run.metrics).filter(([, v]) => typeof v !== "object")
    .map(([k, v]) => ({ cells: [k, typeof v === "number" ? formatNumber(v) : String(v)] })), [1]) : element("p", { className: "hint", text: "no metrics.json yet" });
  const pictures = run.pictures.filter((p) => p !== "curves.png").map((p) => element("img", { src: `/api/run/picture?${query({ run: name, name: p })}`, alt: p }));
  const perClass = run.per_class.length ? table(["class", "metric", "value"], run.per_class.map((c) => ({ cells: [c.class, c.metric, c.value === null ? "-" : c.value.toFixed(3)] })), [2]) : "";
  const curves = element("div", { id: "curves" });
  $("#run-page").replaceChildren(element("h2", { text: name, id: "run-name" }), status,
    element("h3", { text: "Curves" }), curves, element("h3", { text: "Metrics (test split)" }), metrics, perClass,
    element("div", { className: "pictures" }, ...pictures), element("h3", { text: "Recipe (config.yaml)" }), element("pre", { text: run.recipe || "none" }));
  drawCurves(curves, run.history);
}

function drawCurves(container, history) {
  const losses = document.createElementNS(SVG_NS, "svg"), scores = document.createElementNS(SVG_NS, "svg");
  for (const [svg, id] of [[losses, "loss-chart"], [scores, "score-chart"]]) {
    svg.setAttribute("class", "chart"); svg.id = id; svg.dataset.epochs = history.length; container.append(svg);
  }
  const columns = history.length ? Object.keys(history[0]) : [];
  const series = (keys) => keys.map((key) => ({ name: key, points: history.map((row) => [row.epoch, row[key]]) }));
  lineChart(losses, series(columns.filter((c) => c.endsWith("loss"))), "epoch", "loss");
  const skip = ["epoch", "step", "lr", "seconds"];
  lineChart(scores, series(columns.filter((c) => !c.endsWith("loss") && !skip.includes(c))), "epoch", "score");
}

async function pollRun() {
  if ($("#view-runs").hidden || !state.run) return;
  const run = await ask(`/api/run?${query({ run: state.run })}`);
  if (run.log_mtime !== state.runMtime) await showRun(state.run);
}

async function compareRuns() {
  const chosen = [...document.querySelectorAll(".run-select:checked")].map((box) => box.value);
  const answer = await ask(`/api/runs/compare?${query({ run: chosen })}`);
  const points = answer.rows.filter((r) => r.score !== null).map((r) => ({ label: r.run, x: r.macs / 1e6, y: r.score }));
  const chart = document.createElementNS(SVG_NS, "svg");
  chart.setAttribute("class", "chart"); chart.id = "comparison-chart";
  $("#run-comparison").replaceChildren(element("h2", { text: "Comparison" }), element("pre", { id: "comparison-table", text: answer.table }), chart);
  pointChart(chart, points, "MMACs per image", answer.rows[0].metric || "score");
}

// --- Experiments ---------------------------------------------------------------------

async function openExperiments(name) {
  const answer = await ask("/api/experiments");
  $("#experiment-list").replaceChildren(...answer.experiments.map((e) => element("li", {},
    element("a", { href: `#experiment=${e.name}`, className: "experiment-link", text: e.title }),
    element("div", { className: "meta", text: e.claim }))));
  if (name) await showExperiment(name);
}

async function showExperiment(name) {
  const answer = await ask(`/api/experiment?${query({ name })}`);
  const figure = (file) => `/api/experiment/figure?${query({ name, figure: file })}`;
  const report = answer.report ? renderMarkdown(answer.report, figure) : element("p", { className: "hint", text: `no report yet: cnnzoo experiment ${name} --quick` });
  $("#experiment-page").replaceChildren(element("h2", { text: answer.title, id: "experiment-title" }),
    element("p", {}, element("strong", { text: "Claim: " }), answer.claim),
    answer.where ? element("p", { className: "hint", text: `report from ${answer.where}` }) : "", report);
}

// A small reader for the reports' markdown: headings, tables, figures, lists and paragraphs.
function renderMarkdown(text, figureUrl) {
  const root = element("div", { className: "report" });
  for (const block of text.split(/\n\s*\n/)) {
    const lines = block.trim().split("\n");
    const image = block.trim().match(/^!\[(.*)\]\((.+)\)/);
    if (!block.trim()) continue;
    if (image) root.append(element("img", { src: figureUrl(image[2]), alt: image[1] }));
    else if (/^#{1,6} /.test(lines[0])) root.append(element(`h${Math.min(lines[0].indexOf(" ") + 2, 6)}`, { text: lines[0].replace(/^#+ /, "") }));
    else if (lines[0].startsWith("|")) root.append(table(cellsOf(lines[0]), lines.slice(2).map((l) => ({ cells: cellsOf(l) }))));
    else if (/^[-*] /.test(lines[0])) root.append(element("ul", {}, ...lines.map((l) => element("li", { text: l.replace(/^[-*] /, "").replaceAll("**", "") }))));
    else if (/^\*[^*].*\*$/.test(block.trim())) root.append(element("p", {}, element("em", { text: block.trim().slice(1, -1) })));
    else root.append(element("p", { text: block.replaceAll("**", "").replaceAll("`", "") }));
  }
  return root;
}

function cellsOf(line) {
  return line.trim().replace(/^\||\|$/g, "").split("|").map((cell) => cell.trim());
}

// --- wiring --------------------------------------------------------------------------

window.addEventListener("hashchange", route);
for (const id of ["#family-filter", "#task-filter", "#name-filter"]) $(id).addEventListener("input", listNetworks);
$("#pair-compare").addEventListener("click", guarded(comparePair));
$("#source").addEventListener("change", guarded(chooseSource));
$("#upload").addEventListener("change", guarded(uploadImage));
$("#mask-upload").addEventListener("change", guarded(uploadMask));
$("#sample").addEventListener("change", guarded(async () => { if ($("#sample").value) { state.image = $("#sample").value; await inspect(); } }));
$("#cam-layer").addEventListener("change", guarded(inspect));
$("#feature-layer").addEventListener("change", guarded(inspect));
$("#se-block").addEventListener("change", guarded(() => showGates(state.inspected.se_blocks, $("#se-block").value)));
$("#compare-runs").addEventListener("click", guarded(compareRuns));
// Not an action of the user's: it leaves the message shown alone unless it fails itself.
setInterval(() => pollRun().catch((error) => showMessage(error.message)), 2000);
route();
