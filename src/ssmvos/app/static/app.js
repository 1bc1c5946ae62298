// ssmvos app: draw masks on any frame, propagate, correct, export. No framework, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const canvas = $("view");
const ctx = canvas.getContext("2d", { willReadFrequently: true });

const app = {
  sid: null,        // this tab's session (kept in the URL's #hash)
  video: null,      // {frames, width, height, names, ...}
  frame: 0,
  tool: "box",
  object: 1,
  objects: [1],
  image: null,      // the current frame's <img>
  labels: null,     // Uint8Array W*H: the user's mask of the current frame (object ids)
  result: null,     // Uint8Array W*H: the propagated result of the current frame
  drag: null,       // box being drawn {x0, y0, x1, y1}
  stroke: null,     // last brush point
  polygon: [],
  saveTimer: null,
  saving: Promise.resolve(),
  events: null,
  running: false,
};

// ---------------------------------------------------------------- DAVIS palette
function paletteColor(label) {
  let r = 0, g = 0, b = 0, c = label;
  for (let shift = 7; shift >= 0; shift--) {
    r |= (c & 1) << shift; g |= ((c >> 1) & 1) << shift; b |= ((c >> 2) & 1) << shift;
    c >>= 3;
  }
  return [r, g, b];
}
const PALETTE = Array.from({ length: 256 }, (_, i) => paletteColor(i));

// ---------------------------------------------------------------- server calls
// Every POST/PUT/DELETE names its body's type: the server refuses the types a foreign page can send.
const JSON_TYPE = { "Content-Type": "application/json" };
const BYTES_TYPE = { "Content-Type": "application/octet-stream" };
async function call(path, options = {}) {
  const response = await fetch(`/api/sessions/${app.sid}${path}`, options);
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}
const callJson = async (path, options) => (await call(path, options)).json();
const postJson = (path, body) => callJson(path, {
  method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) });

async function bytesOrNull(path) {
  const response = await call(path);
  if (response.status === 204) return null;
  return new Uint8Array(await response.arrayBuffer());
}

function say(message, error = false) {
  const status = $("status");
  status.textContent = message;
  status.classList.toggle("error", error);
}

async function guard(fn) {
  try { await fn(); } catch (e) { say(e.message, true); }
}

// ---------------------------------------------------------------- session and video
async function start() {
  const info = await (await fetch("/api/server")).json();
  $("browse").disabled = !info.root;
  const wanted = new URLSearchParams(location.hash.slice(1)).get("s");
  let session = null;
  if (wanted) {
    const response = await fetch(`/api/sessions/${wanted}`);
    if (response.ok) session = await response.json();
  }
  if (!session) {
    const response = await fetch("/api/sessions", { method: "POST", headers: JSON_TYPE, body: "{}" });
    session = await response.json();
    if (!response.ok) throw new Error(session.error);
    history.replaceState(null, "", `#s=${session.id}`);
  }
  app.sid = session.id;
  say(`Running on ${info.device} (${info.precision}).`);
  await useInfo(session);
}

async function useInfo(info) {
  app.video = info.video;
  const has = !!app.video;
  for (const id of ["forward", "backward", "both", "from-result", "clear", "add-object"]) $(id).disabled = !has;
  for (const id of ["export-zip", "export-overlay", "export-coco", "export-dataset", "export-session"]) $(id).setAttribute("aria-disabled", String(!has));
  if (!has) { drawEmpty(); return; }
  canvas.width = app.video.width;
  canvas.height = app.video.height;
  $("slider").max = app.video.frames - 1;
  app.objects = app.video.objects.length ? app.video.objects.slice() : [1];
  if (!app.objects.includes(app.object)) app.object = app.objects[0];
  renderObjects();
  if (info.job && info.job.state === "running") follow();
  await showFrame(Math.min(app.frame, app.video.frames - 1));
}

async function showFrame(index) {
  await flushSave();
  app.frame = index;
  app.polygon = [];
  $("slider").value = index;
  $("frame-label").textContent = `frame ${index + 1} / ${app.video.frames} (${app.video.names[index]})`;
  const image = new Image();
  const loaded = new Promise((resolve, reject) => { image.onload = resolve; image.onerror = reject; });
  image.src = `/api/sessions/${app.sid}/frames/${index}.jpg?v=${app.video.key}`;  // the key: no stale frames of another video
  const [labels, result] = await Promise.all([
    bytesOrNull(`/frames/${index}/annotation`), bytesOrNull(`/frames/${index}/result`), loaded]);
  if (index !== app.frame) return;  // the user moved on meanwhile
  app.image = image;
  app.labels = labels;
  app.result = result;
  draw();
}

