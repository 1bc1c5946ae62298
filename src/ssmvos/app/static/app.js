// ssmvos app: draw masks on any frame, propagate, correct, export. No framework, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const canvas = $("view");
const timeline = $("timeline");
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
  names: {},        // object id -> name (objects panel)
  hidden: new Set(),  // objects not drawn
  clicks: null,     // the point tool's {frame, object, points: [[x, y]], labels: [1|0], box}
  undo: [],         // edits: {frame, labels, clicks} as they were before
  redo: [],
  view: { scale: 1, x: 0, y: 0 },  // zoom and pan of the canvas (CSS transform)
  pan: null,        // pointer position while panning
  space: false,     // Space held: drag pans
  live: { computed: new Set(), head: null, last: null, times: [] },  // the propagation being followed
  playing: false,
  following: false,
};
const HISTORY_BYTES = 64 << 20;  // undo snapshots kept, at most

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
// Every API call goes through request(): `json` (an object) is sent as application/json; raw
// bytes name their type (BYTES_TYPE): the server refuses the body types a foreign page can send.
const BYTES_TYPE = { "Content-Type": "application/octet-stream" };
async function request(url, options = {}) {
  const init = { ...options };
  if (init.json !== undefined) {
    init.method = init.method || "POST";
    init.headers = { ...(init.headers || {}), "Content-Type": "application/json" };
    init.body = JSON.stringify(init.json);
    delete init.json;
  }
  const response = await fetch(url, init);
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}
const call = (path, options) => request(`/api/sessions/${app.sid}${path}`, options);
const callJson = async (path, options) => (await call(path, options)).json();
const postJson = (path, body) => callJson(path, { json: body || {} });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, v));

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
  const info = await (await request("/api/server")).json();
  $("browse").disabled = !info.root;
  const wanted = new URLSearchParams(location.hash.slice(1)).get("s");
  let session = null;
  if (wanted) {
    try { session = await (await request(`/api/sessions/${wanted}`)).json(); } catch (e) { session = null; }
  }
  if (!session) {
    session = await (await request("/api/sessions", { json: {} })).json();
    history.replaceState(null, "", `#s=${session.id}`);
  }
  app.sid = session.id;
  say(`Running on ${info.device} (${info.precision}).`);
  await useInfo(session);
}

// Open another video (fetchInfo: the request that opens it). The mask still waiting to be
// saved goes to the video it was drawn on first; strokes made while the request ran are
// dropped with that video (the server would refuse them: every save names its video).
async function openVideo(fetchInfo) {
  await flushSave();
  const info = await fetchInfo();
  clearTimeout(app.saveTimer);
  app.saveTimer = null;
  await app.saving;
  opened();
  await useInfo(info);
  return info;
}

// A newly opened video: no history, no zoom, frame 0.
function opened() {
  app.frame = 0;
  app.undo = []; app.redo = []; app.clicks = null; app.hidden.clear();
  app.live = { computed: new Set(), head: null, last: null, times: [] };
  resetView();
  updateHistoryButtons();
}

// The session's state without reloading the frame: objects, names, timeline marks.
function applyInfo(info) {
  app.video = info.video;
  if (!app.video) return;
  app.names = app.video.object_names || {};
  const ids = new Set(app.video.objects);
  ids.add(app.object);  // the selected object, even before it has a mask
  app.objects = [...ids].sort((a, b) => a - b);
  renderObjects();
  drawTimeline();
}

