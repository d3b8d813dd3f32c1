// End-to-end check of the demo page in headless Chromium with WebGPU (SwiftShader without a GPU):
// the page loads and names its adapter; training batches run and the loss falls; a shape drawn
// with the mouse and a test image are classified; the model exported packed loads back through
// the file input and classifies the image as the trained model does. Screenshot: web/out/demo.png.
//
// `node web/e2e/check.mjs` after `bash scripts/web.sh build` (E2E_BATCHES sets the batch count).

import { mkdir } from "node:fs/promises";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { serve } from "./serve.mjs";

const OUT = resolve(fileURLToPath(import.meta.url), "../../out");
const BATCHES = Number(process.env.E2E_BATCHES ?? 40);
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const FLAGS = ["--enable-unsafe-webgpu", "--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"];

function check(ok, message) {
  if (!ok) throw new Error(message);
}
const mean = (v) => v.reduce((a, b) => a + b, 0) / v.length;
const argmax = (v) => v.indexOf(Math.max(...v));

await mkdir(OUT, { recursive: true });
const server = await serve();
const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
const page = await browser.newPage({ viewport: { width: 1100, height: 1000 }, acceptDownloads: true });
const logs = [];
page.on("console", (m) => logs.push(`console.${m.type()}: ${m.text()}`));
page.on("pageerror", (e) => logs.push(`page error: ${e.message}`));
const state = () => page.evaluate(() => ({ ...window.bitgrad, state: document.body.dataset.state, status: document.getElementById("status").textContent }));
const until = (f, arg, timeout) => page.waitForFunction(f, arg, { timeout, polling: 250 });
// Every classification started so far has finished (each stroke of a drawing starts one).
const classified = () => until(() => (window.bitgrad.pending === 0 && window.bitgrad.trained !== null) || window.bitgrad.error, null, 120_000);
let status = 1;
try {
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
  await until(() => ["ready", "no-webgpu", "error"].includes(document.body.dataset.state), null, 180_000);
  let s = await state();
  check(s.state === "ready", `the page did not get ready: ${s.status}`);
  console.log(`page ready: ${s.status}`);

  const t0 = Date.now();
  await page.click("#train");
  await until((n) => window.bitgrad.losses.length >= n || window.bitgrad.error, BATCHES, 900_000);
  await page.click("#train");
  await until(() => document.body.dataset.state !== "training", null, 120_000);
  s = await state();
  check(!s.error, `training failed: ${s.error}`);
  const [first, last] = [mean(s.losses.slice(0, 5)), mean(s.losses.slice(-5))];
  const rate = await page.textContent("#rate");
  console.log(`${s.losses.length} batches in ${((Date.now() - t0) / 1000).toFixed(1)} s (page: ${rate} images/s); ` +
    `loss ${first.toFixed(3)} (first 5) -> ${last.toFixed(3)} (last 5), accuracy ${mean(s.accuracies.slice(-5)).toFixed(3)} (last 5)`);
  check(s.losses.every(Number.isFinite), "a loss is not finite");
  await page.click("#evaluate");
  await until(() => window.bitgrad.testAccuracy !== null || window.bitgrad.error, null, 300_000);
  s = await state();
  check(!s.error && s.testAccuracy > 0.3, `test accuracy ${s.testAccuracy} (${s.error})`);
  console.log(`test accuracy after ${s.losses.length} batches: ${(s.testAccuracy * 100).toFixed(1)}%`);
  check(last < 0.8 * first, `the loss did not fall: ${first} -> ${last}`);

  // A pair of trouser legs drawn with the mouse.
  await page.evaluate(() => (window.bitgrad.trained = null));
  const box = await page.locator("#draw").boundingBox();
  for (const x of [0.38, 0.62]) {
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.12);
    await page.mouse.down();
    for (let i = 0; i <= 20; i++) await page.mouse.move(box.x + box.width * (0.5 + (x - 0.5) * (i / 20)), box.y + box.height * (0.12 + 0.76 * (i / 20)));
    await page.mouse.up();
  }
  await classified();
  s = await state();
  check(!s.error, `classifying the drawing failed: ${s.error}`);
  check(s.trained.length === 10 && Math.abs(s.trained.reduce((a, b) => a + b) - 1) < 1e-3, `probabilities ${s.trained}`);
  const classes = await page.$$eval("#bars .bar span:first-child", (e) => e.map((x) => x.textContent));
  console.log(`drawing classified: ${classes[argmax(s.trained)]} (${(Math.max(...s.trained) * 100).toFixed(1)}%)`);

  await page.evaluate(() => (window.bitgrad.trained = null));
  await page.click("#sample");
  await classified();
  s = await state();
  const sample = await page.textContent("#sample-label");
  const sampled = s.trained;
  console.log(`${sample}: classified as ${classes[argmax(sampled)]}`);

  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export")]);
  const packedPath = resolve(OUT, "browser.packed.safetensors");
  await download.saveAs(packedPath);
  await page.setInputFiles("#packed", packedPath);
  await until(() => ((window.bitgrad.packed?.length ?? 0) === 10 && window.bitgrad.pending === 0) || window.bitgrad.error, null, 120_000);
  s = await state();
  check(!s.error, `the packed model failed: ${s.error}`);
  const gap = Math.max(...s.packed.map((p, i) => Math.abs(p - s.trained[i])));
  console.log(`packed export (${await page.textContent("#packed-name")}) classifies it as ${classes[argmax(s.packed)]}; ` +
    `largest probability difference from the trained model ${gap.toExponential(2)}`);
  check(argmax(s.packed) === argmax(s.trained) && gap < 1e-3, `packed ${s.packed} vs trained ${s.trained}`);
  check(s.trained.every((p, i) => p === sampled[i]), `the same image classified twice: ${sampled} then ${s.trained}`);

  await page.screenshot({ path: resolve(OUT, "demo.png"), fullPage: true });
  console.log(`screenshot: ${resolve(OUT, "demo.png")}`);

  // Without the WebGPU flag, Chromium on Linux offers no adapter: the page must say so.
  const plain = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS.filter((f) => f !== "--enable-unsafe-webgpu") });
  try {
    const p = await plain.newPage();
    await p.goto(`http://127.0.0.1:${server.address().port}/`);
    await p.waitForFunction(() => document.body.dataset.state !== "loading", null, { timeout: 120_000 });
    const [st, text] = await p.evaluate(() => [document.body.dataset.state, document.getElementById("status").textContent]);
    console.log(`without WebGPU: ${st}: ${text}`);
    check(st === "no-webgpu" && text.includes("WebGPU"), `without WebGPU the page said ${st}: ${text}`);
  } finally {
    await plain.close();
  }
  status = 0;
} catch (e) {
  console.error(`FAILED: ${e.message}`);
  await page.screenshot({ path: resolve(OUT, "failure.png"), fullPage: true }).catch(() => {});
  console.error(logs.join("\n"));
} finally {
  await browser.close();
  server.close();
}
process.exit(status);
