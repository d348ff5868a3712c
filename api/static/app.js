// The web page: photos in, tasks and options from the API's own schemas (GET /v1/tasks), guidance painted
// in image pixels, jobs sent as one batch (POST /v1/batches), progress polled, results compared and
// downloaded. Plain ES module, no build step, no external URL.

const $ = (selector, root = document) => root.querySelector(selector);
const KEY = "restore-api-key";
const POLL_MS = 600;
const PASSING = new Set([0, 429, 502, 503, 504]);  // statuses a poll waits out: unreachable, busy, restarting
const GIVE_UP_MS = 5 * 60 * 1000;
const UNDO_STEPS = 20;
const UNDO_BYTES = 256 * 2 ** 20;
const MAX_STEPS = 4;

const state = {
  tasks: [],          // from /v1/tasks
  files: [],          // {file, url, name, stem, image, mask, hints, undo: []}
  current: null,      // the file being painted on
  tool: "pan",
};

// ---- talking to the API ----------------------------------------------------------------------------

class ApiError extends Error {
  constructor(message, status) { super(message); this.status = status; }
}

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  const key = sessionStorage.getItem(KEY);
  if (key) headers.set("X-API-Key", key);
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (e) {
    throw new ApiError("Cannot reach the server. Check that it is running, then try again.", 0);
  }
  if (response.status === 401) {
    sessionStorage.removeItem(KEY);
    await askForKey();
    return api(path, options);
  }
  if (!response.ok) throw new ApiError(await explain(response), response.status);
  return response;
}

async function explain(response) {
  let detail = "";
  try { detail = (await response.json()).detail || ""; } catch (e) { /* not JSON */ }
  if (typeof detail !== "string") detail = JSON.stringify(detail);
  const retry = response.headers.get("Retry-After");
  switch (response.status) {
    case 413: return `Too large: ${detail}`;
    case 429: return `The server is busy for you: ${detail}${retry ? ` (try again in ${retry} s)` : ""}`;
    case 503: return `The server cannot take work right now: ${detail}${retry ? ` (try again in ${retry} s)` : ""}`;
    default: return detail || `The server answered ${response.status}.`;
  }
}

function askForKey() {
  const dialog = $("#key-dialog");
  return new Promise((resolve) => {
    $("#key-form").onsubmit = () => {
      sessionStorage.setItem(KEY, $("#key-input").value.trim());
      resolve();
    };
    if (!dialog.open) dialog.showModal();
    $("#key-input").focus();
  });
}

// ---- step 1: photos --------------------------------------------------------------------------------

function addFiles(list) {
  for (const file of list) {
    const stem = file.name.replace(/\.[^.]*$/, "") || "photo";
    const entry = { file, name: file.name, stem, url: URL.createObjectURL(file), image: null, mask: null, hints: null, undo: [] };
    state.files.push(entry);
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.setAttribute("aria-pressed", "false");
    button.setAttribute("aria-label", `Paint on ${file.name}`);
    const thumb = document.createElement("img");
    thumb.src = entry.url;
    thumb.alt = "";
    button.append(thumb, document.createTextNode(file.name));
    button.onclick = () => choose(entry, button);
    item.append(button);
    $("#file-list").append(item);
    if (!state.current) choose(entry, button);
  }
  status(`${state.files.length} photo${state.files.length === 1 ? "" : "s"} chosen.`);
}

function setUpDrop() {
  const drop = $("#drop");
  const input = $("#files");
  drop.onclick = () => input.click();
  drop.onkeydown = (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } };
  input.onchange = () => { addFiles(input.files); input.value = ""; };
  drop.ondragover = (e) => { e.preventDefault(); drop.classList.add("over"); };
  drop.ondragleave = () => drop.classList.remove("over");
  drop.ondrop = (e) => { e.preventDefault(); drop.classList.remove("over"); addFiles(e.dataTransfer.files); };
}

// ---- step 2: the chain and its options, from the API's schemas -------------------------------------

function stepSelect(index, value) {
  const label = document.createElement("label");
  label.textContent = index === 0 ? "Task " : "then ";
  const select = document.createElement("select");
  select.className = "step";
  for (const task of state.tasks) {
    const option = new Option(task.name, task.name);
    option.title = task.summary;
    select.append(option);
  }
  select.value = value;
  select.onchange = renderOptions;
  label.append(select);
  return label;
}

