"use strict";
// The page: choose or upload a video, follow its analysis, draw the heatmap and the objects
// over the video, and turn clicks and drags into queries for the StemPlayer (audio.js).

const $ = (selector) => document.querySelector(selector);
const video = $("#video"), overlay = $("#overlay"), stage = $("#stage");
const player = new StemPlayer(video);
const state = { videos: [], limits: {}, current: null, info: null, heat: null, selection: null, drag: null,
                mode: "spot", showHeat: true, poll: null, ownSeek: false };

// --- geometry: the displayed <video> (object-fit: contain) and the original frame ----------------
/** The rectangle (CSS pixels, relative to the stage) where the picture is drawn, bars excluded. */
function contentRect() {
  const width = stage.clientWidth, height = stage.clientHeight;
  const [fw, fh] = video.videoWidth ? [video.videoWidth, video.videoHeight] : state.info ? state.info.frame : [16, 9];
  const scale = Math.min(width / fw, height / fh);
  return { x: (width - fw * scale) / 2, y: (height - fh * scale) / 2, w: fw * scale, h: fh * scale };
}

/** Stage CSS pixels to pixels of the original frame; null outside the picture (on the bars). */
function toFrame(px, py) {
  const r = contentRect(), [W, H] = state.info.frame;
  const u = (px - r.x) / r.w, v = (py - r.y) / r.h;
  if (u < 0 || v < 0 || u >= 1 || v >= 1) return null;
  return [u * W, v * H];
}

function fromFrame(x, y) {
  const r = contentRect(), [W, H] = state.info.frame;
  return [r.x + (x / W) * r.w, r.y + (y / H) * r.h];
}

// --- messages, progress, list ----------------------------------------------------------------
function say(text, kind = "error") {
  const box = $("#message");
  box.textContent = text;
  box.className = kind;
  box.hidden = !text;
  if (text && kind === "error") console.warn("avsep:", text);
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const answer = await response.json().catch(() => ({ error: `the server answered ${response.status}` }));
  if (!response.ok) throw new Error(answer.error || `the server answered ${response.status}`);
  return answer;
}

async function loadList() {
  const answer = await api("/api/videos");
  Object.assign(state, { videos: answer.videos, limits: answer.limits });
  const list = $("#videos");
  list.replaceChildren(...answer.videos.map((v) => {
    const item = document.createElement("li"), button = document.createElement("button");
    button.type = "button";
    button.textContent = v.name;
    button.dataset.id = v.id;
    if (v.origin === "upload") button.insertAdjacentHTML("beforeend", '<span class="origin">uploaded</span>');
    button.setAttribute("aria-current", String(v.id === state.current));
    button.addEventListener("click", () => openVideo(v.id));
    item.append(button);
    return item;
  }));
  $("#no-videos").hidden = answer.videos.length > 0;
  const l = answer.limits;
  $("#limits").textContent = `Uploads up to ${l.max_upload_mb} MB, videos up to ${l.max_seconds || "any number of"} s. ` +
    `One analysis runs at a time; up to ${l.max_queue} wait.`;
}

function showProgress(status) {
  $("#progress").hidden = !status;
  if (!status) return;
  $("#progress-label").textContent = status.stage + (status.fraction ? ` (${Math.round(status.fraction * 100)}%)` : "");
  $("#progress-bar").value = status.fraction || 0;
}

// --- opening a video -------------------------------------------------------------------------
async function openVideo(id) {
  player.stop();
  clearInterval(state.poll);
  Object.assign(state, { current: id, info: null, heat: null, selection: null });
  stage.dataset.ready = "0";
  setEnabled(false);
  say("");
  document.querySelectorAll("#videos button").forEach((b) => b.setAttribute("aria-current", String(b.dataset.id === id)));
  $("#placeholder").textContent = "Analysing…";
  $("#placeholder").hidden = false;
  try {
    const status = await api(`/api/analyze?video=${id}`, { method: "POST" });
    video.src = `/media/${id}`;
    followAnalysis(id, status);
  } catch (err) {
    $("#placeholder").textContent = "Choose another video.";
    say(err.message);
  }
}

