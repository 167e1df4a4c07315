// Helpers: every helper with its schedule (as written and in words), next run, last result
// and state; Enable, Disable, Run now, and an editor of its schedule, priority and expiry
// (PATCH /v1/helpers/NAME) that shows the API's validation error beside the field at fault.

import { h, clear, time, statusBadge, throttle, nextId, table } from "/ui/lib/dom.js";
import { get, post, patch, enc } from "/ui/lib/api.js";
import { toToml, inWords } from "/ui/lib/schedule.js";

export default function mount(root, _params, ctx) {
  const body = h("div", { "data-testid": "helpers-body" }, h("p", { class: "muted" }, "Loading..."));
  root.append(h("h1", { id: "page-title" }, "Helpers"), body);
  let editing = null; // name of the helper whose edit form is open
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
      h("button", { type: "button", "data-mutates": "", "data-testid": testid, "aria-label": `${label} ${x.name}`, onclick: fn, ...extra }, label);
    const tr = h("tr", { "data-testid": `helper-row-${x.name}`, "data-enabled": String(x.enabled) },
      h("th", { scope: "row" }, h("span", { class: "name" }, x.name),
        x.description ? h("small", { class: "desc" }, x.description) : null,
        h("small", { class: "muted", "data-testid": "helper-settings" },
          `${x.executor} · lane ${x.lane} · key ${x.key} · priority ${x.priority}${x.priority_override != null ? " (set)" : ""}` +
          (x.expiry ? ` · expiry ${x.expiry}${x.expiry_override != null ? " (set)" : ""}` : ""))),
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
          "aria-label": `Edit schedule, priority and expiry of ${x.name}`,
          onclick: () => { editing = editing === x.name ? null : x.name; lastSig = ""; load(); } }, "Edit")));
    if (editing !== x.name) return tr;
    return [tr, h("tr", { class: "edit-row" }, h("td", { colspan: 6 }, editForm(x, sched)))];
  }

  // One labelled input with its own error line (role=alert), for the API's message.
  function field(name, label, value, attrs) {
    const input = h("input", { id: nextId(name), value, spellcheck: "false", "data-testid": `${name}-input`, ...attrs });
    const err = h("span", { id: nextId("err"), class: "field-error", role: "alert", "data-testid": `${name}-error` });
    input.setAttribute("aria-describedby", err.id);
    return { input, err, el: h("span", { class: "field" }, h("label", { for: input.id }, label), input, err) };
  }

  // Sends only what changed; an empty priority or expiry puts the config's value back (null).
  function editForm(x, sched) {
    const name = x.name;
    const initial = {
      schedule: toToml(sched),
      priority: x.priority_override != null ? String(x.priority_override) : "",
      expiry: x.expiry_override ?? "",
    };
    const f = {
      schedule: field("schedule", `Schedule of ${name}`, initial.schedule, { type: "text", size: 40 }),
      priority: field("priority", "Priority", initial.priority,
        { type: "text", inputmode: "numeric", size: 3, placeholder: `${x.priority} (config)` }),
      expiry: field("expiry", "Expiry", initial.expiry,
        { type: "text", size: 6, placeholder: x.expiry ? `${x.expiry} (config)` : "config" }),
    };
    const form = h("form", { class: "inline-form", "data-testid": "schedule-form" },
      f.schedule.el, f.priority.el, f.expiry.el,
      h("button", { type: "submit", "data-mutates": "", "data-testid": "schedule-save" }, "Save"),
      h("button", { type: "button", class: "secondary", onclick: () => { editing = null; lastSig = ""; load(); } }, "Cancel"),
      h("small", { class: "hint" }, 'Schedule: a TOML inline table, e.g. { every = "30m" }, { time = "09:00", days = ["mon"] }, { cron = "*/5 * * * *" }. ' +
        "Priority 1 (highest) to 5 and expiry (such as 30m): empty for the config's value."));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      for (const k of Object.keys(f)) {
        f[k].err.textContent = "";
        f[k].input.removeAttribute("aria-invalid");
      }
      const body = {};
      const v = (k) => f[k].input.value.trim();
      if (v("schedule") !== initial.schedule.trim()) body.schedule = v("schedule");
      if (v("priority") !== initial.priority) body.priority = v("priority") === "" ? null : (/^-?\d+$/.test(v("priority")) ? Number(v("priority")) : v("priority"));
      if (v("expiry") !== initial.expiry) body.expiry = v("expiry") === "" ? null : v("expiry");
      if (!Object.keys(body).length) {
        editing = null;
        lastSig = "";
        load();
        return;
      }
      try {
        const r = await patch(`/v1/helpers/${enc(name)}`, body);
        ctx.notice(`${name}: saved, ${r.planned} planned`);
        editing = null;
        load();
      } catch (ex) {
        const at = f[ex.field] || f.schedule;
        at.err.textContent = ex.message;
        at.input.setAttribute("aria-invalid", "true");
        at.input.focus();
      }
    });
    setTimeout(() => f.schedule.input.focus(), 0);
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
