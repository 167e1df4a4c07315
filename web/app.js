// schedd dashboard: a hash-routed single-page app in plain ES modules (no build step). Each
// page module exports mount(root, params, ctx) and returns hooks the app calls: stats(s) and
// progress(p) from the live stream, refresh() after a reconnect or a token change, unmount().

import { h, clear } from "/ui/lib/dom.js";
import { get, setToken, token, onUnauthorized } from "/ui/lib/api.js";
import { Live } from "/ui/lib/live.js";
import overview from "/ui/pages/overview.js";
import helpers from "/ui/pages/helpers.js";
import queue from "/ui/pages/queue.js";
import tickets from "/ui/pages/tickets.js";
import execution from "/ui/pages/execution.js";
import history from "/ui/pages/history.js";

const READ_ONLY = "read-only token: changes need the full token";

const routes = [
  { path: "overview", title: "Overview", mount: overview },
  { path: "helpers", title: "Helpers", mount: helpers },
  { path: "queue", title: "Queue", mount: queue },
  { path: "tickets", title: "Tickets", mount: tickets },
  { path: "history", title: "History", mount: history },
  { path: "executions", title: "Execution", mount: execution, hidden: true },
];

const state = { access: "full", tokens: false, page: null };
const live = new Live();

const view = document.getElementById("view");
const nav = document.getElementById("nav");
const connEl = document.getElementById("conn");
const accessEl = document.getElementById("access");
const authEl = document.getElementById("auth");
const noticeEl = document.getElementById("notice");

// ---- notices -------------------------------------------------------------------------------
let noticeTimer = null;
export function notice(text, kind = "ok") {
  noticeEl.textContent = text;
  noticeEl.className = `notice ${kind}`;
  noticeEl.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { noticeEl.hidden = true; }, 8000);
}

// ---- access: read-only tokens disable every control marked data-mutates ---------------------
function applyAccess(root = document) {
  const ro = state.access === "read";
  for (const el of root.querySelectorAll("[data-mutates]")) {
    if (ro) {
      el.disabled = true;
      el.title = READ_ONLY;
      el.dataset.readonly = "true";
    } else if (el.dataset.readonly) {
      delete el.dataset.readonly;
      el.disabled = el.dataset.disabledReason ? true : false;
      el.removeAttribute("title");
    }
  }
  document.getElementById("readonly-note").hidden = !ro;
}
new MutationObserver(() => applyAccess()).observe(view, { childList: true, subtree: true });

function renderAccess() {
  const labels = { full: "full access", read: "read-only", anonymous: "no token" };
  accessEl.textContent = state.tokens ? labels[state.access] || state.access : "no tokens needed";
  accessEl.dataset.access = state.access;
  applyAccess();
}

async function whoami() {
  try {
    const w = await get("/v1/whoami");
    state.access = w.access;
    state.tokens = !!w.tokens;
    renderAccess();
    if (w.tokens && w.access === "anonymous") showAuth("This daemon needs a token for changes. Reading works without one.");
    return true;
  } catch (e) {
    if (e.status !== 401) notice(`whoami: ${e.message}`, "error");
    return false;
  }
}

// ---- token prompt ---------------------------------------------------------------------------
const authForm = document.getElementById("auth-form");
const authInput = document.getElementById("auth-token");
const authMsg = document.getElementById("auth-msg");
function showAuth(message) {
  authEl.hidden = false;
  authMsg.textContent = message;
  if (document.activeElement === document.body || !document.activeElement) authInput.focus();
}
onUnauthorized((err) => {
  state.access = token() ? "anonymous" : state.access;
  showAuth(token() ? `The token was refused (${err.message}). Enter another one.`
                   : `A token is needed: ${err.message}.`);
});
authForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  const t = authInput.value.trim();
  if (!t) {
    authMsg.textContent = "Enter a token.";
    return;
  }
  setToken(t);
  authMsg.textContent = "Checking...";
  if (await whoami()) {
    authInput.value = "";
    authEl.hidden = true;
    notice(state.access === "read" ? "Signed in with the read-only token." : "Token accepted.");
    state.page?.refresh?.();
  }
});
document.getElementById("auth-forget").addEventListener("click", async () => {
  setToken("");
  authInput.value = "";
  await whoami();
  state.page?.refresh?.();
});
document.getElementById("auth-close").addEventListener("click", () => { authEl.hidden = true; });
document.getElementById("token-btn").addEventListener("click", () => showAuth("Enter the API token (kept in this tab's session storage only)."));

// ---- connection state -----------------------------------------------------------------------
live.addEventListener("state", (e) => {
  const labels = { live: "live", reconnecting: "reconnecting...", connecting: "connecting..." };
  connEl.textContent = labels[e.detail] || e.detail;
  connEl.dataset.state = e.detail;
});
live.addEventListener("stats", (e) => state.page?.stats?.(e.detail));
live.addEventListener("progress", (e) => state.page?.progress?.(e.detail));
live.addEventListener("heartbeat", (e) => state.page?.heartbeat?.(e.detail));
live.addEventListener("reconnect", async () => {
  await whoami();
  state.page?.refresh?.();
});

// ---- router ---------------------------------------------------------------------------------
function buildNav() {
  clear(nav);
  for (const r of routes.filter((x) => !x.hidden)) {
    nav.append(h("a", { href: `#/${r.path}`, "data-route": r.path, "data-testid": `nav-${r.path}` }, r.title));
  }
}

function route() {
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, ...rest] = hash.split("/");
  const r = routes.find((x) => x.path === path);
  if (!r) {
    location.replace("#/overview");
    return;
  }
  state.page?.unmount?.();
  state.page = null;
  for (const a of nav.querySelectorAll("a")) {
    if (a.dataset.route === path) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = `${r.title} - schedd`;
  clear(view);
  const root = h("section", { class: `page page-${r.path}`, "data-testid": `page-${r.path}`, "aria-labelledby": "page-title" });
  view.append(root);
  const params = rest.map((x) => decodeURIComponent(x));
  state.page = r.mount(root, params, { live, notice, access: () => state.access }) || {};
  if (live.stats) state.page.stats?.(live.stats);
  view.focus({ preventScroll: true });
}

buildNav();
window.addEventListener("hashchange", route);
await whoami();
live.start();
route();