async function useInfo(info) {
  applyInfo(info);
  const has = !!app.video;
  for (const id of ["forward", "backward", "both", "from-result", "clear", "add-object", "play"]) $(id).disabled = !has;
  for (const id of ["export-zip", "export-overlay", "export-coco", "export-dataset", "export-session"]) $(id).setAttribute("aria-disabled", String(!has));
  if (!has) { drawEmpty(); return; }
  if (canvas.width !== app.video.width || canvas.height !== app.video.height) {
    canvas.width = app.video.width;
    canvas.height = app.video.height;
  }
  $("slider").max = app.video.frames - 1;
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
  canvas.dataset.frame = String(index);  // what the canvas shows (the label changes at once)
  draw();
  drawTimeline();
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
    let mine = app.labels ? app.labels[i] : 0;
    if (mine && app.hidden.has(mine)) mine = 0;
    const label = mine || (showResult ? app.result[i] : 0);
    if (!label || app.hidden.has(label)) continue;
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
  const clicks = app.clicks;
  if (clicks && clicks.frame === app.frame && !app.hidden.has(clicks.object)) {
    const r = Math.max(4, canvas.width / 150);
    clicks.points.forEach(([x, y], k) => {
      ctx.beginPath();
      ctx.arc(x + 0.5, y + 0.5, r, 0, 2 * Math.PI);
      ctx.fillStyle = clicks.labels[k] ? "#00e676" : "#ff1744";
      ctx.fill();
      ctx.strokeStyle = "#fff";
      ctx.stroke();
    });
  }
}

const objectName = (id) => app.names[id] || `object ${id}`;

function renderObjects() {
  const list = $("objects");
  const editing = document.activeElement;
  if (editing && editing.classList.contains("name") && list.contains(editing)) {  // not under the user's typing
    editing.addEventListener("blur", () => setTimeout(renderObjects), { once: true });
    return;
  }
  list.replaceChildren();
  for (const id of app.objects) {
    const row = document.createElement("div");
    row.className = "object" + (id === app.object ? " current" : "") + (app.hidden.has(id) ? " hidden" : "");
    row.dataset.object = id;
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = `rgb(${PALETTE[id].join(",")})`;
    const name = document.createElement("input");
    name.className = "name";
    name.value = objectName(id);
    name.title = "Rename";
    name.onchange = () => guard(async () => applyInfo(await callJson(`/objects/${id}`, { method: "PUT", json: { name: name.value } })));
    name.onkeydown = (event) => { if (event.key === "Enter") name.blur(); };
    const eye = document.createElement("button");
    eye.className = "toggle";
    eye.textContent = app.hidden.has(id) ? "show" : "hide";
    eye.title = "Hide or show this object's masks";
    eye.onclick = (event) => { event.stopPropagation(); toggleHidden(id); };
    const del = document.createElement("button");
    del.className = "delete";
    del.textContent = "✕";
    del.title = "Delete this object from every frame and from the results";
    del.onclick = (event) => { event.stopPropagation(); guard(() => deleteObject(id)); };
    row.append(swatch, name, eye, del);
    row.onclick = () => selectObject(id);
    list.append(row);
  }
}

function selectObject(id) {
  app.object = id;
  renderObjects();
}

function toggleHidden(id) {
  if (app.hidden.has(id)) app.hidden.delete(id); else app.hidden.add(id);
  renderObjects();
  draw();
}

async function addObject() {
  const id = Math.max(0, ...app.objects) + 1;
  if (id > 255) throw new Error("a label map holds at most 255 objects");
  app.object = id;
  applyInfo(await callJson(`/objects/${id}`, { method: "PUT", json: { name: `object ${id}` } }));
}

async function deleteObject(id) {
  if (!confirm(`Delete ${objectName(id)} from every frame and from the results?`)) return;
  await flushSave();
  const info = await callJson(`/objects/${id}`, { method: "DELETE" });
  const drop = (labels) => { if (labels) for (let i = 0; i < labels.length; i++) if (labels[i] === id) labels[i] = 0; };
  for (const entry of [...app.undo, ...app.redo]) drop(entry.labels);  // undo never brings it back
  if (app.clicks && app.clicks.object === id) app.clicks = null;
  app.hidden.delete(id);
  if (app.object === id) app.object = info.video.objects.find((o) => o !== id) || 1;
  await useInfo(info);
  say(`Deleted ${objectName(id)}.`);
}

// ---------------------------------------------------------------- undo / redo
function snapshot() {
  return { frame: app.frame, labels: app.labels ? app.labels.slice() : null,
           clicks: app.clicks ? structuredClone(app.clicks) : null };
}

