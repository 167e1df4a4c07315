// Dashboard performance (issue #16): measures the goals of the web dashboard against a real
// daemon holding 1,000 helpers and 100,000 queued executions, in headless Chromium.
// Not a test: node --test does not pick it up (no *.test.js name), nothing is asserted; it
// prints one JSON line per run and a summary (median of the runs) at the end.
//
// Run (a release daemon; the build's plugins directory must hold noop, sleep and ticket):
//   SCHEDD_BIN=build/bench-web/bin/schedd SCHEDD_PLUGIN_DIR=build/bench-web/plugins \
//     node tests/web/bench/dashboard_bench.js [--runs 3] [--tabs 100] [--idle 60] [--live 30]
//   (or: cd tests/web && npm run bench)
//
// Each run starts its own daemon (tests/web/harness.js: `schedd run --ephemeral`, in process,
// [lanes.default] workers = 2) with 1,000 extra helpers (noop, every 1h, lane "helpers") and
// capacity.queued = 200000, starts a `sleep` of 1h on key "hold" and then queues 100,000 noop
// executions on that key with 100 bulk requests, so they stay queued. Then, with a fresh
// Chromium (harness.launchBrowser, fresh profile):
//   1. load: navigation start -> the page shows its data, measured in the page
//      (performance.now(), a MutationObserver installed before the page's scripts).
//      Overview: the capacity bars' data-value (SSE stats), the lane bars and the store
//      health (GET /v1/status) are all filled. Queue: the first page of rows is shown.
//      "cold" is the first load in the fresh browser, "warm" a second one in a new tab.
//   2. heap: page.metrics().JSHeapUsedSize 3 s after the data is shown (Overview, Queue,
//      Helpers), and on the Overview after --live seconds of live updates (step 3 runs then).
//   3. live: 10 tickets (1 s each, project "lat", the default lane's free worker): each
//      start and each end is one change of the Overview's running bar; the page records
//      Date.now() when data-value changes (MutationObserver), compared with the execution's
//      started/finished time from the daemon (same machine, same clock); the start is also
//      timed from the submission's HTTP response.
//   4. idle cost: the daemon's VmRSS and utime+stime (/proc/PID) over --idle seconds with no
//      dashboard, then with --tabs Overview pages open (one browser context each, because
//      Chromium allows 6 connections per host per context and each page holds an EventSource).
//   Also: GET /v1/helpers from node, and the Helpers page (1,000 rows; N+1 GETs) load time.
// The load average is printed with each run: the numbers move with it.

import { readFileSync, readdirSync } from "node:fs";
import { api, launchBrowser, openPage, startDaemon, until } from "../harness.js";

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const RUNS = opt("runs", 3);
const TABS = opt("tabs", 100);
const IDLE_S = opt("idle", 60);
const LIVE_S = opt("live", 30);
const HELPERS = opt("helpers", 1000);
const QUEUED = opt("queued", 100000);
const CHANGES = 20;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const loadavg = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
const log = (...a) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...a);

// The daemon is the harness's child: the schedd process whose parent is this node process.
function daemonPid() {
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      if (Number(rest[1]) === process.pid && comm.startsWith("schedd")) return Number(d);
    } catch { /* gone */ }
  }
  throw new Error("the daemon's pid was not found");
}
function procSample(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(rest[11]) + Number(rest[12]); // utime + stime (fields 14, 15)
  return { rssMb: rssKb / 1024, ticks, at: Date.now() };
}
const CLK_TCK = 100; // getconf CLK_TCK on Linux x86-64
async function idleCost(pid, seconds) {
  const a = procSample(pid);
  await sleep(seconds * 1000);
  const b = procSample(pid);
  const wall = (b.at - a.at) / 1000;
  return { rssMb: round(b.rssMb), cpuPercent: round(((b.ticks - a.ticks) / CLK_TCK / wall) * 100, 2), seconds: round(wall) };
}

function extraConfig() {
  const lines = [`[capacity]\nqueued = ${QUEUED * 2}\n`, `[lanes.helpers]\nworkers = 1\n`];
  for (let i = 0; i < HELPERS; i++) {
    lines.push(`[helpers.bench-${String(i).padStart(4, "0")}]\nexecutor = "noop"\nlane = "helpers"\nschedule = { every = "1h" }\n`);
  }
  return lines.join("\n");
}