function chain() {
  return [...document.querySelectorAll(".step")].map((s) => s.value);
}

function renderOptions() {
  const box = $("#options");
  const old = readOptions();
  box.replaceChildren(Object.assign(document.createElement("legend"), { textContent: "Options" }));
  const seen = new Set();
  for (const name of chain()) {
    const task = state.tasks.find((t) => t.name === name);
    for (const [key, spec] of Object.entries(task.options.properties || {})) {
      if (seen.has(key) || !["integer", "number", "boolean"].includes(spec.type)) continue;  // hints are painted
      seen.add(key);
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.name = key;
      input.id = `option-${key}`;
      label.htmlFor = input.id;
      if (spec.type === "boolean") {
        input.type = "checkbox";
        input.checked = key in old ? old[key] : Boolean(spec.default);
        label.className = "check";
        label.append(input, document.createTextNode(` ${key}`));
      } else {
        input.type = "number";
        input.step = spec.type === "integer" ? "1" : "0.05";
        if (spec.minimum !== undefined) input.min = spec.minimum;
        if (spec.maximum !== undefined) input.max = spec.maximum;
        input.value = key in old ? old[key] : spec.default;
        input.dataset.type = spec.type;
        label.append(document.createTextNode(key), input);
      }
      if (spec.description) label.append(Object.assign(document.createElement("small"), { textContent: spec.description }));
      box.append(label);
    }
  }
  updatePaintHelp();
}

function readOptions() {
  const values = {};
  for (const input of document.querySelectorAll("#options input")) {
    if (input.type === "checkbox") values[input.name] = input.checked;
    else if (input.value !== "") values[input.name] = input.dataset.type === "integer" ? parseInt(input.value, 10) : parseFloat(input.value);
  }
  return values;
}

function guidanceTaken() {
  const kinds = new Set();
  for (const name of chain()) for (const g of state.tasks.find((t) => t.name === name).guidance) kinds.add(g.name);
  return kinds;
}

// ---- step 3: painting, in image pixels at any zoom ---------------------------------------------------