function remember() {  // before every mask edit
  app.undo.push(snapshot());
  app.redo = [];
  const per = canvas.width * canvas.height;
  while (app.undo.length > 1 && app.undo.length * per > HISTORY_BYTES) app.undo.shift();
  updateHistoryButtons();
}

function updateHistoryButtons() {
  $("undo").disabled = !app.undo.length;
  $("redo").disabled = !app.redo.length;
}

async function stepHistory(from, to, what) {
  if (!from.length || !app.video) return;
  stopPlaying();
  await flushSave();
  const entry = from.pop();
  if (entry.frame !== app.frame) await showFrame(entry.frame);
  to.push(snapshot());
  app.labels = entry.labels;
  app.clicks = entry.clicks;
  updateHistoryButtons();
  draw();
  await save();  // the server holds the restored mask
  say(`${what} on frame ${entry.frame + 1}.`);
}
const undo = () => stepHistory(app.undo, app.redo, "Undone");
const redo = () => stepHistory(app.redo, app.undo, "Redone");

// ---------------------------------------------------------------- editing the mask
function ensureLabels() {
  if (!app.labels) app.labels = new Uint8Array(canvas.width * canvas.height);
  return app.labels;
}

// The one place that maps a pointer position to a frame pixel [x, y]: the canvas's on-screen
// box already includes the CSS scaling, the zoom and the pan.
function point(event) {
  const rect = canvas.getBoundingClientRect();
  return [clamp(Math.floor((event.clientX - rect.left) * canvas.width / rect.width), 0, canvas.width - 1),
          clamp(Math.floor((event.clientY - rect.top) * canvas.height / rect.height), 0, canvas.height - 1)];
}

function stamp(x, y, erase) {
  const labels = ensureLabels(), w = canvas.width, h = canvas.height;
  const radius = Number($("size").value) / 2;
  const r2 = Math.max(radius * radius, 0.5);
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
  const radius = Number($("size").value) / 2;  // stamps at most half a radius apart: no gaps a fill leaks through
  const steps = Math.max(1, Math.ceil(Math.hypot(x - px, y - py) / Math.max(0.5, radius / 2)));
  for (let k = 1; k <= steps; k++) stamp(px + (x - px) * k / steps, py + (y - py) * k / steps, erase);
  app.stroke = [x, y];
}

// Fill the 4-connected region around (x, y) of what is shown there (the mask, else the result
// shown): inside an outline fills the inside, outside it the outside only, never across it.
function floodFill(x, y) {
  const labels = ensureLabels(), w = canvas.width, h = canvas.height;
  const shown = $("show-result").checked && app.result ? app.result : null;
  const seen = (i) => labels[i] || (shown ? shown[i] : 0);
  const target = seen(y * w + x);
  if (target === app.object && labels[y * w + x] === app.object) return false;
  const done = new Uint8Array(w * h);
  const stack = [y * w + x];
  while (stack.length) {
    const i = stack.pop();
    if (done[i] || seen(i) !== target) continue;
    done[i] = 1;
    labels[i] = app.object;
    const px = i % w;
    if (px > 0) stack.push(i - 1);
    if (px < w - 1) stack.push(i + 1);
    if (i >= w) stack.push(i - w);
    if (i < w * (h - 1)) stack.push(i + w);
  }
  return true;
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
  remember();
  const labels = ensureLabels();
  for (let i = 0; i < labels.length; i++) if (alpha[i * 4 + 3] > 127) labels[i] = app.object;
  app.polygon = [];
  changed();
}

async function boxToMask(box) {
  say("GrabCut: finding the object in the box…");
  const frame = app.frame;
  const response = await call("/grabcut", { json: { frame, box } });
  const mask = new Uint8Array(await response.arrayBuffer());
  if (frame !== app.frame) return;
  remember();
  app.clicks = { frame, object: app.object, points: [], labels: [], box };
  const labels = ensureLabels();
  let count = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i]) { labels[i] = app.object; count++; }
  say(`GrabCut: ${count} pixels for ${objectName(app.object)}; refine with point clicks, the brush and eraser.`);
  changed();
}