async function refreshResult() {
  const index = app.frame;
  const result = await bytesOrNull(`/frames/${index}/result`);
  if (index === app.frame) { app.result = result; draw(); }
}

// ---------------------------------------------------------------- drawing
function drawEmpty() {
  ctx.fillStyle = "#111";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
}

function draw() {
  if (!app.image) return drawEmpty();
  ctx.drawImage(app.image, 0, 0);
  const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const data = pixels.data;
  const showResult = $("show-result").checked && app.result;
  for (let i = 0, n = canvas.width * canvas.height; i < n; i++) {
    const mine = app.labels ? app.labels[i] : 0;
    const label = mine || (showResult ? app.result[i] : 0);
    if (!label) continue;
    const [r, g, b] = PALETTE[label];
    const alpha = mine ? 0.6 : 0.45;
    const o = i * 4;
    data[o] = data[o] * (1 - alpha) + r * alpha;
    data[o + 1] = data[o + 1] * (1 - alpha) + g * alpha;
    data[o + 2] = data[o + 2] * (1 - alpha) + b * alpha;
  }
  ctx.putImageData(pixels, 0, 0);
  ctx.lineWidth = Math.max(2, canvas.width / 400);
  if (app.drag) {
    ctx.strokeStyle = "#ffeb3b";
    ctx.strokeRect(app.drag.x0, app.drag.y0, app.drag.x1 - app.drag.x0, app.drag.y1 - app.drag.y0);
  }
  if (app.polygon.length) {
    ctx.strokeStyle = `rgb(${PALETTE[app.object].join(",")})`;
    ctx.beginPath();
    app.polygon.forEach(([x, y], k) => (k ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    ctx.stroke();
  }
}

function renderObjects() {
  const list = $("objects");
  list.replaceChildren();
  for (const id of app.objects) {
    const row = document.createElement("div");
    row.className = "object" + (id === app.object ? " current" : "");
    row.dataset.object = id;
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = `rgb(${PALETTE[id].join(",")})`;
    row.append(swatch, `object ${id}`);
    row.onclick = () => { app.object = id; renderObjects(); };
    list.append(row);
  }
}

// ---------------------------------------------------------------- editing the mask
function ensureLabels() {
  if (!app.labels) app.labels = new Uint8Array(canvas.width * canvas.height);
  return app.labels;
}

function point(event) {
  const rect = canvas.getBoundingClientRect();
  return [Math.round((event.clientX - rect.left) * canvas.width / rect.width),
          Math.round((event.clientY - rect.top) * canvas.height / rect.height)];
}

function stamp(x, y, erase) {
  const labels = ensureLabels(), w = canvas.width, h = canvas.height;
  const radius = Number($("size").value) / 2;
  const r2 = radius * radius;
  for (let yy = Math.max(0, Math.floor(y - radius)); yy <= Math.min(h - 1, Math.ceil(y + radius)); yy++) {
    for (let xx = Math.max(0, Math.floor(x - radius)); xx <= Math.min(w - 1, Math.ceil(x + radius)); xx++) {
      if ((xx - x) ** 2 + (yy - y) ** 2 > r2) continue;
      const i = yy * w + xx;
      if (erase) { if (labels[i] === app.object) labels[i] = 0; } else labels[i] = app.object;
    }
  }
}

function strokeTo(x, y, erase) {
  const [px, py] = app.stroke || [x, y];
  const steps = Math.max(1, Math.ceil(Math.hypot(x - px, y - py) / 2));
  for (let k = 1; k <= steps; k++) stamp(px + (x - px) * k / steps, py + (y - py) * k / steps, erase);
  app.stroke = [x, y];
}

function floodFill(x, y) {
  const labels = ensureLabels(), w = canvas.width, h = canvas.height;
  const target = labels[y * w + x];
  if (target === app.object) return;
  const stack = [y * w + x];
  while (stack.length) {
    const i = stack.pop();
    if (labels[i] !== target) continue;
    labels[i] = app.object;
    const px = i % w;
    if (px > 0) stack.push(i - 1);
    if (px < w - 1) stack.push(i + 1);
    if (i >= w) stack.push(i - w);
    if (i < w * (h - 1)) stack.push(i + w);
  }
}

function closePolygon() {
  if (app.polygon.length < 3) { app.polygon = []; draw(); return; }
  const off = new OffscreenCanvas(canvas.width, canvas.height);
  const c = off.getContext("2d");
  c.fillStyle = "#fff";
  c.beginPath();
  app.polygon.forEach(([x, y], k) => (k ? c.lineTo(x, y) : c.moveTo(x, y)));
  c.closePath();
  c.fill();
  const alpha = c.getImageData(0, 0, canvas.width, canvas.height).data;
  const labels = ensureLabels();
  for (let i = 0; i < labels.length; i++) if (alpha[i * 4 + 3] > 127) labels[i] = app.object;
  app.polygon = [];
  changed();
}

async function boxToMask(box) {
  say("GrabCut: finding the object in the box…");
  const response = await call("/grabcut", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ frame: app.frame, box }) });
  const mask = new Uint8Array(await response.arrayBuffer());
  const labels = ensureLabels();
  let count = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i]) { labels[i] = app.object; count++; }
  say(`GrabCut: ${count} pixels for object ${app.object}; refine with the brush and eraser.`);
  changed();
}