function followAnalysis(id, status) {
  showProgress(status);
  state.poll = setInterval(async () => {
    if (state.current !== id) return clearInterval(state.poll);
    try {
      status = await api(`/api/status?video=${id}`);
    } catch (err) { return; }   // a missed poll: try again at the next one
    if (status.state === "none") return openVideo(id);   // dropped from memory: analyse again
    showProgress(status);
    if (status.state === "error") {
      clearInterval(state.poll);
      showProgress(null);
      say(status.error);
    } else if (status.state === "done") {
      clearInterval(state.poll);
      showProgress(null);
      ready(id);
    }
  }, 200);
}

async function ready(id) {
  const info = await api(`/api/analysis?video=${id}`);
  if (state.current !== id) return;
  const raw = Uint8Array.from(atob(info.heat.data), (c) => c.charCodeAt(0));
  Object.assign(state, { info, heat: { ...info.heat, raw, images: new Map() } });
  if (video.error || !video.currentSrc) video.src = info.media;   // a browser copy was written meanwhile
  $("#placeholder").hidden = true;
  $("#objects-note").textContent = info.objects.length
    ? `${info.objects.length} object(s) detected: click a box to hear that object.` : info.objects_note;
  $("#seek").max = info.duration;
  stage.dataset.ready = "1";
  setEnabled(true);
  showTime();
  describe();
}

function setEnabled(on) {
  $("#play").disabled = $("#seek").disabled = !on;
  document.querySelectorAll("#downloads button").forEach((b) => {
    b.disabled = !on || (b.dataset.mode !== "original" && !state.selection);
  });
}

// --- playing ---------------------------------------------------------------------------------
function query() {
  const mode = state.selection ? state.mode : "original";
  return new URLSearchParams({ video: state.current, mode, region: state.selection ? state.selection.region : "" });
}

/** Play the current query from the video's position; clickedAt: when the user acted (a click,
 *  the play button, a seek or a mode change: `cause`). */
function playFrom(cause, clickedAt = performance.now()) {
  if (!state.info) return;
  player.wake();
  if (video.ended || video.currentTime >= state.info.duration - 0.05) {
    state.ownSeek = true;   // back to the start: this seek must not restart the sound a second time
    video.currentTime = 0;
  }
  if (video.paused) video.play().catch((err) => say(`cannot play the video: ${err.message}`));
  player.play(query(), state.info.rate, Math.round(state.info.duration * state.info.rate), clickedAt, cause);
}

player.onError = (err) => say(err.message);
player.onFirstAudio = (m) => {
  describe(`first sound ${m.clickToAudioMs.toFixed(0)} ms after the ${m.cause === "click" ? "click" : m.cause}`);
};

video.addEventListener("pause", () => { player.stop(); $("#play").textContent = "Play"; });
video.addEventListener("play", () => { $("#play").textContent = "Pause"; });
video.addEventListener("seeking", () => { if (!state.ownSeek) player.stop(); });
video.addEventListener("seeked", () => {
  if (state.ownSeek) state.ownSeek = false;
  else if (!video.paused) playFrom("seek");
});
function showTime() {
  $("#time").textContent = `${video.currentTime.toFixed(2)} / ${(state.info ? state.info.duration : 0).toFixed(2)} s`;
  if (document.activeElement !== $("#seek")) $("#seek").value = video.currentTime;
}
video.addEventListener("timeupdate", showTime);
$("#play").addEventListener("click", () => (video.paused ? playFrom("play") : video.pause()));
$("#seek").addEventListener("input", (e) => { video.currentTime = Number(e.target.value); });
document.querySelectorAll('input[name="mode"]').forEach((radio) => radio.addEventListener("change", () => {
  state.mode = radio.value;
  describe();
  if (!video.paused) playFrom("mode");
}));
$("#heatmap").addEventListener("change", (e) => { state.showHeat = e.target.checked; });
document.querySelectorAll("#downloads button").forEach((button) => button.addEventListener("click", () => {
  const params = query();
  params.set("mode", button.dataset.mode);
  const link = document.createElement("a");
  link.href = "/api/stem.wav?" + params;
  link.download = "";
  link.click();
}));

// --- choosing a spot, a box or an object --------------------------------------------------------
function localPoint(event) {
  const r = overlay.getBoundingClientRect();
  return [event.clientX - r.left, event.clientY - r.top];
}