// A point click (positive: object, negative: background) refines the object's mask on this
// frame, with the clicks before it and the box drawn last: the predictor's add_new_points_or_box.
async function pointClick(x, y, positive) {
  await flushSave();
  const frame = app.frame, object = app.object;
  const old = app.clicks && app.clicks.frame === frame && app.clicks.object === object
    ? app.clicks : { frame, object, points: [], labels: [], box: null };
  const clicks = { frame, object, points: [...old.points, [x, y]], labels: [...old.labels, positive ? 1 : 0], box: old.box };
  say(`Clicks: GrabCut refines ${objectName(object)}…`);
  const response = await call(`/points?v=${app.video.key}`, { json: clicks });
  const labels = new Uint8Array(await response.arrayBuffer());
  if (frame !== app.frame) return;
  remember();
  app.clicks = clicks;
  app.labels = labels;
  markSaved();
  draw();
  const count = labels.reduce((n, v) => n + (v === object), 0);
  say(`${clicks.points.length} click(s): ${count} pixels for ${objectName(object)}.`);
}

function markSaved() {
  const wrap = $("canvas-wrap");
  wrap.dataset.saved = String(Number(wrap.dataset.saved || 0) + 1);
}

function changed() {
  draw();
  updateHistoryButtons();
  clearTimeout(app.saveTimer);
  app.saveTimer = setTimeout(save, 300);
}

// The frame's mask to the server, naming the video it was drawn on (?v=): once another
// video is open the server refuses it (409) rather than saving it onto that one.
function save() {
  app.saveTimer = null;
  const index = app.frame, key = app.video.key;
  const body = (app.labels || new Uint8Array(canvas.width * canvas.height)).slice();
  app.saving = app.saving.then(() => guard(async () => {
    const info = await callJson(`/frames/${index}/annotation?v=${key}`, {
      method: "PUT", headers: { "Content-Type": "application/octet-stream" }, body });
    if (!app.video) return;
    applyInfo(info);
    markSaved();
  }));
  return app.saving;
}

async function flushSave() {
  if (app.saveTimer) { clearTimeout(app.saveTimer); await save(); }
  await app.saving;
}

canvas.addEventListener("pointerdown", (event) => guard(async () => {
  if (!app.video) return;
  stopPlaying();
  canvas.setPointerCapture(event.pointerId);
  if (event.button === 1 || app.space) {  // middle button or Space: pan
    event.preventDefault();
    app.pan = [event.clientX, event.clientY];
    canvas.classList.add("panning");
    return;
  }
  const [x, y] = point(event);
  if (app.tool === "points") {
    if (event.button === 0 || event.button === 2) {
      await pointClick(x, y, event.button === 0 && !event.shiftKey && !$("negative").checked);
    }
    return;
  }
  if (event.button !== 0) return;
  if (app.tool === "box") app.drag = { x0: x, y0: y, x1: x, y1: y };
  else if (app.tool === "brush" || app.tool === "eraser") {
    remember();
    app.stroke = null;
    strokeTo(x, y, app.tool === "eraser");
    draw();
  } else if (app.tool === "fill") {
    const before = snapshot();
    if (floodFill(x, y)) { app.undo.push(before); app.redo = []; changed(); }
  } else if (app.tool === "polygon") {
    const first = app.polygon[0];
    if (first && app.polygon.length > 2 && Math.hypot(first[0] - x, first[1] - y) < 8) closePolygon();
    else { app.polygon.push([x, y]); draw(); }
  }
}));

canvas.addEventListener("pointermove", (event) => {
  if (!event.buttons || !app.video) return;
  if (app.pan) {
    app.view.x += event.clientX - app.pan[0];
    app.view.y += event.clientY - app.pan[1];
    app.pan = [event.clientX, event.clientY];
    applyView();
    return;
  }
  const [x, y] = point(event);
  if (app.tool === "box" && app.drag) { app.drag.x1 = x; app.drag.y1 = y; draw(); }
  else if ((app.tool === "brush" || app.tool === "eraser") && app.stroke) { strokeTo(x, y, app.tool === "eraser"); draw(); }
});