async function populate(d) {
  const hold = await api(d.base, "POST", "/v1/executions", { executor: "sleep", id: "hold-1h", key: "hold", params: { duration: "1h" } });
  if (hold.status !== 201) throw new Error(`hold: ${hold.status} ${JSON.stringify(hold.body)}`);
  await until("the 1 h sleep to run", async () => (await api(d.base, "GET", "/v1/executions/hold-1h")).body.status === "running");
  const t0 = Date.now();
  for (let b = 0; b < QUEUED / 1000; b++) {
    const executions = [];
    for (let i = 0; i < 1000; i++) executions.push({ executor: "noop", key: "hold", id: `q-${b}-${i}` });
    const r = await api(d.base, "POST", "/v1/executions/bulk", { executions });
    if (r.status !== 201) throw new Error(`bulk ${b}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
  }
  const submitS = (Date.now() - t0) / 1000;
  const stats = (await api(d.base, "GET", "/v1/stats")).body;
  if (stats.queued < QUEUED) throw new Error(`only ${stats.queued} queued`);
  return { submitS: round(submitS, 2), stats };
}

// Records, from before the page's own scripts run, when each piece of data first shows.
function installMarks(helperRows) {
  window.__marks = {};
  const q = (s) => document.querySelector(s);
  const checks = {
    bars: () => q('[data-testid="bar-running"]')?.dataset.value !== undefined && q('[data-testid="bar-queued"]')?.dataset.value !== undefined,
    lanes: () => q('[data-testid="lane-queued-default"]')?.dataset.value !== undefined,
    health: () => !!q('[data-testid="store-health"]'),
    rows: () => !!q('[data-testid="queue-row"]'),
    helpers: () => document.querySelectorAll('[data-testid^="helper-row-"]').length >= helperRows,
  };
  const check = () => {
    for (const [k, f] of Object.entries(checks)) {
      if (window.__marks[k] === undefined) {
        try { if (f()) window.__marks[k] = performance.now(); } catch { /* not yet */ }
      }
    }
  };
  new MutationObserver(check).observe(document, { childList: true, subtree: true, attributes: true, characterData: true });
  document.addEventListener("DOMContentLoaded", () => { window.__marks.dcl = performance.now(); check(); });
}

const READY = { overview: ["bars", "lanes", "health"], queue: ["rows"], helpers: ["helpers"] };

async function loadPage(browser, base, route) {
  const page = await openPage(browser);
  await page.evaluateOnNewDocument(installMarks, HELPERS + 4); // + the harness's 4 helpers
  await page.goto(`${base}/#/${route}`, { waitUntil: "domcontentloaded" });
  const need = READY[route];
  await page.waitForFunction((n) => n.every((k) => window.__marks[k] !== undefined), { timeout: 120000, polling: 100 }, need);
  const marks = await page.evaluate(() => window.__marks);
  const ms = Math.max(...need.map((k) => marks[k]));
  return { page, ms: round(ms), marks: Object.fromEntries(Object.entries(marks).map(([k, v]) => [k, round(v)])) };
}

async function heapMb(page) {
  const m = await page.metrics();
  return round(m.JSHeapUsedSize / 1048576, 2);
}

async function liveChanges(d, page, runNo) {
  await page.evaluate(() => {
    window.__changes = [];
    const el = document.querySelector('[data-testid="bar-running"]');
    let last = el.dataset.value;
    new MutationObserver(() => {
      if (el.dataset.value !== last) {
        last = el.dataset.value;
        window.__changes.push({ v: Number(last), at: Date.now() });
      }
    }).observe(el, { attributes: true });
  });
  const samples = [];
  for (let i = 0; samples.length < CHANGES; i++) {
    const id = `lat:r${runNo}-t${i}`;
    const base = Number(await page.$eval('[data-testid="bar-running"]', (e) => e.dataset.value));
    const r = await api(d.base, "POST", "/v1/projects/lat/tickets", { ticket: `r${runNo}-t${i}`, params: { duration: "1s", steps: 1 } });
    const answered = Date.now();
    if (r.status !== 201) throw new Error(`ticket: ${r.status} ${JSON.stringify(r.body)}`);
    const x = await until(`${id} to finish`, async () => {
      const e = (await api(d.base, "GET", `/v1/executions/${encodeURIComponent(id)}`)).body;
      return e.finished ? e : null;
    }, { every: 50, timeout: 30000 });
    const started = Date.parse(x.started), finished = Date.parse(x.finished);
    await sleep(600); // let the end show
    const ch = await page.evaluate(() => window.__changes.splice(0));
    const up = ch.find((c) => c.v > base && c.at >= answered - 5);
    const down = ch.find((c) => c.at >= finished - 5 && c.v <= base);
    if (up) samples.push({ what: "start", ms: up.at - started, fromResponse: up.at - answered });
    else log(`${id}: no rise of bar-running seen (changes ${JSON.stringify(ch)})`);
    if (down) samples.push({ what: "end", ms: down.at - finished });
    else log(`${id}: no fall of bar-running seen (changes ${JSON.stringify(ch)})`);
    await sleep(200);
    if (i > CHANGES * 3) throw new Error("too many changes missed");
  }
  const ms = samples.slice(0, CHANGES).map((s) => s.ms);
  const fromResponse = samples.filter((s) => s.what === "start").map((s) => s.fromResponse);
  return { median: median(ms), max: Math.max(...ms), min: Math.min(...ms), startFromResponseMedian: median(fromResponse), startFromResponseMax: Math.max(...fromResponse), samples: samples.slice(0, CHANGES) };
}

async function manyDashboards(browser, base, n) {
  const contexts = [];
  const batch = 10;
  for (let i = 0; i < n; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, n - i) }, async () => {
      const ctx = await browser.createBrowserContext();
      const page = await ctx.newPage();
      page.setDefaultTimeout(120000);
      await page.goto(`${base}/#/overview`, { waitUntil: "domcontentloaded" });
      await page.waitForFunction(() => document.querySelector('[data-testid="bar-queued"]')?.dataset.value !== undefined
        && document.querySelector('[data-testid="conn-state"]')?.dataset.state === "live", { polling: 200 });
      contexts.push(ctx);
    }));
  }
  return contexts;
}

