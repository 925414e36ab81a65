"use strict";
// The overlay, redrawn every animation frame: the sound heatmap of the nearest analysed frame,
// the detected objects' boxes, the chosen spot or box, and a box being dragged.

// A dark-to-bright map (black, purple, red, orange, pale yellow), transparent where it is quiet.
const STOPS = [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]];

function colour(value) {
  const x = (value / 255) * (STOPS.length - 1), k = Math.min(STOPS.length - 2, Math.floor(x)), f = x - k;
  return STOPS[k].map((c, i) => c + (STOPS[k + 1][i] - c) * f);
}

/** The heatmap of analysed frame `index` as a small canvas (one pixel per grid cell), cached. */
function heatImage(index) {
  const heat = state.heat;
  if (heat.images.has(index)) return heat.images.get(index);
  const { rows, cols } = heat, canvas = document.createElement("canvas");
  canvas.width = cols;
  canvas.height = rows;
  const context = canvas.getContext("2d"), image = context.createImageData(cols, rows);
  for (let i = 0; i < rows * cols; i++) {
    const value = heat.raw[index * rows * cols + i], [r, g, b] = colour(value);
    image.data.set([r, g, b, Math.round(190 * Math.pow(value / 255, 1.3))], 4 * i);
  }
  context.putImageData(image, 0, 0);
  heat.images.set(index, canvas);
  return canvas;
}

function nearestFrame(times, t) {
  let best = 0;
  for (let k = 1; k < times.length; k++) if (Math.abs(times[k] - t) < Math.abs(times[best] - t)) best = k;
  return best;
}

function strokeBox(context, box, colourName, width, dashed) {
  const [x0, y0] = fromFrame(box[0], box[1]), [x1, y1] = fromFrame(box[2], box[3]);
  context.setLineDash(dashed ? [6, 4] : []);
  context.lineWidth = width;
  context.strokeStyle = colourName;
  context.strokeRect(x0, y0, x1 - x0, y1 - y0);
  return [x0, y0];
}

function draw() {
  requestAnimationFrame(draw);
  const ratio = window.devicePixelRatio || 1, width = overlay.clientWidth, height = overlay.clientHeight;
  if (overlay.width !== Math.round(width * ratio) || overlay.height !== Math.round(height * ratio)) {
    overlay.width = Math.round(width * ratio);
    overlay.height = Math.round(height * ratio);
  }
  const context = overlay.getContext("2d");
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.clearRect(0, 0, width, height);
  if (!state.info) return;
  const r = contentRect(), t = video.currentTime, selected = state.selection;
  if (state.showHeat && state.heat && state.heat.times.length) {
    context.imageSmoothingEnabled = true;   // bilinear between cell centres, as energy_map does
    context.drawImage(heatImage(nearestFrame(state.heat.times, t)), r.x, r.y, r.w, r.h);
  }
  context.font = "13px system-ui, sans-serif";
  for (const object of state.info.objects) {
    const box = boxAt(object, t);
    if (!box) continue;
    const chosen = selected && selected.kind === "track" && selected.object.id === object.id;
    const [x0, y0] = strokeBox(context, box, chosen ? "#ffe14c" : object.sounding ? "#4cc2ff" : "#9aa3b2", chosen ? 3 : 2);
    context.fillStyle = "rgba(0, 0, 0, 0.6)";
    const label = `#${object.id} ${object.class}`;
    context.fillRect(x0, y0 - 18, context.measureText(label).width + 8, 18);
    context.fillStyle = "#fff";
    context.fillText(label, x0 + 4, y0 - 5);
  }
  if (selected && selected.kind === "box") strokeBox(context, selected.box, "#ffe14c", 2, true);
  if (selected && selected.kind === "point") {
    const [x, y] = fromFrame(...selected.point);
    for (const [colourName, width] of [["rgba(0,0,0,0.7)", 4], ["#ffe14c", 2]]) {
      context.setLineDash([]);
      context.lineWidth = width;
      context.strokeStyle = colourName;
      context.beginPath();
      context.arc(x, y, 9, 0, 2 * Math.PI);
      context.moveTo(x - 15, y); context.lineTo(x - 5, y); context.moveTo(x + 5, y); context.lineTo(x + 15, y);
      context.moveTo(x, y - 15); context.lineTo(x, y - 5); context.moveTo(x, y + 5); context.lineTo(x, y + 15);
      context.stroke();
    }
  }
  if (state.drag) {
    const [[ax, ay], [bx, by]] = [state.drag.start, state.drag.end];
    context.setLineDash([6, 4]);
    context.lineWidth = 2;
    context.strokeStyle = "#fff";
    context.strokeRect(Math.min(ax, bx), Math.min(ay, by), Math.abs(bx - ax), Math.abs(by - ay));
  }
}

requestAnimationFrame(draw);