overlay.addEventListener("pointerdown", (event) => {
  if (!state.info) return;
  const [px, py] = localPoint(event);
  if (!toFrame(px, py)) return say("Click on the picture itself, not on the bars around it.", "info");
  overlay.setPointerCapture(event.pointerId);
  state.drag = { start: [px, py], end: [px, py] };
});
overlay.addEventListener("pointermove", (event) => { if (state.drag) state.drag.end = localPoint(event); });
overlay.addEventListener("pointerup", (event) => {
  if (!state.drag) return;
  const clickedAt = performance.now();
  const { start } = state.drag, end = localPoint(event);
  state.drag = null;
  const r = contentRect();
  const clamp = ([x, y]) => [Math.min(Math.max(x, r.x), r.x + r.w - 0.01), Math.min(Math.max(y, r.y), r.y + r.h - 0.01)];
  if (Math.hypot(end[0] - start[0], end[1] - start[1]) > 6) {
    const [a, b] = [toFrame(...clamp(start)), toFrame(...clamp(end))];
    const box = [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[0], b[0]), Math.max(a[1], b[1])].map(Math.round);
    if (box[2] - box[0] < 1 || box[3] - box[1] < 1) return;
    select({ kind: "box", box, region: `box:${box.join(",")}` });
  } else {
    const [x, y] = toFrame(...clamp(start)).map((v) => Math.round(v * 10) / 10);
    const hit = objectAt(x, y, video.currentTime);
    select(hit ? { kind: "track", object: hit, region: `track:${hit.id}` } : { kind: "point", point: [x, y], region: `point:${x},${y}` });
  }
  say("");
  playFrom("click", clickedAt);
});

function select(selection) {
  state.selection = selection;
  setEnabled(true);
  describe();
}

function describe(extra) {
  const s = state.selection, what = { spot: "", residual: "everything but ", original: "the original, not " }[state.mode];
  let text = "Click the video to hear a spot, drag to choose a box, or click an object's box.";
  if (s && s.kind === "point") text = `Selected: ${what}the spot (${s.point[0].toFixed(0)}, ${s.point[1].toFixed(0)})`;
  if (s && s.kind === "box") text = `Selected: ${what}the box (${s.box.join(", ")})`;
  if (s && s.kind === "track") text = `Selected: ${what}object ${s.object.id} (${s.object.class})`;
  $("#selection").textContent = extra ? `${text}: ${extra}.` : text;
}

/** The box of an object at time t: the last detection at or before t (the first before it);
 *  null when t is outside the time the object was tracked. */
function boxAt(object, t) {
  const times = object.times;
  if (t < times[0] - 0.5 || t > times[times.length - 1] + 0.5) return null;
  let k = 0;
  while (k + 1 < times.length && times[k + 1] <= t) k++;
  return object.boxes[k];
}

function objectAt(x, y, t) {
  let best = null, bestArea = Infinity;
  for (const object of state.info.objects) {
    const b = boxAt(object, t);
    const area = b ? (b[2] - b[0]) * (b[3] - b[1]) : Infinity;
    if (b && x >= b[0] && x < b[2] && y >= b[1] && y < b[3] && area < bestArea) [best, bestArea] = [object, area];
  }
  return best;
}

// --- uploading -------------------------------------------------------------------------------
$("#upload").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  event.target.value = "";
  if (!file) return;
  const limit = state.limits.max_upload_mb;
  if (limit && file.size > limit * 1048576) {
    return say(`${file.name} is ${(file.size / 1048576).toFixed(1)} MB; uploads are limited to ${limit} MB.`);
  }
  say(`Uploading ${file.name}…`, "info");
  try {
    const answer = await api(`/api/upload?name=${encodeURIComponent(file.name)}`, { method: "POST", body: file });
    say("");
    await loadList();
    openVideo(answer.video.id);
  } catch (err) {
    say(`Upload refused: ${err.message}`);
  }
});

loadList().catch((err) => say(`cannot reach the app's server: ${err.message}`));

window.avsep = { state, player, contentRect, toFrame, fromFrame, openVideo, metrics: player.metrics };