async function oneRun(runNo) {
  const out = { run: runNo, loadavgStart: loadavg() };
  log(`run ${runNo}: starting the daemon (${HELPERS} helpers), load ${out.loadavgStart}`);
  const d = await startDaemon({ extra: extraConfig() });
  let browser;
  try {
    const pid = daemonPid();
    out.populate = await populate(d);
    log(`run ${runNo}: ${out.populate.stats.queued} queued in ${out.populate.submitS} s`);

    // GET /v1/helpers and /v1/status, from node.
    const t = async (path) => {
      const t0 = performance.now();
      const r = await fetch(d.base + path);
      const body = await r.text();
      return { ms: round(performance.now() - t0), kb: round(body.length / 1024) };
    };
    out.getHelpers = await t("/v1/helpers");
    out.getHelper = await t("/v1/helpers/bench-0500");
    out.getQueuePage = await t("/v1/executions?status=queued&limit=50");
    out.getStatus = await t("/v1/status");

    out.idleNoDashboards = await idleCost(pid, IDLE_S);
    log(`run ${runNo}: idle without dashboards ${JSON.stringify(out.idleNoDashboards)}`);

    browser = await launchBrowser();
    out.load = {};
    out.heap = {};
    for (const route of ["overview", "queue"]) {
      const cold = await loadPage(browser, d.base, route);
      const warm = await loadPage(browser, d.base, route);
      await sleep(3000);
      out.load[route] = { cold: cold.ms, warm: warm.ms, coldMarks: cold.marks, warmMarks: warm.marks };
      out.heap[route] = await heapMb(warm.page);
      if (warm.page.problems.length || cold.page.problems.length) out.load[route].problems = [...cold.page.problems, ...warm.page.problems];
      await cold.page.close();
      if (route !== "overview") await warm.page.close();
      else out.overviewPage = warm.page;
      log(`run ${runNo}: ${route} cold ${cold.ms} ms, warm ${warm.ms} ms, heap ${out.heap[route]} MB`);
    }
    const helpersPage = await loadPage(browser, d.base, "helpers");
    out.load.helpers = { cold: helpersPage.ms, marks: helpersPage.marks };
    await sleep(3000);
    out.heap.helpers = await heapMb(helpersPage.page);
    await helpersPage.page.close();
    log(`run ${runNo}: helpers page ${helpersPage.ms} ms, heap ${out.heap.helpers} MB`);

    // Live updates on the Overview (warm page), for at least LIVE_S seconds.
    const ov = out.overviewPage;
    delete out.overviewPage;
    const liveStart = Date.now();
    out.live = await liveChanges(d, ov, runNo);
    const left = LIVE_S * 1000 - (Date.now() - liveStart);
    if (left > 0) await sleep(left);
    out.heap.overviewAfterLive = await heapMb(ov);
    out.heap.liveSeconds = round((Date.now() - liveStart) / 1000);
    if (ov.problems.length) out.live.problems = ov.problems;
    log(`run ${runNo}: live median ${out.live.median} ms max ${out.live.max} ms; heap after ${out.heap.liveSeconds} s ${out.heap.overviewAfterLive} MB`);
    await browser.close();
    browser = null;

    // Idle cost of TABS dashboards.
    await sleep(2000);
    const before = await idleCost(pid, IDLE_S);
    browser = await launchBrowser();
    const t0 = Date.now();
    await manyDashboards(browser, d.base, TABS);
    out.openTabsS = round((Date.now() - t0) / 1000);
    const clients = (await api(d.base, "GET", "/v1/status")).body.stream_clients;
    await sleep(5000);
    const rssBefore = procSample(pid).rssMb;
    const withTabs = await idleCost(pid, IDLE_S);
    const clientsAfter = (await api(d.base, "GET", "/v1/status")).body.stream_clients;
    out.dashboards = {
      tabs: TABS, streamClients: [clients, clientsAfter], before, with: withTabs,
      rssDeltaMb: round(withTabs.rssMb - before.rssMb, 2), rssDeltaAtOpenMb: round(rssBefore - before.rssMb, 2),
      cpuDeltaPercent: round(withTabs.cpuPercent - before.cpuPercent, 2),
    };
    log(`run ${runNo}: ${TABS} dashboards: ${JSON.stringify(out.dashboards)}`);
  } finally {
    await browser?.close();
    await d.stop();
  }
  out.loadavgEnd = loadavg();
  return out;
}

