// The demo page: trains bitgrad's Demo batch by batch, plots loss and accuracy, classifies the
// drawing canvas. `window.bitgrad` exposes the page's state to the end-to-end check
// (web/e2e/check.mjs), and `document.body.dataset.state` says where the page is:
// loading, ready, training, no-webgpu or error.

import init, { Demo } from "./pkg/bitgrad_web.js";

const BATCH = 64;
const DATA = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];
const $ = (id) => document.getElementById(id);
const page = (window.bitgrad = { losses: [], accuracies: [], trained: null, packed: null, testAccuracy: null, error: null, pending: 0 });

function setState(state, message) {
  document.body.dataset.state = state;
  $("status").textContent = message;
}

// Demo calls must not overlap (each holds the model while the GPU works): chain them.
let chain = Promise.resolve();
function serial(task) {
  const next = chain.then(task);
  chain = next.catch(() => {});
  return next;
}

function fail(e) {
  page.error = String(e?.message ?? e);
  setState("error", `Error: ${page.error}`);
  console.error(e);
}

async function fetchBytes(name) {
  const r = await fetch(`data/${name}.gz`);
  if (!r.ok) throw new Error(`data/${name}.gz: HTTP ${r.status} (run \`bash scripts/web.sh build\` first)`);
  return new Uint8Array(await r.arrayBuffer());
}

// ---- training --------------------------------------------------------------------------------

let demo = null;
let running = false;
const recent = []; // [time, images] of the last batches, for images/s

async function trainLoop() {
  const perEpoch = Math.floor(demo.train_len() / BATCH);
  while (running) {
    const t0 = performance.now();
    const [loss, acc, epoch, step] = await serial(() => demo.train_batch());
    recent.push([performance.now() - t0, BATCH]);
    if (recent.length > 20) recent.shift();
    page.losses.push(loss);
    page.accuracies.push(acc);
    $("epoch").textContent = epoch;
    $("step").textContent = step;
    $("loss").textContent = loss.toFixed(4);
    $("acc").textContent = acc.toFixed(3);
    const ms = recent.reduce((a, [t]) => a + t, 0);
    $("rate").textContent = Math.round((recent.reduce((a, [, n]) => a + n, 0) * 1000) / ms);
    requestAnimationFrame(plot);
    if (step % perEpoch === 0) await evaluate();
    if (step % 5 === 0 && !blank()) await classify();
  }
}

async function evaluate() {
  const acc = await serial(() => demo.test_accuracy());
  page.testAccuracy = acc;
  $("test-acc").textContent = `${(acc * 100).toFixed(1)}%`;
}

function plot() {
  const c = $("plot");
  const g = c.getContext("2d");
  const { width: w, height: h } = c;
  const pad = 36;
  g.clearRect(0, 0, w, h);
  g.strokeStyle = "#dde3ea";
  g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = pad + ((h - 2 * pad) * i) / 4;
    g.beginPath();
    g.moveTo(pad, y);
    g.lineTo(w - pad, y);
    g.stroke();
  }
  const n = page.losses.length;
  if (n < 2) return;
  const maxLoss = Math.max(...page.losses.filter(Number.isFinite), 1e-6);
  const line = (values, top, color) => {
    g.strokeStyle = color;
    g.lineWidth = 2;
    g.beginPath();
    values.forEach((v, i) => {
      const x = pad + ((w - 2 * pad) * i) / (n - 1);
      const y = h - pad - ((h - 2 * pad) * v) / top;
      i ? g.lineTo(x, y) : g.moveTo(x, y);
    });
    g.stroke();
  };
  line(page.losses, maxLoss, "#3b7dd8");
  line(page.accuracies, 1, "#d8683b");
  g.fillStyle = "#4a5563";
  g.font = "20px system-ui";
  g.fillText(maxLoss.toFixed(2), 2, pad + 6);
  g.fillText("0", 2, h - pad + 6);
  g.fillText("1", w - pad + 8, pad + 6);
  g.fillText(`${n} batches`, w / 2 - 40, h - 6);
}

// ---- drawing and classification --------------------------------------------------------------

const draw = $("draw");
const pen = draw.getContext("2d", { willReadFrequently: true });

function clearCanvas() {
  pen.fillStyle = "#000";
  pen.fillRect(0, 0, draw.width, draw.height);
  $("sample-label").innerHTML = "&nbsp;";
}

// 28 x 28 ink values in [0, 1]: the mean of each 10 x 10 block of the canvas.
function pixels() {
  const { data } = pen.getImageData(0, 0, 280, 280);
  const out = new Float32Array(784);
  for (let y = 0; y < 280; y++) {
    for (let x = 0; x < 280; x++) out[Math.floor(y / 10) * 28 + Math.floor(x / 10)] += data[(y * 280 + x) * 4] / 255 / 100;
  }
  return out.map((v) => Math.min(1, v));
}

function blank() {
  return pixels().every((v) => v === 0);
}

