// Usability checks of the dashboard (web/) in a real browser against a real daemon: colour
// contrast in the light and the dark scheme (the dark one follows prefers-color-scheme),
// keyboard navigation with a visible focus style, and an accessible name on every control.
// Run:
//   SCHEDD_BIN=build/web/bin/schedd SCHEDD_PLUGIN_DIR=build/web/plugins node --test --test-concurrency=1 tests/web/
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchBrowser, openPage, startDaemon, api, until, screenshotPath } from "./harness.js";

let browser, d;

before(async () => {
  browser = await launchBrowser();
  d = await startDaemon();
});
after(async () => {
  await browser?.close();
  await d?.stop();
});

async function goto(page, base, route, ready) {
  await page.goto(`${base}/#/${route}`);
  await page.waitForSelector(ready);
}

// WCAG 2.x relative luminance of a computed "rgb(r, g, b)" / "rgba(r, g, b, a)" colour.
function parseRgb(css) {
  const m = /^rgba?\(\s*([\d.]+)[,\s]+([\d.]+)[,\s]+([\d.]+)(?:[,\s/]+([\d.]+))?\s*\)$/.exec(css);
  if (!m) throw new Error(`not an rgb() colour: ${css}`);
  return { r: Number(m[1]), g: Number(m[2]), b: Number(m[3]), a: m[4] === undefined ? 1 : Number(m[4]) };
}
function luminance(css) {
  const { r, g, b, a } = parseRgb(css);
  assert.equal(a, 1, `colour ${css} is not opaque`);
  const lin = (c) => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}
function contrast(a, b) {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

const bodyColours = (page) => page.evaluate(() => {
  const s = getComputedStyle(document.body);
  return { bg: s.backgroundColor, fg: s.color };
});

const PAGES = [
  ["overview", '[data-testid="store-health"]'],
  ["helpers", '[data-testid="helpers-table"]'],
];

for (const scheme of ["light", "dark"]) {
  test(`the ${scheme} scheme follows prefers-color-scheme with body text at >= 4.5:1`, async () => {
    const page = await openPage(browser);
    await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: scheme }]);
    for (const [route, ready] of PAGES) {
      await goto(page, d.base, route, ready);
      const { bg, fg } = await bodyColours(page);
      const ratio = contrast(fg, bg);
      assert.ok(ratio >= 4.5, `#/${route} ${scheme}: text ${fg} on ${bg} is ${ratio.toFixed(2)}:1`);
      // Muted text and the table cards sit on other backgrounds; check them too.
      const extra = await page.evaluate(() => {
        const card = document.querySelector(".card, .table-wrap");
        const muted = document.querySelector(".muted, .words");
        return {
          card: card && getComputedStyle(card).backgroundColor,
          muted: muted && getComputedStyle(muted).color,
        };
      });
      if (extra.card) {
        const r = contrast(fg, extra.card);
        assert.ok(r >= 4.5, `#/${route} ${scheme}: text ${fg} on card ${extra.card} is ${r.toFixed(2)}:1`);
      }
      if (extra.muted && extra.card) {
        const r = contrast(extra.muted, extra.card);
        assert.ok(r >= 4.5, `#/${route} ${scheme}: muted ${extra.muted} on card ${extra.card} is ${r.toFixed(2)}:1`);
      }
      if (scheme === "dark") {
        assert.ok(luminance(bg) < 0.05, `#/${route} dark: body background ${bg} is not dark`);
        assert.ok(luminance(fg) > 0.6, `#/${route} dark: body text ${fg} is not light`);
        await page.screenshot({ path: screenshotPath(`${route}-dark.png`) });
      } else {
        assert.ok(luminance(bg) > 0.8, `#/${route} light: body background ${bg} is not light`);
        assert.ok(luminance(fg) < 0.05, `#/${route} light: body text ${fg} is not dark`);
      }
    }
    assert.deepEqual(page.problems, []);
    await page.close();
  });
}

// What document.activeElement is, for the Tab walk.
const describeFocus = (page) => page.evaluate(() => {
  const el = document.activeElement;
  const s = getComputedStyle(el);
  return {
    tag: el.tagName.toLowerCase(),
    text: (el.textContent || "").trim().slice(0, 40),
    testid: el.dataset?.testid ?? null,
    inNav: !!el.closest("#nav"),
    row: el.closest("tr")?.dataset.testid ?? null,
    outline: s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0 ? `${s.outlineStyle} ${s.outlineWidth}` : null,
    shadow: s.boxShadow !== "none" ? s.boxShadow : null,
  };
});

