// Drives a real headless Chromium over a `loopotel report` page with playwright-core and
// prints what it saw as one JSON object; the Rust test (tests/report.rs) asserts on it.
//
//   node report_check.mjs REPORT.html OUT_DIR [RUN_ID]
//
// RUN_ID: the run to open (default: the first failure with detail, by tokens).
// Environment: LOOPOTEL_CHROMIUM (the browser), LOOPOTEL_PLAYWRIGHT_DIR (node_modules
// holding playwright-core). Screenshots go to OUT_DIR (overview.png, run.png).
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import path from "node:path";

const [file, outDir, runId] = process.argv.slice(2);
const require = createRequire(path.resolve(process.env.LOOPOTEL_PLAYWRIGHT_DIR, "noop.js"));
const { chromium } = require("playwright-core");

const browser = await chromium.launch({
  executablePath: process.env.LOOPOTEL_CHROMIUM,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const out = { console: [], pageErrors: [], requests: [] };
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  const url = pathToFileURL(path.resolve(file)).href;
  page.on("console", (m) => out.console.push({ type: m.type(), text: m.text() }));
  page.on("pageerror", (e) => out.pageErrors.push(String(e)));
  page.on("request", (r) => { if (r.url() !== url) out.requests.push(r.url()); });
  // Anything but the file itself is recorded above and refused here.
  await context.route((u) => u.href !== url, (route) => route.abort());
  const t0 = Date.now();
  await page.goto(url, { waitUntil: "load" });
  await page.waitForSelector("body[data-ready=true]", { timeout: 15000 });

  out.loadMs = Date.now() - t0;
  out.title = await page.title();
  out.cards = await page.$$eval("#summary .card", (cs) =>
    Object.fromEntries(cs.map((c) => [c.dataset.k, c.querySelector(".v").textContent])));
  out.charts = await page.$$eval("figure.chart", (fs) => Object.fromEntries(fs.map((f) =>
    [f.dataset.chart, f.querySelectorAll("svg rect.bar").length])));
  out.groups = await page.$$eval("table.groups tbody tr", (rs) =>
    rs.map((r) => [...r.children].map((td) => td.textContent)));
  out.skippedNote = await page.$$eval("#skipped", (s) => s.map((e) => e.textContent));
  await page.screenshot({ path: path.join(outDir, "overview.png") });

  // Every listed run, on one page.
  await page.selectOption("#f-size", "all");
  out.listed = await page.$$eval("#runs tbody tr", (rs) => rs.map((r) => r.dataset.runId));
  const count = async () => Number(await page.$eval("#count", (c) => c.dataset.matching));
  const outcomes = await page.$$eval("#f-outcome option", (os) => os.map((o) => o.value));
  out.byOutcome = {};
  for (const o of outcomes.filter((v) => v)) {
    await page.selectOption("#f-outcome", o);
    out.byOutcome[o] = await count();
  }
  await page.selectOption("#f-outcome", "");
  await page.fill("#f-seed", "3");
  out.seed3 = await count();
  await page.fill("#f-seed", "");
  if (out.listed.length) {
    await page.fill("#f-text", out.listed[out.listed.length - 1]);
    out.byId = await page.$$eval("#runs tbody tr", (rs) => rs.map((r) => r.dataset.runId));
    await page.fill("#f-text", "");
  }
  // Sort by tokens: numbers sort largest first on the first click.
  await page.click("#runs th[data-col='10']");
  out.tokensSorted = await page.$$eval("#runs tbody tr", (rs) =>
    rs.map((r) => Number(r.children[10].textContent)));

  // A run with detail: the first failure if there is one.
  await page.selectOption("#f-size", "200");
  if (outcomes.includes("failure")) await page.selectOption("#f-outcome", "failure");
  const detailed = await page.$$eval("#runs tbody tr[data-detail=yes]", (rs) =>
    rs.map((r) => [r.dataset.runId, r.querySelector(".pill").textContent]));
  const pick = runId ? [runId] : detailed.find((d) => d[1] !== "success") || detailed[0];
  if (runId) {
    await page.selectOption("#f-outcome", "");
    await page.fill("#f-text", runId);
  }
  if (pick) {
    await page.click(`#runs tbody tr[data-run-id="${pick[0]}"]`);
    await page.waitForSelector("#run .waterfall svg");
    out.run = await page.$eval("#run", (s) => ({
      id: s.dataset.runId,
      heading: s.querySelector("h2").firstChild.nodeValue,
      rows: s.querySelectorAll(".waterfall g.row").length,
      bars: s.querySelectorAll(".waterfall rect.span").length,
      errorBars: s.querySelectorAll(".waterfall rect.span.err").length,
      events: s.querySelectorAll(".waterfall circle.event").length,
      scoreLines: s.querySelectorAll("[data-chart=scores] path").length,
      scorePoints: s.querySelectorAll("[data-chart=scores] circle").length,
      tokenBars: s.querySelectorAll("[data-chart=tokens] rect.bar").length,
      names: [...s.querySelectorAll(".waterfall text.name")].map((t) => t.firstChild.nodeValue),
    }));
    const second = await page.$$("#run .waterfall g.row");
    if (second.length > 1) {
      await second[1].click();
      out.inspected = await page.$eval("#inspector", (i) => ({
        span: i.dataset.span,
        attributes: i.querySelectorAll("table")[0]?.querySelectorAll("tr").length ?? 0,
        heading: i.querySelector("h3").textContent,
      }));
    }
    out.hash = await page.evaluate(() => location.hash);
    await page.setViewportSize({ width: 1400, height: 1000 });
    await page.locator("#run").screenshot({ path: path.join(outDir, "run.png") });
  }
  await page.selectOption("#f-outcome", "");
  const undetailed = await page.$$eval("#runs tbody tr[data-detail=no]", (rs) => rs.map((r) => r.dataset.runId));
  if (undetailed.length) {
    await page.click(`#runs tbody tr[data-run-id="${undetailed[0]}"]`);
    out.undetailed = await page.$$eval("#no-detail", (n) => n.length);
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
