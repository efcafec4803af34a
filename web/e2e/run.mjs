// End-to-end test of the page against a running framepress server, in Debian's Chromium driven by
// playwright-core (no browser download).
//
//   FRAMEPRESS_URL=http://127.0.0.1:8080 FRAMEPRESS_CLIP=clip.mp4 FRAMEPRESS_TEXT_FILE=notes.txt node e2e/run.mjs
//
// FRAMEPRESS_SCREENSHOTS: where the screenshots go (default build/screenshots at the repo's root).
// CHROMIUM: the browser (default /usr/bin/chromium). Prints "N passed, M failed" last; exits 1 on any failure.

import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

const base = process.env.FRAMEPRESS_URL?.replace(/\/+$/, "");
const clip = process.env.FRAMEPRESS_CLIP;
const textFile = process.env.FRAMEPRESS_TEXT_FILE;
const shots = resolve(process.env.FRAMEPRESS_SCREENSHOTS ?? join(here, "../../build/screenshots"));
const browserPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const ENCODE_TIMEOUT_MS = 120_000;

if (!base || !clip || !textFile) {
  console.error("Set FRAMEPRESS_URL, FRAMEPRESS_CLIP and FRAMEPRESS_TEXT_FILE.");
  console.log("0 passed, 1 failed");
  process.exit(1);
}
mkdirSync(shots, { recursive: true });

let passed = 0;
let failed = 0;
/** Runs one step; a failure is counted and reported, and the steps after it still run. */
async function step(name, fn) {
  const started = Date.now();
  try {
    const note = await fn();
    passed += 1;
    console.log(`ok   ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)${note ? `: ${note}` : ""}`);
    return true;
  } catch (error) {
    failed += 1;
    console.log(`FAIL ${name}: ${error instanceof Error ? error.message.split("\n")[0] : error}`);
    return false;
  }
}
function check(condition, message) {
  if (!condition) throw new Error(message);
}

const profile = mkdtempSync(join(tmpdir(), "framepress-e2e-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: browserPath,
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--autoplay-policy=no-user-gesture-required",
  ],
});
const page = context.pages()[0] ?? (await context.newPage());
const pageErrors = [];
page.on("pageerror", (error) => pageErrors.push(error.message));

const shot = (name, options = {}) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true, ...options });
const card = (id) => page.locator(`article.job[data-job-id="${id}"]`);

/** Records every change of a rendition's state or bar on the page, to see progress happen live. */
async function recordProgress() {
  await page.evaluate(() => {
    window.__seen = [];
    const note = () => {
      for (const li of document.querySelectorAll("li.rendition")) {
        const job = li.closest("article")?.dataset.jobId;
        const percent = li.querySelector(".progress")?.dataset.percent;
        window.__seen.push({ job, rendition: li.dataset.rendition, state: li.dataset.state, percent: Number(percent || 0) });
      }
    };
    new MutationObserver(note).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-state", "data-percent"] });
    note();
  });
}

let jobId = "";
let renditionNames = [];

