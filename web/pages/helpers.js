// Helpers: every helper with its schedule (as written and in words), next run, last result
// and state; Enable, Disable, Run now, and a schedule editor that shows the API's
// validation error beside the field.

import { h, clear, time, statusBadge, throttle, nextId, table } from "/ui/lib/dom.js";
import { get, post, put, enc } from "/ui/lib/api.js";
import { toToml, inWords } from "/ui/lib/schedule.js";

export default function mount(root, _params, ctx) {
  const body = h("div", { "data-testid": "helpers-body" }, h("p", { class: "muted" }, "Loading..."));
  root.append(h("h1", { id: "page-title" }, "Helpers"), body);
  let editing = null; // name of the helper whose schedule form is open
  let gen = 0;
  let lastSig = "";

  async function load() {
    const my = ++gen;
    let list;
    try {
      list = (await get("/v1/helpers")).helpers;
    } catch (e) {
      clear(body, h("p", { class: "error", role: "alert" }, `helpers: ${e.message}`));
      return;
    }
    // The list carries each helper's last result; a daemon too old to send it gets one GET
    // per helper instead.
    const details = await Promise.all(list.map((x) => ("last" in x)
      ? { last: x.last ? [x.last] : [] }
      : get(`/v1/helpers/${enc(x.name)}`).catch(() => null)));
    if (my !== gen) return;
    if (editing && document.activeElement && body.contains(document.activeElement) &&
        document.activeElement.closest("[data-testid=schedule-form]")) return; // do not clobber typing
    const sig = JSON.stringify([list, details, editing, ctx.access()]);
    if (sig === lastSig) return;
    lastSig = sig;
    render(list, details);
  }

  function render(list, details) {
    const rows = list.map((x, i) => row(x, details[i]));
    clear(body, 
      list.length ? table("helpers-table", ["Name", "Schedule", "Next run", "Last result", "Enabled", "Actions"], rows, "Helpers")
        : h("p", { class: "muted" }, "No helpers are configured."));
  }

  function row(x, d) {
    const sched = x.schedule_override ?? x.schedule;
    const last = d && (d.last || d.last_results || d.recent || [])[0];
    const act = (label, fn, testid, extra = {}) =>
      h("button", { type: "button", "data-mutates": "", "data-testid": testid, onclick: fn, ...extra }, label);
    const tr = h("tr", { "data-testid": `helper-row-${x.name}`, "data-enabled": String(x.enabled) },
      h("th", { scope: "row" }, h("span", { class: "name" }, x.name),
        x.description ? h("small", { class: "desc" }, x.description) : null,
        h("small", { class: "muted" }, `${x.executor} · lane ${x.lane} · key ${x.key} · priority ${x.priority}`)),
      h("td", {}, h("code", { "data-testid": "schedule-written" }, toToml(sched)),
        h("div", { class: "words", "data-testid": "schedule-words" }, inWords(sched))),
      h("td", { "data-testid": "next-run" }, x.enabled ? time(x.next_due, { relative: true }) : h("span", { class: "muted" }, "disabled")),
      h("td", { "data-testid": "last-result" }, last
        ? h("a", { href: `#/executions/${enc(last.id)}` }, statusBadge(last.status), " ", time(last.finished || last.due))
        : h("span", { class: "muted" }, "none yet")),
      h("td", {}, h("span", { class: `badge ${x.enabled ? "st-succeeded" : "st-none"}`, "data-testid": "enabled" }, x.enabled ? "enabled" : "disabled")),
      h("td", { class: "actions" },
        act("Enable", () => toggle(x.name, true), "enable", x.enabled ? { disabled: true, "data-disabled-reason": "already enabled" } : {}),
        act("Disable", () => toggle(x.name, false), "disable", !x.enabled ? { disabled: true, "data-disabled-reason": "already disabled" } : {}),
        act("Run now", () => runNow(x.name), "run"),
        h("button", { type: "button", class: "secondary", "data-testid": "edit-schedule", "aria-expanded": String(editing === x.name),
          onclick: () => { editing = editing === x.name ? null : x.name; lastSig = ""; load(); } }, "Edit schedule")));
    if (editing !== x.name) return tr;
    return [tr, h("tr", { class: "edit-row" }, h("td", { colspan: 6 }, scheduleForm(x.name, sched)))];
  }

  function scheduleForm(name, sched) {
    const input = h("input", { type: "text", id: nextId("sched"), value: toToml(sched), size: 48, spellcheck: "false", "data-testid": "schedule-input", "aria-describedby": "" });
    const errId = nextId("err");
    const err = h("span", { id: errId, class: "field-error", role: "alert", "data-testid": "schedule-error" });
    input.setAttribute("aria-describedby", errId);
    const form = h("form", { class: "inline-form", "data-testid": "schedule-form" },
      h("label", { for: input.id }, `Schedule of ${name}`), input,
      h("button", { type: "submit", "data-mutates": "", "data-testid": "schedule-save" }, "Save"),
      h("button", { type: "button", class: "secondary", onclick: () => { editing = null; lastSig = ""; load(); } }, "Cancel"),
      err,
      h("small", { class: "hint" }, 'TOML inline table, e.g. { every = "30m" }, { time = "09:00", days = ["mon"] }, { cron = "*/5 * * * *" }'));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      err.textContent = "";
      input.removeAttribute("aria-invalid");
      try {
        const r = await put(`/v1/helpers/${enc(name)}/schedule`, { schedule: input.value });
        ctx.notice(`${name}: schedule saved, ${r.planned} planned`);
        editing = null;
        load();
      } catch (ex) {
        err.textContent = ex.message;
        input.setAttribute("aria-invalid", "true");
        input.focus();
      }
    });
    setTimeout(() => input.focus(), 0);
    return form;
  }

  async function toggle(name, on) {
    try {
      const r = await post(`/v1/helpers/${enc(name)}/${on ? "enable" : "disable"}`);
      ctx.notice(on ? `${name} enabled: ${r.planned} planned` : `${name} disabled: ${r.removed} removed`);
    } catch (e) {
      ctx.notice(`${name}: ${e.message}`, "error");
    }
    load();
  }

  async function runNow(name) {
    try {
      const r = await post(`/v1/helpers/${enc(name)}/run`);
      ctx.notice(`${name}: queued ${r.id} at position #${r.position}`);
    } catch (e) {
      ctx.notice(`${name}: ${e.message}`, "error");
    }
    load();
  }

  load();
  const soon = throttle(load, 2000);
  return { refresh: () => { lastSig = ""; load(); }, stats: () => soon() };
}