function changed() {
  draw();
  clearTimeout(app.saveTimer);
  app.saveTimer = setTimeout(save, 300);
}

function save() {
  app.saveTimer = null;
  const index = app.frame, body = (app.labels || new Uint8Array(canvas.width * canvas.height)).slice();
  app.saving = app.saving.then(() => guard(async () => {
    const info = await callJson(`/frames/${index}/annotation`, {
      method: "PUT", headers: { "Content-Type": "application/octet-stream" }, body });
    app.video = info.video;
    $("canvas-wrap").dataset.saved = String(Number($("canvas-wrap").dataset.saved || 0) + 1);
  }));
  return app.saving;
}

async function flushSave() {
  if (app.saveTimer) { clearTimeout(app.saveTimer); await save(); }
  await app.saving;
}

canvas.addEventListener("pointerdown", (event) => guard(async () => {
  if (!app.video) return;
  canvas.setPointerCapture(event.pointerId);
  const [x, y] = point(event);
  if (app.tool === "box") app.drag = { x0: x, y0: y, x1: x, y1: y };
  else if (app.tool === "brush" || app.tool === "eraser") { app.stroke = null; strokeTo(x, y, app.tool === "eraser"); draw(); }
  else if (app.tool === "fill") { floodFill(x, y); changed(); }
  else if (app.tool === "polygon") {
    const first = app.polygon[0];
    if (first && app.polygon.length > 2 && Math.hypot(first[0] - x, first[1] - y) < 8) closePolygon();
    else { app.polygon.push([x, y]); draw(); }
  }
}));

canvas.addEventListener("pointermove", (event) => {
  if (!event.buttons || !app.video) return;
  const [x, y] = point(event);
  if (app.tool === "box" && app.drag) { app.drag.x1 = x; app.drag.y1 = y; draw(); }
  else if (app.tool === "brush" || app.tool === "eraser") { strokeTo(x, y, app.tool === "eraser"); draw(); }
});

canvas.addEventListener("pointerup", () => guard(async () => {
  if (app.tool === "box" && app.drag) {
    const { x0, y0, x1, y1 } = app.drag;
    app.drag = null;
    draw();
    await boxToMask([x0, y0, x1, y1]);
  } else if (app.tool === "brush" || app.tool === "eraser") {
    app.stroke = null;
    changed();
  }
}));

canvas.addEventListener("dblclick", () => { if (app.tool === "polygon") closePolygon(); });

// ---------------------------------------------------------------- propagation
async function propagate(direction) {
  await flushSave();
  const info = await postJson("/propagate", { direction });
  app.video = info.video;
  follow();
}

function follow() {
  if (app.events) app.events.close();
  app.running = true;
  for (const id of ["forward", "backward", "both"]) $(id).disabled = true;
  $("cancel").disabled = false;
  const events = new EventSource(`/api/sessions/${app.sid}/events`);
  app.events = events;
  events.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.total) { $("progress").max = event.total; $("progress").value = event.done || 0; }
    if (event.type === "frame") {
      say(`Propagating: ${event.done} / ${event.total} frames`);
      if (event.frame === app.frame) guard(refreshResult);
    } else if (["done", "cancelled", "error", "idle"].includes(event.type)) {
      events.close();
      app.events = null;
      app.running = false;
      for (const id of ["forward", "backward", "both"]) $(id).disabled = !app.video;
      $("cancel").disabled = true;
      document.body.dataset.job = event.type;
      if (event.type === "error") say(event.message, true);
      else if (event.type === "done") {
        const kept = event.done - event.computed;
        say(`Done: ${event.done} frames` + (kept > 0 ? ` (${event.computed} recomputed, ${kept} unchanged).` : " segmented."));
      }
      else if (event.type === "cancelled") say(`Cancelled after ${event.done} frames.`);
      guard(async () => { await useInfo(await callJson("")); });
    }
  };
  events.onerror = () => { /* the browser reconnects by itself */ };
}

// ---------------------------------------------------------------- files
async function download(path, name) {
  await flushSave();
  say(`Preparing ${name}…`);
  const blob = await (await call(path)).blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  say(`${name} saved.`);
}