try {
  await step("the page loads with the server's presets", async () => {
    await page.emulateMedia({ colorScheme: "light" });
    await page.goto(base, { waitUntil: "load", timeout: 30_000 });
    await page.getByRole("heading", { name: "Upload" }).waitFor({ timeout: 15_000 });
    await page.getByLabel("Quality").locator("option").first().waitFor({ state: "attached", timeout: 15_000 });
    const rungs = await page.getByRole("group", { name: "Renditions" }).getByRole("checkbox").count();
    check(rungs > 0, "no rendition checkboxes from GET /api/presets");
    await shot("01-start-light");
    return `${rungs} renditions on offer, preset ${await page.getByLabel("Quality").inputValue()}`;
  });

  await step("uploading the clip through the file input creates a job", async () => {
    await recordProgress();
    const before = new Set(await page.locator("article.job").evaluateAll((all) => all.map((a) => a.dataset.jobId)));
    await page.locator('input[type="file"]').setInputFiles(clip);
    const handle = await page.waitForFunction(
      ({ known, name }) =>
        [...document.querySelectorAll("article.job")].find((a) => !known.includes(a.dataset.jobId) && a.querySelector("h3")?.textContent === name)?.dataset.jobId,
      { known: [...before], name: basename(clip) },
      { timeout: 60_000, polling: 100 },
    );
    jobId = await handle.jsonValue();
    renditionNames = await card(jobId).locator("li.rendition").evaluateAll((all) => all.map((li) => li.dataset.rendition));
    check(renditionNames.length > 0, "the job shows no renditions");
    if (!(await card(jobId).getAttribute("data-state")).match(/completed|failed|cancelled/)) await shot("02-encoding-light");
    return `job ${jobId}: ${renditionNames.join(", ")}`;
  });

  await step("the progress bars advance and every rendition reaches done", async () => {
    check(jobId, "no job");
    await page.waitForFunction((id) => document.querySelector(`article.job[data-job-id="${id}"]`)?.dataset.state.match(/completed|failed|cancelled/), jobId, {
      timeout: ENCODE_TIMEOUT_MS,
      polling: 100,
    });
    const state = await card(jobId).getAttribute("data-state");
    check(state === "completed", `the job ended ${state}: ${await card(jobId).locator(".message--error").allTextContents()}`);
    const rows = await card(jobId).locator("table.results tbody tr").evaluateAll((all) => all.map((tr) => tr.dataset.rendition));
    check(rows.join() === renditionNames.join(), `results list ${rows.join(", ")}, expected ${renditionNames.join(", ")}`);
    // Live: a rendition seen queued or encoding on the page that then finished, without a reload.
    const seen = (await page.evaluate(() => window.__seen)).filter((s) => s.job === jobId);
    const live = renditionNames.filter((name) => seen.some((s) => s.rendition === name && s.state !== "done"));
    check(live.length > 0, "no bar was seen before the end: every rendition was done before the page showed it");
    const partial = new Set(seen.filter((s) => s.percent > 0 && s.percent < 100).map((s) => `${s.rendition}@${s.percent}`)).size;
    const downloads = await card(jobId).locator("table.results a[download]").count();
    check(downloads === renditionNames.length, `${downloads} download buttons for ${renditionNames.length} renditions`);
    await shot("03-done-light");
    return `${live.length} of ${renditionNames.length} renditions watched live until done, ${partial} intermediate percentages seen`;
  });

  await step("a rendition plays: the video reports a duration and currentTime advances", async () => {
    const video = card(jobId).locator("video[data-rendition]");
    await video.waitFor({ timeout: 10_000 });
    const result = await video.evaluate(async (v) => {
      v.muted = true;
      await v.play();
      const started = performance.now();
      while (performance.now() - started < 20_000 && !(v.currentTime > 0.5)) await new Promise((r) => setTimeout(r, 100));
      v.pause();
      return { duration: v.duration, time: v.currentTime, error: v.error?.message ?? null, src: v.currentSrc };
    });
    check(result.error === null, `media error ${result.error} on ${result.src}`);
    check(Number.isFinite(result.duration) && result.duration > 0, `duration ${result.duration}`);
    check(result.time > 0.5, `currentTime stuck at ${result.time}`);
    return `duration ${result.duration.toFixed(2)} s, played to ${result.time.toFixed(2)} s`;
  });

  await step("switching rendition keeps the time position", async () => {
    if (renditionNames.length < 2) return "only one rendition: nothing to switch";
    const video = card(jobId).locator("video[data-rendition]");
    const from = await video.getAttribute("data-rendition");
    const at = await video.evaluate((v) => v.currentTime);
    const to = renditionNames.find((n) => n !== from);
    await card(jobId).getByRole("radio", { name: to }).check();
    await page.waitForFunction(
      ({ id, to }) => {
        const v = document.querySelector(`article.job[data-job-id="${id}"] video[data-rendition]`);
        return v?.dataset.rendition === to && v.readyState >= 1;
      },
      { id: jobId, to },
      { timeout: 15_000 },
    );
    const now = await video.evaluate((v) => v.currentTime);
    check(Math.abs(now - at) < 0.3, `was at ${at.toFixed(2)} s on ${from}, ${to} starts at ${now.toFixed(2)} s`);
    return `${from} at ${at.toFixed(2)} s → ${to} at ${now.toFixed(2)} s`;
  });

  await step("a reload shows the same state", async () => {
    await page.reload({ waitUntil: "load" });
    await card(jobId).waitFor({ timeout: 15_000 });
    check((await card(jobId).getAttribute("data-state")) === "completed", "the job is not shown completed after a reload");
    const details = card(jobId).getByRole("button", { name: /Show details/ });
    if (await details.count()) await details.click();
    const rows = await card(jobId).locator("table.results tbody tr").evaluateAll((all) => all.map((tr) => tr.dataset.rendition));
    check(rows.join() === renditionNames.join(), `after the reload: ${rows.join(", ")}`);
    return `${rows.length} done renditions listed`;
  });

  await step("uploading a text file shows the server's error message", async () => {
    const form = new FormData();
    form.append("video", new Blob([readFileSync(textFile)], { type: "text/plain" }), basename(textFile));
    const direct = await fetch(`${base}/api/videos`, { method: "POST", body: form });
    const body = await direct.json();
    check(direct.status >= 400 && body?.error?.message, `the server answered ${direct.status} to a text file`);
    await page.locator('input[type="file"]').setInputFiles(textFile);
    const alert = page.locator('li.upload[data-status="failed"] [role="alert"]').last();
    await alert.waitFor({ timeout: 30_000 });
    const text = await alert.textContent();
    check(text.includes(body.error.message), `shown "${text}", the server said "${body.error.message}"`);
    await shot("04-error-light");
    return `${direct.status}: ${text}`;
  });

  const axe = async (label) => {
    await page.addScriptTag({ path: require.resolve("axe-core/axe.min.js") });
    const results = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
    const bad = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
    const minor = results.violations.length - bad.length;
    check(
      bad.length === 0,
      `${label}: ${bad.map((v) => `${v.id} (${v.impact}) at ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")}`).join("; ")}`,
    );
    return `${label}: no serious or critical violations${minor ? `, ${minor} minor` : ""}`;
  };

  await step("axe-core finds no serious or critical violations (light)", () => axe("light"));

  await step("the theme toggle switches to dark, and axe passes there too", async () => {
    await page.getByRole("button", { name: "Dark theme" }).click();
    check((await page.evaluate(() => document.documentElement.dataset.theme)) === "dark", "no data-theme=dark after the toggle");
    await page.waitForTimeout(400); // let the colour transitions finish before the picture
    const background = await page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
    await shot("05-done-dark");
    const note = await axe("dark");
    await page.getByRole("button", { name: "Dark theme" }).click();
    return `${note}; background ${background}`;
  });

  await step("usable at 375 px: nothing wider than the screen", async () => {
    await page.setViewportSize({ width: 375, height: 812 });
    await page.evaluate(() => localStorage.removeItem("framepress.theme"));
    const results = [];
    for (const scheme of ["light", "dark"]) {
      await page.emulateMedia({ colorScheme: scheme });
      await page.reload({ waitUntil: "load" });
      await card(jobId).waitFor({ timeout: 15_000 });
      await shot(`06-phone-${scheme}`);
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      check(width <= 376, `${scheme}: the page is ${width} px wide`);
      results.push(`${scheme} ${width} px`);
    }
    await page.setViewportSize({ width: 1280, height: 900 });
    return results.join(", ");
  });

  await step("keyboard: Tab reaches the file picker, the options and the job's controls", async () => {
    await page.emulateMedia({ colorScheme: "light" });
    await page.reload({ waitUntil: "load" });
    await card(jobId).waitFor({ timeout: 15_000 });
    const reached = new Set();
    for (let i = 0; i < 40; i += 1) {
      await page.keyboard.press("Tab");
      const what = await page.evaluate(() => {
        const el = document.activeElement;
        if (!el) return "";
        if (el instanceof HTMLInputElement) return `input:${el.type}`;
        return el.tagName.toLowerCase();
      });
      reached.add(what);
    }
    for (const kind of ["input:file", "select", "input:checkbox", "button", "a"]) check(reached.has(kind), `Tab never reached ${kind}`);
    return [...reached].join(", ");
  });

  await step("no uncaught errors on the page", async () => {
    check(pageErrors.length === 0, pageErrors.join("; "));
  });
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}

console.log(`screenshots in ${shots}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