canvas.addEventListener("pointerup", () => guard(async () => {
  if (app.pan) { app.pan = null; canvas.classList.remove("panning"); return; }
  if (app.tool === "box" && app.drag) {
    const { x0, y0, x1, y1 } = app.drag;
    app.drag = null;
    draw();
    await boxToMask([x0, y0, x1, y1]);
  } else if ((app.tool === "brush" || app.tool === "eraser") && app.stroke) {
    app.stroke = null;
    changed();
  }
}));

canvas.addEventListener("dblclick", () => { if (app.tool === "polygon") closePolygon(); });
canvas.addEventListener("contextmenu", (event) => event.preventDefault());
canvas.addEventListener("auxclick", (event) => event.preventDefault());

// ---------------------------------------------------------------- zoom and pan
function applyView() {
  const v = app.view;
  canvas.style.transform = v.scale === 1 && !v.x && !v.y ? "" : `translate(${v.x}px, ${v.y}px) scale(${v.scale})`;
  canvas.classList.toggle("zoomed", v.scale >= 2);
  $("zoom-label").textContent = `${Math.round(v.scale * 100)}%`;
}

function resetView() {
  app.view = { scale: 1, x: 0, y: 0 };
  applyView();
}

// zoom by `factor` keeping the frame point under (clientX, clientY) where it is
function zoomAt(clientX, clientY, factor) {
  const v = app.view, rect = canvas.getBoundingClientRect();
  const scale = clamp(v.scale * factor, 1, 32);
  const u = (clientX - rect.left) / v.scale, w = (clientY - rect.top) / v.scale;  // unzoomed offsets
  v.x += u * (v.scale - scale);
  v.y += w * (v.scale - scale);
  v.scale = scale;
  if (scale === 1) { v.x = 0; v.y = 0; }
  applyView();
}

$("canvas-wrap").addEventListener("wheel", (event) => {
  if (!app.video) return;
  event.preventDefault();
  zoomAt(event.clientX, event.clientY, Math.exp(-clamp(event.deltaY, -300, 300) * 0.002));
}, { passive: false });

// ---------------------------------------------------------------- timeline and playback
function drawTimeline() {
  const c = timeline.getContext("2d");
  const width = Math.max(1, timeline.clientWidth);
  if (timeline.width !== width) timeline.width = width;
  const h = timeline.height;
  c.fillStyle = "#37474f";
  c.fillRect(0, 0, width, h);
  if (!app.video) return;
  const n = app.video.frames, fw = width / n, cell = Math.max(1, fw);
  const computed = new Set([...app.video.results, ...app.live.computed]);
  c.fillStyle = "#42a5f5";
  for (const f of computed) c.fillRect(f * fw, 9, cell, h - 18);
  c.fillStyle = "#ffd54f";
  for (const f of app.video.annotated) c.fillRect(f * fw, 0, Math.max(2, fw), h);
  if (app.running && app.live.head !== null) {
    c.fillStyle = "#ff7043";
    c.fillRect(app.live.head * fw, 3, Math.max(3, fw), h - 6);
  }
  c.strokeStyle = "#fff";
  c.lineWidth = 2;
  c.strokeRect(app.frame * fw + 1, 1, Math.max(2, fw - 2), h - 2);
  timeline.dataset.given = app.video.annotated.join(",");
  timeline.dataset.computed = String(computed.size);
  timeline.dataset.head = app.running && app.live.head !== null ? String(app.live.head) : "";
}

function seekTimeline(event) {
  if (!app.video) return;
  const rect = timeline.getBoundingClientRect();
  const frame = clamp(Math.floor((event.clientX - rect.left) / rect.width * app.video.frames), 0, app.video.frames - 1);
  if (frame !== app.frame) { stopPlaying(); guard(() => showFrame(frame)); }
}
timeline.addEventListener("pointerdown", (event) => { timeline.setPointerCapture(event.pointerId); seekTimeline(event); });
timeline.addEventListener("pointermove", (event) => { if (event.buttons) seekTimeline(event); });
window.addEventListener("resize", () => drawTimeline());

function stopPlaying() {
  app.playing = false;
  $("play").textContent = "▶ Play";
}