test("Tab reaches the nav links and a helper's buttons with a visible focus; Enter on Run now queues a run", async (t) => {
  const page = await openPage(browser);
  await goto(page, d.base, "helpers", '[data-testid="helpers-table"] [data-testid="run"]');
  // A route change focuses <main> (so Tab goes to the content); start from the top instead, as
  // a user does by clicking the header's empty padding: Tab then walks the header first.
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.mouse.click(640, 2);
  assert.equal(await page.evaluate(() => document.activeElement === document.body), true);
  const seen = [];
  let run = null;
  for (let i = 0; i < 60 && !run; i += 1) {
    await page.keyboard.press("Tab");
    const f = await describeFocus(page);
    seen.push(f);
    if (f.tag !== "body") {
      assert.ok(f.outline || f.shadow, `focused ${f.tag} "${f.text}" (${f.testid}) has no visible focus style`);
    }
    if (f.testid === "run" && f.row) run = f;
  }
  const walk = seen.map((f) => `${f.tag}:${f.testid ?? f.text}[${f.outline ?? f.shadow}]`).join(" > ");
  t.diagnostic(`Tab walk: ${walk}`);
  assert.ok(seen.some((f) => f.inNav && f.tag === "a"), `Tab never reached a nav link: ${walk}`);
  assert.ok(seen.some((f) => f.testid === "enable" || f.testid === "disable"), `Tab never reached Enable/Disable: ${walk}`);
  assert.ok(run, `Tab never reached a Run now button: ${walk}`);
  const name = run.row.replace(/^helper-row-/, "");
  const count = async () => (await api(d.base, "GET", `/v1/executions?helper=${encodeURIComponent(name)}&limit=1000`)).body.executions.length;
  const before = await count();
  await page.keyboard.press("Enter");
  await until(`one more execution of ${name}`, async () => (await count()) === before + 1);
  await page.waitForFunction((n) => new RegExp(`${n}: queued`).test(document.querySelector('[data-testid="notice"]').textContent), {}, name);
  assert.equal(await count(), before + 1);
  assert.deepEqual(page.problems, []);
  await page.close();
});

// Every control's accessible name, by the rules a screen reader uses for these elements:
// aria-labelledby, aria-label, a <label> (for= or wrapping), then text content or title.
const unnamedControls = (page) => page.evaluate(() => {
  const named = (el) => {
    const by = el.getAttribute("aria-labelledby");
    if (by && by.split(/\s+/).some((id) => document.getElementById(id)?.textContent.trim())) return true;
    if (el.getAttribute("aria-label")?.trim()) return true;
    if (el.labels && [...el.labels].some((l) => l.textContent.trim())) return true;
    if (el.tagName === "BUTTON" && el.textContent.trim()) return true;
    if (el.getAttribute("title")?.trim()) return true;
    return false;
  };
  return [...document.querySelectorAll("main input, main select, main textarea, main button")]
    .filter((el) => el.type !== "hidden" && !named(el))
    .map((el) => el.outerHTML.slice(0, 160));
});

test("every input, select, textarea and button on Helpers, Queue and Tickets has an accessible name", async () => {
  const page = await openPage(browser);
  await page.evaluateOnNewDocument(() => sessionStorage.setItem("schedd.project", "a11y"));
  assert.equal((await api(d.base, "POST", "/v1/projects/a11y/tickets", { ticket: "N1", params: { duration: "30s", steps: 2 } })).status, 201);
  const pages = [
    ["helpers", '[data-testid="helpers-table"] [data-testid="run"]'],
    ["queue", '[data-testid="queue-table"]'],
    ["tickets", '[data-testid="tickets-table"]'],
  ];
  const missing = [];
  for (const [route, ready] of pages) {
    await goto(page, d.base, route, ready);
    if (route === "helpers") {
      // The edit form's fields too.
      await page.click('[data-testid="edit-schedule"]');
      await page.waitForSelector('[data-testid="schedule-form"]');
    }
    const count = await page.$$eval("main input, main select, main textarea, main button", (els) => els.length);
    assert.ok(count > 2, `#/${route}: only ${count} controls found`);
    for (const html of await unnamedControls(page)) missing.push(`#/${route}: ${html}`);
  }
  if (missing.length) console.log(`controls without an accessible name:\n${missing.join("\n")}`);
  assert.deepEqual(missing, []);
  assert.deepEqual(page.problems, []);
  await page.close();
});
