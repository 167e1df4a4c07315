// Token prompt and read-only access; reconnection after a daemon restart on the same port.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { click, launchBrowser, openPage, startDaemon, api, until } from "./harness.js";

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

const FULL = "full-token-for-web-tests";
const READ = "read-token-for-web-tests";

test("the token prompt accepts the full token, then a mutation works; a read-only token disables the buttons", async () => {
  const d = await startDaemon({ tokens: true, env: { SCHEDD_TOKEN: FULL, SCHEDD_READ_TOKEN: READ } });
  try {
    const page = await openPage(browser);
    await page.goto(`${d.base}/#/helpers`);
    // Tokens configured, none given: the page asks (reads still work).
    await page.waitForSelector('[data-testid="auth"]:not([hidden])');
    await page.waitForSelector('[data-testid="helper-row-toggle"]');
    // A mutation without a token answers 401 and keeps the prompt up (deliberate 401).
    await click(page, '[data-testid="helper-row-toggle"] [data-testid="disable"]');
    await page.waitForFunction(() => /needs/.test(document.querySelector("#auth-msg").textContent));
    assert.equal((await api(d.base, "GET", "/v1/helpers/toggle")).body.state.enabled, true);
    await page.type('[data-testid="auth-token"]', FULL);
    await click(page, '[data-testid="auth-submit"]');
    await page.waitForSelector('[data-testid="auth"][hidden]', { hidden: true });
    await page.waitForSelector('[data-testid="access"][data-access="full"]');
    assert.equal(await page.evaluate(() => document.cookie), "");
    assert.equal(await page.evaluate(() => localStorage.length), 0);
    await click(page, '[data-testid="helper-row-toggle"] [data-testid="disable"]');
    await until("toggle disabled", async () => (await api(d.base, "GET", "/v1/helpers/toggle")).body.state.enabled === false);
    await page.waitForSelector('[data-testid="helper-row-toggle"][data-enabled="false"]');
    // The deliberate 401, once; a 401 of the signed-in mutation would leave a second one.
    const deliberate = page.problems.findIndex((p) => /^http 401: POST .*\/v1\/helpers\/toggle\/disable$/.test(p));
    if (deliberate >= 0) page.problems.splice(deliberate, 1);
    assert.deepEqual(page.problems, []);
    await page.close();

    // A new tab has its own session storage: sign in with the read-only token.
    const ro = await openPage(browser);
    await ro.goto(`${d.base}/#/helpers`);
    await ro.waitForSelector('[data-testid="auth"]:not([hidden])');
    await ro.type('[data-testid="auth-token"]', READ);
    await click(ro, '[data-testid="auth-submit"]');
    await ro.waitForSelector('[data-testid="access"][data-access="read"]');
    await ro.waitForSelector('[data-testid="readonly-note"]:not([hidden])');
    await ro.waitForSelector('[data-testid="helper-row-toggle"]');
    const states = await ro.$$eval("[data-mutates]", (els) => els.map((e) => [e.disabled, e.title]));
    assert.ok(states.length >= 4);
    for (const [disabled, title] of states) {
      assert.equal(disabled, true);
      assert.equal(title, "read-only token: changes need the full token");
    }
    for (const route of ["queue", "tickets", "history"]) {
      await ro.goto(`${d.base}/#/${route}`);
      await ro.waitForSelector(`[data-testid="page-${route}"] [data-mutates]`);
      assert.ok(await ro.$$eval("[data-mutates]", (els) => els.every((e) => e.disabled)), route);
    }
    assert.deepEqual(ro.problems, []);
    await ro.close();
  } finally {
    await d.stop();
  }
});

test("the page shows reconnecting, then reconnects and shows fresh data after a restart on the same port", async () => {
  const first = await startDaemon();
  let second;
  try {
    const page = await openPage(browser);
    await page.goto(`${first.base}/#/overview`);
    await page.waitForSelector('[data-testid="conn-state"][data-state="live"]');
    await page.waitForFunction(() => /^4 /.test(document.querySelector('[data-testid="helpers-count"]')?.textContent));
    await first.stop();
    await page.waitForSelector('[data-testid="conn-state"][data-state="reconnecting"]');
    // Same port, one more helper and one more lane: the page must refetch /v1/status.
    second = await startDaemon({
      port: first.port,
      extra: '[lanes.extra]\nworkers = 3\n\n[helpers.added]\nexecutor = "noop"\nlane = "extra"\nschedule = { every = "5m" }\n',
    });
    await page.waitForSelector('[data-testid="conn-state"][data-state="live"]', { timeout: 20000 });
    await page.waitForFunction(() => /^5 /.test(document.querySelector('[data-testid="helpers-count"]')?.textContent), { timeout: 10000 });
    await page.waitForSelector('[data-testid="lane-running-extra"][data-max="3"]');
    // Failed requests while the daemon was down are expected; nothing else.
    const other = page.problems.filter((p) => !/ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|ERR_CONNECTION_RESET|requestfailed: GET .*\/v1\/stats\/stream|net::ERR_/.test(p));
    assert.deepEqual(other, []);
    await page.close();
  } finally {
    await second?.stop();
    if (!second) await first.stop().catch(() => {});
  }
});