async function play() {
  if (app.playing) return stopPlaying();
  if (!app.video) return;
  app.playing = true;
  $("play").textContent = "❚❚ Pause";
  const period = 1000 / Math.min(app.video.fps || 12, 15);
  if (app.frame >= app.video.frames - 1) await showFrame(0);
  while (app.playing && app.frame < app.video.frames - 1) {
    const started = performance.now();
    await showFrame(app.frame + 1);
    await sleep(Math.max(0, period - (performance.now() - started)));
  }
  stopPlaying();
}

// ---------------------------------------------------------------- propagation
async function propagate(direction) {
  await flushSave();
  stopPlaying();
  const info = await postJson("/propagate", { direction });
  app.video = info.video;
  follow();
}

const seconds = (s) => (s >= 90 ? `${Math.round(s / 60)} min` : `${Math.max(1, Math.round(s))} s`);

// a frame arrived: mark it, estimate the time left from the recent rate, show it if in view
function liveFrame(event) {
  const live = app.live;
  const step = live.last === null ? 1 : Math.sign(event.frame - live.last) || 1;
  live.computed.add(event.frame);
  live.last = event.frame;
  live.head = event.done < event.total ? clamp(event.frame + step, 0, app.video.frames - 1) : null;
  live.times.push(performance.now());
  if (live.times.length > 12) live.times.shift();
  let eta = "";
  if (live.times.length > 2) {
    const rate = (live.times.length - 1) / ((live.times[live.times.length - 1] - live.times[0]) / 1000);
    eta = `about ${seconds((event.total - event.done) / rate)} left`;
  }
  $("eta").textContent = eta;
  say(`Propagating: ${event.done} / ${event.total} frames` + (eta ? `, ${eta}` : ""));
  if ($("follow").checked && !app.following && !app.playing) {
    app.following = true;
    guard(() => showFrame(event.frame)).finally(() => { app.following = false; });
  } else if (event.frame === app.frame) guard(refreshResult);
  drawTimeline();
}

function follow() {
  if (app.events) app.events.close();
  app.running = true;
  app.live = { computed: new Set(), head: null, last: null, times: [] };
  for (const id of ["forward", "backward", "both"]) $(id).disabled = true;
  $("cancel").disabled = false;
  const events = new EventSource(`/api/sessions/${app.sid}/events`);
  app.events = events;
  events.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.total) { $("progress").max = event.total; $("progress").value = event.done || 0; }
    if (event.type === "frame") liveFrame(event);
    else if (["done", "cancelled", "error", "idle"].includes(event.type)) {
      events.close();
      app.events = null;
      app.running = false;
      $("eta").textContent = "";
      for (const id of ["forward", "backward", "both"]) $(id).disabled = !app.video;
      $("cancel").disabled = true;
      if (event.type === "error") say(event.message, true);
      else if (event.type === "done") {
        const kept = event.done - event.computed;
        say(`Done: ${event.done} frames` + (kept > 0 ? ` (${event.computed} recomputed, ${kept} unchanged).` : " segmented."));
      }
      else if (event.type === "cancelled") say(`Cancelled after ${event.done} frames.`);
      guard(async () => {
        await useInfo(await callJson(""));
        app.live.computed.clear();
        drawTimeline();
      }).finally(() => { document.body.dataset.job = event.type; });
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
  const info = await openVideo(() => callJson(`/upload?name=${encodeURIComponent(file.name)}`,
    { method: "POST", headers: BYTES_TYPE, body: file }));
  say(`Opened ${file.name}: ${info.video.frames} frames.`);
}