class View {
  // Zoom and pan of one stage inside its viewport; every layer of the stage moves together.
  constructor(viewport, stage, onChange = () => {}) {
    Object.assign(this, { viewport, stage, onChange, scale: 1, x: 0, y: 0, width: 1, height: 1 });
    viewport.addEventListener("wheel", (e) => { e.preventDefault(); this.zoomAt(e.deltaY < 0 ? 1.25 : 0.8, e.offsetX, e.offsetY); }, { passive: false });
    viewport.addEventListener("keydown", (e) => this.key(e));
  }
  size(width, height) { this.width = width; this.height = height; this.fit(); }
  fit() {
    const box = this.viewport.getBoundingClientRect();
    this.scale = Math.min(4, box.width / this.width, box.height / this.height);
    this.x = (box.width - this.width * this.scale) / 2;
    this.y = (box.height - this.height * this.scale) / 2;
    this.apply();
  }
  set(scale) {
    const box = this.viewport.getBoundingClientRect();
    this.zoomAt(scale / this.scale, box.width / 2, box.height / 2);
  }
  zoomAt(factor, cx, cy) {
    const scale = Math.min(4, Math.max(0.05, this.scale * factor));
    this.x = cx - ((cx - this.x) * scale) / this.scale;
    this.y = cy - ((cy - this.y) * scale) / this.scale;
    this.scale = scale;
    this.apply();
  }
  pan(dx, dy) { this.x += dx; this.y += dy; this.apply(); }
  key(e) {
    const step = 40;
    const moves = { ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
    if (moves[e.key]) { e.preventDefault(); this.pan(...moves[e.key]); }
    else if (e.key === "+" || e.key === "=") { e.preventDefault(); this.set(this.scale * 1.25); }
    else if (e.key === "-") { e.preventDefault(); this.set(this.scale * 0.8); }
  }
  apply() {
    this.stage.style.transform = `translate(${this.x}px, ${this.y}px) scale(${this.scale})`;
    this.onChange(this);
  }
  toImage(clientX, clientY) {
    const box = this.viewport.getBoundingClientRect();
    return [(clientX - box.left - this.x) / this.scale, (clientY - box.top - this.y) / this.scale];
  }
}

function zoomButtons(root, view) {
  for (const button of root.querySelectorAll("[data-zoom]")) {
    button.onclick = () => (button.dataset.zoom === "fit" ? view.fit() : view.set(parseFloat(button.dataset.zoom)));
  }
}

let paintView;

function choose(entry, button) {
  for (const b of document.querySelectorAll(".file-list button")) b.setAttribute("aria-pressed", String(b === button));
  state.current = entry;
  $("#paint-name").textContent = entry.name;
  const photo = $("#paint-photo");
  photo.onload = () => {
    const [w, h] = [photo.naturalWidth, photo.naturalHeight];
    for (const [layer, key] of [[$("#mask-layer"), "mask"], [$("#hint-layer"), "hints"]]) {
      layer.width = w;
      layer.height = h;
      const ctx = layer.getContext("2d");
      ctx.clearRect(0, 0, w, h);
      if (entry[key]) ctx.putImageData(entry[key], 0, 0);
    }
    paintView.size(w, h);
  };
  photo.src = entry.url;
  updatePaintHelp();
}

function updatePaintHelp() {
  const kinds = guidanceTaken();
  const panel = $("#paint-panel");
  panel.hidden = state.files.length === 0;
  const parts = [];
  if (kinds.has("mask")) parts.push("Brush over a watermark the model misses (the brush is sent as the mask).");
  if (kinds.has("hints")) parts.push("Put a dab of a colour you know where it belongs: the colorizer keeps it there and spreads it.");
  if (!parts.length) parts.push("The chosen task takes no painting.");
  $("#paint-help").textContent = parts.join(" ");
  for (const input of document.querySelectorAll('input[name="tool"]')) {
    const needs = { mask: "mask", erase: "mask", hint: "hints" }[input.value];
    input.disabled = Boolean(needs) && !kinds.has(needs);
  }
}

function saveLayers() {
  const entry = state.current;
  if (!entry) return;
  for (const [layer, key] of [[$("#mask-layer"), "mask"], [$("#hint-layer"), "hints"]]) {
    entry[key] = layer.getContext("2d").getImageData(0, 0, layer.width, layer.height);
  }
}

function painted(imageData) {
  if (!imageData) return false;
  const d = imageData.data;
  for (let i = 3; i < d.length; i += 4) if (d[i] > 127) return true;
  return false;
}

function setUpPainting() {
  const viewport = $("#paint-view");
  paintView = new View(viewport, $("#paint-stage"));
  zoomButtons($("#paint-panel"), paintView);
  for (const input of document.querySelectorAll('input[name="tool"]')) {
    input.onchange = () => { state.tool = input.value; viewport.dataset.tool = input.value; };
  }
  viewport.dataset.tool = state.tool;
  let drawing = null;
  const size = () => Math.max(1, parseInt($("#brush-size").value, 10) || 1);

  function dab(x, y) {
    const s = size();
    if (state.tool === "hint") {
      // Square, unsmoothed: every pixel of a dab carries exactly the chosen colour.
      const ctx = $("#hint-layer").getContext("2d");
      ctx.fillStyle = $("#hint-colour").value;
      ctx.fillRect(Math.round(x - s / 2), Math.round(y - s / 2), s, s);
      return;
    }
    const ctx = $("#mask-layer").getContext("2d");
    ctx.globalCompositeOperation = state.tool === "erase" ? "destination-out" : "source-over";
    ctx.fillStyle = "#ffffff";
    ctx.beginPath();
    ctx.arc(x, y, s / 2, 0, Math.PI * 2);
    ctx.fill();
    if (state.tool === "erase") {  // the eraser takes colour dabs away too
      const hints = $("#hint-layer").getContext("2d");
      hints.clearRect(Math.round(x - s / 2), Math.round(y - s / 2), s, s);
    }
  }

  viewport.addEventListener("pointerdown", (e) => {
    viewport.setPointerCapture(e.pointerId);
    if (state.tool === "pan" || e.button === 1) { drawing = { pan: true, x: e.clientX, y: e.clientY }; return; }
    if (!state.current) return;
    const entry = state.current;
    const layers = [$("#mask-layer"), $("#hint-layer")];
    entry.undo.push(layers.map((layer) => layer.getContext("2d").getImageData(0, 0, layer.width, layer.height)));
    // Each step is two full-size RGBA copies: a large photo keeps fewer steps, so the tab stays within UNDO_BYTES.
    const stepBytes = layers.reduce((sum, layer) => sum + 4 * layer.width * layer.height, 0);
    const keep = Math.max(1, Math.min(UNDO_STEPS, Math.floor(UNDO_BYTES / stepBytes)));
    while (entry.undo.length > keep) entry.undo.shift();
    const [x, y] = paintView.toImage(e.clientX, e.clientY);
    drawing = { pan: false, x, y };
    dab(x, y);
  });
  viewport.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    if (drawing.pan) { paintView.pan(e.clientX - drawing.x, e.clientY - drawing.y); Object.assign(drawing, { x: e.clientX, y: e.clientY }); return; }
    if (state.tool === "hint") return;  // a dab per click: colour hints are spots, not strokes
    const [x, y] = paintView.toImage(e.clientX, e.clientY);
    const steps = Math.ceil(Math.hypot(x - drawing.x, y - drawing.y) / Math.max(1, size() / 4));
    for (let i = 1; i <= steps; i++) dab(drawing.x + ((x - drawing.x) * i) / steps, drawing.y + ((y - drawing.y) * i) / steps);
    Object.assign(drawing, { x, y });
  });
  const stop = () => { if (drawing && !drawing.pan) saveLayers(); drawing = null; };
  viewport.addEventListener("pointerup", stop);
  viewport.addEventListener("pointercancel", stop);

  $("#undo").onclick = () => {
    const entry = state.current;
    const last = entry && entry.undo.pop();
    if (!last) return;
    $("#mask-layer").getContext("2d").putImageData(last[0], 0, 0);
    $("#hint-layer").getContext("2d").putImageData(last[1], 0, 0);
    saveLayers();
  };
  $("#clear-paint").onclick = () => {
    for (const layer of [$("#mask-layer"), $("#hint-layer")]) layer.getContext("2d").clearRect(0, 0, layer.width, layer.height);
    saveLayers();
  };
}