async function upload(file) {
  say(`Uploading ${file.name}…`);
  const info = await callJson(`/upload?name=${encodeURIComponent(file.name)}`, { method: "POST", headers: BYTES_TYPE, body: file });
  app.frame = 0;
  await useInfo(info);
  say(`Opened ${file.name}: ${info.video.frames} frames.`);
}

async function browse(path) {
  const box = $("browser");
  const response = await fetch(`/api/browse?path=${encodeURIComponent(path)}`);
  const listing = await response.json();
  if (!response.ok) throw new Error(listing.error);
  box.hidden = false;
  box.replaceChildren();
  const up = document.createElement("div");
  up.textContent = listing.path ? "⬑ .." : "(server root)";
  up.onclick = () => guard(() => browse(listing.path.split("/").slice(0, -1).join("/")));
  box.append(up);
  for (const entry of listing.entries) {
    const row = document.createElement("div");
    row.textContent = `${entry.kind === "folder" ? "📁" : entry.kind === "video" ? "🎞" : "🖼"} ${entry.name}`
      + (entry.kind === "frames" ? ` (${entry.frames} frames)` : "");
    row.onclick = () => guard(async () => {
      if (entry.kind === "folder") return browse(entry.path);
      say(`Opening ${entry.path}…`);
      app.frame = 0;
      await useInfo(await postJson("/open", { path: entry.path }));
      box.hidden = true;
      say(`Opened ${entry.path}.`);
    });
    box.append(row);
  }
}

// ---------------------------------------------------------------- controls
document.querySelectorAll('input[name="tool"]').forEach((radio) => {
  radio.onchange = () => { app.tool = radio.value; app.polygon = []; draw(); };
});
$("slider").oninput = () => guard(() => showFrame(Number($("slider").value)));
$("show-result").onchange = draw;
$("add-object").onclick = () => {
  app.object = Math.max(...app.objects) + 1;
  app.objects.push(app.object);
  renderObjects();
};
$("from-result").onclick = () => {
  if (!app.result) return say("This frame has no result yet.", true);
  app.labels = app.result.slice();
  changed();
  say("The result is now this frame's mask: correct it, then propagate again (later frames are recomputed).");
};
$("clear").onclick = () => { app.labels = null; changed(); };
$("forward").onclick = () => guard(() => propagate("forward"));
$("backward").onclick = () => guard(() => propagate("backward"));
$("both").onclick = () => guard(() => propagate("both"));
$("cancel").onclick = () => guard(() => postJson("/cancel"));
$("demo").onclick = () => guard(async () => { app.frame = 0; await useInfo(await postJson("/demo")); });
$("browse").onclick = () => guard(() => browse(""));
$("upload").onchange = (event) => guard(async () => { if (event.target.files[0]) await upload(event.target.files[0]); });
$("import-mask").onchange = (event) => guard(async () => {
  const file = event.target.files[0];
  if (!file) return;
  await flushSave();
  await call(`/frames/${app.frame}/annotation/import`, { method: "POST", headers: BYTES_TYPE, body: file });
  await showFrame(app.frame);
});
$("session-file").onchange = (event) => guard(async () => {
  const file = event.target.files[0];
  if (!file) return;
  await useInfo(await callJson("/session", { method: "POST", headers: { "Content-Type": "application/json" },
                                             body: await file.text() }));
  say(`Loaded the masks of ${file.name}.`);
});
$("export-zip").onclick = (event) => { event.preventDefault(); guard(() => download("/export/masks.zip", "masks.zip")); };
$("export-overlay").onclick = (event) => { event.preventDefault(); guard(() => download("/export/overlay.mp4", "overlay.mp4")); };
$("export-session").onclick = (event) => { event.preventDefault(); guard(() => download("/export/session.json", "session.json")); };
$("export-coco").onclick = (event) => { event.preventDefault(); guard(() => download("/export/masks.coco.json", "masks.coco.json")); };
$("export-dataset").onclick = (event) => { event.preventDefault(); guard(() => download("/export/dataset.zip", "dataset.zip")); };

document.addEventListener("keydown", (event) => {
  if (!app.video || event.target === $("slider")) return;
  const step = event.shiftKey ? 10 : 1;
  let next = null;
  if (event.key === "ArrowRight") next = Math.min(app.video.frames - 1, app.frame + step);
  else if (event.key === "ArrowLeft") next = Math.max(0, app.frame - step);
  else if (event.key === "Home") next = 0;
  else if (event.key === "End") next = app.video.frames - 1;
  else if (event.key === "Enter" && app.tool === "polygon") closePolygon();
  else if (event.key === "Escape") { app.polygon = []; app.drag = null; draw(); }
  if (next !== null) { event.preventDefault(); guard(() => showFrame(next)); }
});

guard(start);