async function browse(path) {
  const box = $("browser");
  const listing = await (await request(`/api/browse?path=${encodeURIComponent(path)}`)).json();
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
      await openVideo(() => postJson("/open", { path: entry.path }));
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
$("slider").oninput = () => { stopPlaying(); guard(() => showFrame(Number($("slider").value))); };
$("show-result").onchange = draw;
$("add-object").onclick = () => guard(addObject);
$("from-result").onclick = () => {
  if (!app.result) return say("This frame has no result yet.", true);
  remember();
  app.labels = app.result.slice();
  changed();
  say("The result is now this frame's mask: correct it, then propagate again (later frames are recomputed).");
};
$("clear").onclick = () => { if (!app.labels) return; remember(); app.labels = null; app.clicks = null; changed(); };
$("undo").onclick = () => guard(undo);
$("redo").onclick = () => guard(redo);
$("zoom-reset").onclick = resetView;
$("play").onclick = () => guard(play);
$("forward").onclick = () => guard(() => propagate("forward"));
$("backward").onclick = () => guard(() => propagate("backward"));
$("both").onclick = () => guard(() => propagate("both"));
$("cancel").onclick = () => guard(() => postJson("/cancel"));
$("demo").onclick = () => guard(() => openVideo(() => postJson("/demo")));
$("browse").onclick = () => guard(() => browse(""));
$("upload").onchange = (event) => guard(async () => { if (event.target.files[0]) await upload(event.target.files[0]); });
$("import-mask").onchange = (event) => guard(async () => {
  const file = event.target.files[0];
  if (!file) return;
  await flushSave();
  const before = snapshot();
  await call(`/frames/${app.frame}/annotation/import?v=${app.video.key}`, { method: "POST", headers: BYTES_TYPE, body: file });
  app.undo.push(before);
  app.redo = [];
  updateHistoryButtons();
  await useInfo(await callJson(""));
});
$("session-file").onchange = (event) => guard(async () => {
  const file = event.target.files[0];
  if (!file) return;
  await useInfo(await callJson("/session", { method: "POST", headers: { "Content-Type": "application/json" },
                                             body: await file.text() }));
  app.undo = []; app.redo = []; updateHistoryButtons();
  say(`Loaded the masks of ${file.name}.`);
});
$("export-zip").onclick = (event) => { event.preventDefault(); guard(() => download("/export/masks.zip", "masks.zip")); };
$("export-overlay").onclick = (event) => { event.preventDefault(); guard(() => download("/export/overlay.mp4", "overlay.mp4")); };
$("export-session").onclick = (event) => { event.preventDefault(); guard(() => download("/export/session.json", "session.json")); };
$("export-coco").onclick = (event) => { event.preventDefault(); guard(() => download("/export/masks.coco.json", "masks.coco.json")); };
$("export-dataset").onclick = (event) => { event.preventDefault(); guard(() => download("/export/dataset.zip", "dataset.zip")); };

const typing = (target) => target.tagName === "INPUT" && target.type === "text";

document.addEventListener("keydown", (event) => {
  if (!app.video || typing(event.target)) return;
  const key = event.key.toLowerCase();
  if ((event.ctrlKey || event.metaKey) && (key === "z" || key === "y")) {
    event.preventDefault();
    guard(key === "y" || event.shiftKey ? redo : undo);
    return;
  }
  if (event.key === " ") { event.preventDefault(); app.space = true; canvas.classList.add("panning"); return; }
  if (event.ctrlKey || event.metaKey || event.altKey || event.target === $("slider")) return;
  const step = event.shiftKey ? 10 : 1;
  let next = null;
  if (event.key === "ArrowRight") next = Math.min(app.video.frames - 1, app.frame + step);
  else if (event.key === "ArrowLeft") next = Math.max(0, app.frame - step);
  else if (event.key === "Home") next = 0;
  else if (event.key === "End") next = app.video.frames - 1;
  else if (event.key === "Enter" && app.tool === "polygon") closePolygon();
  else if (event.key === "Escape") { app.polygon = []; app.drag = null; draw(); }
  else if (/^[1-9]$/.test(event.key) && app.objects[Number(event.key) - 1]) selectObject(app.objects[Number(event.key) - 1]);
  else if (key === "p") guard(play);
  else if (event.key === "0") resetView();
  if (next !== null) { event.preventDefault(); stopPlaying(); guard(() => showFrame(next)); }
});
document.addEventListener("keyup", (event) => {
  if (event.key === " " && !typing(event.target)) {
    event.preventDefault();
    app.space = false;
    if (!app.pan) canvas.classList.remove("panning");
  }
});

guard(start);