function layerBlob(imageData) {
  const canvas = document.createElement("canvas");
  canvas.width = imageData.width;
  canvas.height = imageData.height;
  canvas.getContext("2d").putImageData(imageData, 0, 0);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
}

// ---- running: one batch, each job polled, results compared and downloaded ---------------------------

function status(text) { $("#status").textContent = text; }

async function run() {
  if (!state.files.length) { status("Choose at least one photo first."); $("#drop").focus(); return; }
  const button = $("#run");
  button.disabled = true;
  try {
    const form = new FormData();
    form.append("task", chain().join(","));
    form.append("options", JSON.stringify(readOptions()));
    const kinds = guidanceTaken();
    for (const entry of state.files) {
      form.append("files", entry.file, entry.name);
      if (kinds.has("mask") && painted(entry.mask)) form.append("masks", await layerBlob(entry.mask), `${entry.stem}.png`);
      if (kinds.has("hints") && painted(entry.hints)) form.append("hints", await layerBlob(entry.hints), `${entry.stem}.png`);
    }
    status("Sending…");
    const batch = await (await api("/v1/batches", { method: "POST", body: form })).json();
    status(`Sent ${batch.jobs.length} photo${batch.jobs.length === 1 ? "" : "s"}.`);
    $("#results-panel").hidden = false;
    const list = $("#jobs");
    list.replaceChildren();
    const all = $("#download-all");
    all.hidden = true;
    await Promise.all(batch.jobs.map((job, i) => follow(job, state.files[i], list)));
    all.hidden = false;
    all.onclick = async (e) => {
      e.preventDefault();
      try { save(await (await api(batch.links.archive)).blob(), `restore-${batch.id}.zip`); }
      catch (error) { status(error.message); }
    };
    status("Done.");
  } catch (error) {
    status(error.message);
  } finally {
    button.disabled = false;
  }
}