const runs = [];
for (let i = 1; i <= RUNS; i++) {
  const r = await oneRun(i);
  runs.push(r);
  console.log(JSON.stringify(r));
}
const pick = (f) => runs.map(f);
const row = (name, f, goal) => {
  const v = pick(f);
  return { figure: name, runs: v, median: median(v), goal };
};
const summary = [
  row("Overview load, cold (ms)", (r) => r.load.overview.cold, "<= 1000"),
  row("Overview load, warm (ms)", (r) => r.load.overview.warm, "<= 1000"),
  row("Queue load, cold (ms)", (r) => r.load.queue.cold, "<= 1000"),
  row("Queue load, warm (ms)", (r) => r.load.queue.warm, "<= 1000"),
  row("JS heap, Overview settled (MB)", (r) => r.heap.overview, "<= 50"),
  row("JS heap, Queue settled (MB)", (r) => r.heap.queue, "<= 50"),
  row("JS heap, Overview after live (MB)", (r) => r.heap.overviewAfterLive, "<= 50"),
  row("live change, median (ms)", (r) => r.live.median, "<= 500"),
  row("live change, max (ms)", (r) => r.live.max, "<= 500"),
  row(`${TABS} dashboards: daemon RSS delta (MB)`, (r) => r.dashboards.rssDeltaMb, "<= 20"),
  row(`${TABS} dashboards: daemon CPU delta (% of a core)`, (r) => r.dashboards.cpuDeltaPercent, "<= 5"),
  row("GET /v1/helpers (ms)", (r) => r.getHelpers.ms, ""),
  row("Helpers page load (ms)", (r) => r.load.helpers.cold, ""),
  row("JS heap, Helpers settled (MB)", (r) => r.heap.helpers, ""),
];
console.log(JSON.stringify({ summary }));
for (const s of summary) console.error(`${s.figure.padEnd(46)} ${s.runs.join(" / ").padEnd(30)} median ${s.median}  goal ${s.goal}`);