function showBars(el, probabilities) {
  const classes = Demo.classes();
  const top = probabilities.indexOf(Math.max(...probabilities));
  el.innerHTML = "";
  classes.forEach((name, i) => {
    const row = document.createElement("div");
    row.className = i === top ? "bar top" : "bar";
    row.innerHTML = `<span>${name}</span><i style="width:${(probabilities[i] * 100).toFixed(1)}%"></i><span>${(probabilities[i] * 100).toFixed(1)}%</span>`;
    el.appendChild(row);
  });
}

// Classifies the canvas with the trained model and, when one is loaded, the packed model.
// `page.pending` counts classifications still running (each stroke starts one).
async function classify() {
  const x = pixels();
  page.pending++;
  try {
    const p = Array.from(await serial(() => demo.classify(x)));
    page.trained = p;
    $("model-note").textContent = `after ${page.losses.length} batches`;
    showBars($("bars"), p);
    if (page.packed !== null) {
      const q = Array.from(await serial(() => demo.classify_packed(x)));
      page.packed = q;
      showBars($("packed-bars"), q);
    }
  } finally {
    page.pending--;
  }
}

function stroke(e) {
  const r = draw.getBoundingClientRect();
  const x = ((e.clientX - r.left) * draw.width) / r.width;
  const y = ((e.clientY - r.top) * draw.height) / r.height;
  pen.fillStyle = "#fff";
  pen.beginPath();
  pen.arc(x, y, 14, 0, 2 * Math.PI);
  pen.fill();
}

function wireDrawing() {
  let down = false;
  draw.addEventListener("pointerdown", (e) => {
    down = true;
    draw.setPointerCapture(e.pointerId);
    stroke(e);
  });
  draw.addEventListener("pointermove", (e) => down && stroke(e));
  draw.addEventListener("pointerup", () => {
    down = false;
    classify().catch(fail);
  });
  $("clear").onclick = clearCanvas;
  $("sample").onclick = () => {
    const i = Math.floor(Math.random() * demo.test_len());
    const bytes = demo.test_image(i);
    const img = pen.createImageData(280, 280);
    for (let p = 0; p < 280 * 280; p++) {
      const v = bytes[Math.floor(p / 2800) * 28 + Math.floor((p % 280) / 10)];
      img.data.set([v, v, v, 255], p * 4);
    }
    pen.putImageData(img, 0, 0);
    $("sample-label").textContent = `test image ${i}: ${Demo.classes()[demo.test_label(i)]}`;
    classify().catch(fail);
  };
  $("export").onclick = async () => {
    try {
      const bytes = await serial(() => demo.export_packed());
      const a = document.createElement("a");
      a.href = URL.createObjectURL(new Blob([bytes], { type: "application/octet-stream" }));
      a.download = `bitgrad-browser-step${$("step").textContent}.packed.safetensors`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
    } catch (err) {
      fail(err);
    }
  };
  $("packed").onchange = async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    try {
      const line = await serial(async () => demo.load_packed(file.name, new Uint8Array(await file.arrayBuffer())));
      page.packed = [];
      $("packed-name").textContent = line;
      $("packed-block").hidden = false;
      if (!blank()) await classify();
    } catch (err) {
      fail(err);
    }
  };
}

// ---- start -----------------------------------------------------------------------------------

async function main() {
  clearCanvas();
  if (!navigator.gpu) {
    setState("no-webgpu", "This browser has no WebGPU (navigator.gpu is missing), so bitgrad cannot run here. " +
      "Use a browser with WebGPU enabled, such as a recent Chrome or Edge (on Linux, Chromium started with --enable-unsafe-webgpu).");
    return;
  }
  await init();
  const files = await Promise.all(DATA.map(fetchBytes));
  try {
    demo = await Demo.create(...files, BATCH);
  } catch (e) {
    const message = String(e?.message ?? e);
    if (message.includes("WebGPU")) return setState("no-webgpu", `No WebGPU adapter: ${message}`);
    throw e;
  }
  // Browsers describe adapters to bitgrad sparingly; their vendor and architecture say more.
  const info = (await navigator.gpu.requestAdapter())?.info;
  const detail = info ? [info.vendor, info.architecture].filter(Boolean).join(" ") : "";
  page.adapter = detail ? `${demo.adapter()}: ${detail}` : demo.adapter();
  setState("ready", `Adapter: ${page.adapter}. ${demo.train_len()} training and ${demo.test_len()} test images, batches of ${BATCH}.`);
  for (const id of ["train", "evaluate", "sample", "export"]) $(id).disabled = false;
  $("train").onclick = () => {
    running = !running;
    $("train").textContent = running ? "Pause" : "Train";
    document.body.dataset.state = running ? "training" : "ready";
    if (running) trainLoop().catch(fail);
  };
  $("evaluate").onclick = () => evaluate().catch(fail);
  wireDrawing();
}

main().catch(fail);