async function follow(job, entry, list) {
  const card = $("#job-template").content.firstElementChild.cloneNode(true);
  card.dataset.job = job.id;
  $(".job-name", card).textContent = job.name;
  list.append(card);
  const show = (text) => { $(".job-state", card).textContent = text; };
  const fail = (text) => { show("Failed"); const p = $(".job-error", card); p.textContent = text; p.hidden = false; card.dataset.state = "failed"; };
  if (job.status === "failed") { fail(job.error || "The server refused this file."); return; }
  let body;
  let unreachableSince = null;  // a restart or a passing 503 is waited out; the job goes on on the server
  for (;;) {
    try {
      body = await (await api(`/v1/jobs/${job.id}`)).json();
      unreachableSince = null;
    } catch (error) {
      if (!PASSING.has(error.status)) { fail(error.message); return; }
      unreachableSince ??= Date.now();
      if (Date.now() - unreachableSince > GIVE_UP_MS) { fail(`${error.message} (for ${GIVE_UP_MS / 60000} minutes; the job may still finish on the server)`); return; }
      show("Server unavailable, retrying…");
      await new Promise((r) => setTimeout(r, 4 * POLL_MS));
      continue;
    }
    $("progress", card).value = body.progress.fraction;
    if (body.status === "queued") show("Waiting for a worker…");
    else if (body.status === "running") show(`Working: ${Math.round(100 * body.progress.fraction)}%`);
    else break;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  if (body.status !== "succeeded") { fail(body.error || `The job was ${body.status}.`); return; }
  show(`Done in ${body.timings.run_seconds ?? "?"} s`);
  const blobs = [];
  for (let i = 0; i < body.results; i++) blobs.push(await (await api(`/v1/jobs/${job.id}/result?sample=${i}`)).blob());
  showResult(card, entry, job, blobs);
  card.dataset.state = "succeeded";
}

function showResult(card, entry, job, blobs) {
  const result = $(".result", card);
  result.hidden = false;
  const before = $(".before", card), after = $(".after", card);
  before.src = entry ? entry.url : "";
  const urls = blobs.map((b) => URL.createObjectURL(b));
  const view = new View($(".compare-view", card), $(".stage", card));
  zoomButtons(result, view);
  let chosen = 0;
  const pick = (i) => {
    chosen = i;
    after.src = urls[i];
    for (const [j, b] of [...$(".samples", card).children].entries()) b.setAttribute("aria-pressed", String(j === i));
  };
  after.onload = () => { if (!view.sized) { view.size(after.naturalWidth, after.naturalHeight); view.sized = true; } };
  const split = $(".split", card);
  const clip = () => { after.style.clipPath = `inset(0 0 0 ${split.value}%)`; };
  split.oninput = clip;
  clip();
  let drag = null;
  const viewport = $(".compare-view", card);
  viewport.addEventListener("pointerdown", (e) => { viewport.setPointerCapture(e.pointerId); drag = [e.clientX, e.clientY]; });
  viewport.addEventListener("pointermove", (e) => { if (drag) { view.pan(e.clientX - drag[0], e.clientY - drag[1]); drag = [e.clientX, e.clientY]; } });
  viewport.addEventListener("pointerup", () => { drag = null; });
  if (urls.length > 1) {
    const strip = $(".samples", card);
    strip.hidden = false;
    urls.forEach((url, i) => {
      const b = document.createElement("button");
      b.type = "button";
      b.setAttribute("aria-label", `Sample ${i + 1}${i === 0 ? " (the most likely)" : ""}`);
      b.append(Object.assign(document.createElement("img"), { src: url, alt: "" }));
      b.onclick = () => pick(i);
      strip.append(b);
    });
  }
  pick(0);
  const stem = job.name.replace(/\.[^.]*$/, "") || job.id;
  $(".download", card).onclick = (e) => {
    e.preventDefault();
    const blob = blobs[chosen];
    const suffix = { "image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/tiff": "tif", "image/bmp": "bmp" }[blob.type] || "png";
    save(blob, `${stem}${chosen ? `_${chosen}` : ""}.${suffix}`);
  };
}

function save(blob, name) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
}

// ---- start ------------------------------------------------------------------------------------------

async function start() {
  setUpDrop();
  setUpPainting();
  try {
    state.tasks = await (await api("/v1/tasks")).json();
  } catch (error) {
    status(error.message);
    return;
  }
  const box = $("#chain");
  box.append(stepSelect(0, state.tasks[0].name));
  $("#add-step").onclick = () => {
    if (document.querySelectorAll(".step").length < MAX_STEPS) box.append(stepSelect(1, state.tasks[0].name));
    renderOptions();
  };
  $("#remove-step").onclick = () => {
    const steps = box.querySelectorAll("label");
    if (steps.length > 1) steps[steps.length - 1].remove();
    renderOptions();
  };
  renderOptions();
  $("#run").onclick = run;
  document.body.dataset.ready = "true";
}

start();
