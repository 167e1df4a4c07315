// Test harness for the dashboard's browser tests: starts a real schedd (SCHEDD_BIN, plugins
// from SCHEDD_PLUGIN_DIR) on a temporary config, and the system Chromium through
// puppeteer-core. Missing prerequisites fail the tests with a pointer to
// scripts/setup-web-tests.sh; nothing is skipped.

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, "../..");
// CTest points SCHEDD_SCREENSHOT_DIR into the build tree, so a test run leaves the checkout
// as it was; run the tests with it unset (node --test tests/web/) to refresh docs/screenshots.
export const SCREENSHOTS = process.env.SCHEDD_SCREENSHOT_DIR || join(REPO, "docs/screenshots");
const SETUP = "run scripts/setup-web-tests.sh (it installs chromium and tests/web/node_modules)";

export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

function paths() {
  // CTest sets both; a local run may fall back to a build/web tree of this checkout.
  const bin = process.env.SCHEDD_BIN || join(REPO, "build/web/bin/schedd");
  const plugins = process.env.SCHEDD_PLUGIN_DIR || join(REPO, "build/web/plugins");
  if (!existsSync(bin)) throw new Error(`schedd binary not found at ${bin}: set SCHEDD_BIN`);
  if (!existsSync(join(plugins, "ticket.so"))) throw new Error(`ticket.so not found in ${plugins}: set SCHEDD_PLUGIN_DIR`);
  return { bin, plugins };
}

export async function loadPuppeteer() {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: ${SETUP}`);
  if (!existsSync(join(here, "node_modules/puppeteer-core"))) throw new Error(`tests/web/node_modules is missing: ${SETUP}`);
  return (await import("puppeteer-core")).default;
}

export async function launchBrowser() {
  const puppeteer = await loadPuppeteer();
  const profile = mkdtempSync(join(tmpdir(), "schedd-web-chromium-"));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: profile,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--disable-dev-shm-usage"],
  });
  const close = browser.close.bind(browser);
  browser.close = async () => {
    await close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  };
  return browser;
}

// A page that records console errors, page errors, failed requests and HTTP errors;
// allow(fn) marks some as deliberate.
export async function openPage(browser, { width = 1280, height = 800 } = {}) {
  const page = await browser.newPage();
  await page.setViewport({ width, height });
  page.setDefaultTimeout(15000);
  const problems = [];
  // Chrome's console line for an HTTP error ("Failed to load resource: the server responded
  // with a status of N") repeats the response recorded below, and may come after the page
  // already acted on that response: a test that expects an error and drops it from the list
  // would find the line arriving later. The response's own entry is what counts.
  page.on("console", (m) => {
    if (m.type() !== "error" || /^Failed to load resource: the server responded with a status of \d+/.test(m.text())) return;
    problems.push(`console: ${m.text()} ${JSON.stringify(m.location())}`);
  });
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("requestfailed", (r) => problems.push(`requestfailed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));
  page.on("response", (r) => { if (r.status() >= 400) problems.push(`http ${r.status()}: ${r.request().method()} ${r.url()}`); });
  page.problems = problems;
  return page;
}

let daemonSeq = 0;

// Starts `schedd run --ephemeral`; returns {port, base, stop(), restart(opts)}.
export async function startDaemon({ port = 0, env = {}, tokens = false, extra = "" } = {}) {
  const { bin, plugins } = paths();
  const dir = mkdtempSync(join(tmpdir(), "schedd-web-"));
  daemonSeq += 1;
  const config = `
[daemon]
plugin_dir = ${JSON.stringify(plugins)}
isolation = "inprocess"
log_level = "info"
shutdown_grace = "2s"

[api]
listen = "127.0.0.1:${port}"
${tokens ? 'token_env = "SCHEDD_TOKEN"\nread_token_env = "SCHEDD_READ_TOKEN"' : ""}

[lanes.default]
workers = 2

[lanes.slow]
workers = 1

[tickets]
executor = "ticket"

[helpers.tick]
executor = "noop"
description = "A no-op every minute."
schedule = { every = "1m" }

[helpers.toggle]
executor = "noop"
description = "Disabled and enabled by the tests."
schedule = { every = "10m" }

[helpers.morning]
executor = "sleep"
schedule = { time = "09:00", days = ["mon", "tue", "wed", "thu", "fri"] }
params = { duration = "1s" }

[helpers.five]
executor = "noop"
lane = "slow"
schedule = { cron = "*/5 * * * *" }
${extra}
`;
  const file = join(dir, "schedd.toml");
  writeFileSync(file, config);
  const child = spawn(bin, ["run", "-c", file, "--ephemeral"], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  const listening = new Promise((resolveP, reject) => {
    const timer = setTimeout(() => reject(new Error(`schedd did not start within 20 s:\n${log}`)), 20000);
    child.stderr.on("data", (d) => {
      log += d.toString();
      const m = /control API listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolveP(Number(m[1]));
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`schedd exited with ${code}:\n${log}`));
    });
  });
  const got = await listening;
  const exited = new Promise((r) => child.on("exit", r));
  return {
    port: got,
    base: `http://127.0.0.1:${got}`,
    log: () => log,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 10000);
      await exited;
      clearTimeout(t);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// JSON API calls from the test itself.
export async function api(base, method, path, body, token) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

// Polls fn until it returns a truthy value; fails after `timeout` ms with `what`.
export async function until(what, fn, { timeout = 15000, every = 100 } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, every));
  }
}

export function screenshotPath(name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  return join(SCREENSHOTS, name);
}

// Clicks the first enabled match inside the page in one step, so that a re-render between
// finding and clicking cannot leave a detached element behind.
export async function click(page, selector, { timeout = 15000 } = {}) {
  await page.waitForFunction((sel) => {
    const el = [...document.querySelectorAll(sel)].find((e) => !e.disabled);
    if (!el) return false;
    el.click();
    return true;
  }, { timeout }, selector);
}
