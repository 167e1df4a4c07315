// Tickets: one project's tickets (the project name is remembered in sessionStorage) with
// their queue status: "Queued (#N)", "Executing" or "-"; Cancel and Stop per row; a form
// that queues a ticket.

import { h, clear, time, statusBadge, throttle, field, table } from "/ui/lib/dom.js";
import { get, post, del, qs, enc } from "/ui/lib/api.js";

const PROJECT_KEY = "schedd.project";

export default function mount(root, _params, ctx) {
  let project = sessionStorage.getItem(PROJECT_KEY) || "";
  let lastSig = "";

  const pInput = h("input", { type: "text", value: project, required: true, pattern: "[A-Za-z0-9_.\\-]{1,128}", "data-testid": "project-input" });
  const pForm = h("form", { class: "inline-form", "data-testid": "project-form" },
    field("Project", pInput).wrap, h("button", { type: "submit", "data-testid": "project-load" }, "Show tickets"));
  pForm.addEventListener("submit", (e) => {
    e.preventDefault();
    project = pInput.value.trim();
    sessionStorage.setItem(PROJECT_KEY, project);
    lastSig = "";
    load();
  });

  const tInput = h("input", { type: "text", required: true, pattern: "[A-Za-z0-9_.\\-]{1,128}", "data-testid": "ticket-input" });
  const tParams = h("input", { type: "text", spellcheck: "false", placeholder: '{"duration": "5s", "steps": 5}', "data-testid": "ticket-params" });
  const tErr = h("p", { class: "field-error", role: "alert", "data-testid": "ticket-error" });
  const tForm = h("form", { class: "inline-form", "data-testid": "ticket-form" },
    field("Ticket", tInput).wrap, field("Params (JSON, optional)", tParams).wrap,
    h("button", { type: "submit", "data-mutates": "", "data-testid": "ticket-submit" }, "Queue ticket"), tErr);
  tForm.addEventListener("submit", submitTicket);

  const title = h("h2", { id: "tl-h" }, "Tickets");
  const list = h("div", { "data-testid": "ticket-list" });
  root.append(h("h1", { id: "page-title" }, "Tickets"), pForm,
    h("section", { class: "card", "aria-labelledby": "qt-h" }, h("h2", { id: "qt-h" }, "Queue a ticket"), tForm),
    h("section", { "aria-labelledby": "tl-h" }, title, list));

  async function load() {
    if (!project) {
      clear(list, h("p", { class: "muted" }, "Enter a project name."));
      return;
    }
    // The project's queue (positions, the running one) plus its recent finished tickets.
    let queue = null, all = [];
    try {
      all = (await get(`/v1/executions${qs({ key: project, limit: 200 })}`)).executions.filter((x) => x.origin === "ticket");
      // 404 when the store has no ticket of the project: asked only when there is one.
      if (all.length) queue = await get(`/v1/projects/${enc(project)}/tickets`).catch((e) => { if (e.status === 404) return null; throw e; });
    } catch (e) {
      clear(list, h("p", { class: "error", role: "alert" }, `tickets: ${e.message}`));
      return;
    }
    const sig = JSON.stringify([project, queue, all, ctx.access()]);
    if (sig === lastSig) return;
    lastSig = sig;
    const byId = new Map(all.map((x) => [x.id, x]));
    if (queue?.running) byId.set(queue.running.id, queue.running);
    for (const x of queue?.queue || []) byId.set(x.id, x);
    const items = [...byId.values()].sort((a, b) => rank(a) - rank(b) || (a.position ?? 0) - (b.position ?? 0) || String(b.created).localeCompare(String(a.created)));
    title.textContent = `Tickets of ${project}${queue ? `: ${queue.queued} queued, ${queue.running ? 1 : 0} running` : ""}`;
    if (!items.length) {
      clear(list, h("p", { class: "muted", "data-testid": "tickets-empty" }, `No tickets for project ${project}.`));
      return;
    }
    clear(list, table("tickets-table", ["Ticket", "Queue status", "Status", "Created", "Finished", "Message", "Actions"], items.map(row), `Tickets of ${project}`));
  }

  function rank(x) {
    return x.status === "running" ? 0 : x.status === "queued" ? 1 : 2;
  }

  function row(x) {
    const ticket = x.ticket || x.id.slice(project.length + 1);
    const qstatus = x.status === "queued" ? `Queued (#${x.position ?? "?"})` : x.status === "running" ? "Executing" : "-";
    const queued = x.status === "queued", running = x.status === "running";
    return h("tr", { "data-testid": "ticket-row", "data-ticket": ticket, "data-status": x.status },
      h("th", { scope: "row" }, h("a", { href: `#/executions/${enc(x.id)}` }, ticket)),
      h("td", { "data-testid": "queue-status" }, qstatus),
      h("td", {}, statusBadge(x.status)),
      h("td", {}, time(x.created)),
      h("td", {}, time(x.finished)),
      h("td", { class: "msg" }, x.progress?.message || x.message || ""),
      h("td", { class: "actions" },
        h("button", { type: "button", "data-mutates": "", "data-testid": "ticket-cancel", disabled: !queued, "data-disabled-reason": queued ? null : "not queued",
          "aria-label": `Cancel ticket ${ticket}`, onclick: () => cancel(ticket, false) }, "Cancel"),
        h("button", { type: "button", "data-mutates": "", class: "danger", "data-testid": "ticket-stop", disabled: !running, "data-disabled-reason": running ? null : "not running",
          "aria-label": `Stop ticket ${ticket}`, onclick: () => cancel(ticket, true) }, "Stop")));
  }

  async function cancel(ticket, stop) {
    try {
      const r = await del(`/v1/projects/${enc(project)}/tickets/${enc(ticket)}${stop ? "?stop=true" : ""}`);
      ctx.notice(r?.message || (stop ? `stop requested for ${ticket}` : `${ticket} cancelled`));
    } catch (e) {
      ctx.notice(`${ticket}: ${e.message}`, "error");
    }
    load();
  }

  async function submitTicket(e) {
    e.preventDefault();
    tErr.textContent = "";
    if (!project) {
      tErr.textContent = "Choose a project first.";
      pInput.focus();
      return;
    }
    const body = { ticket: tInput.value.trim() };
    if (tParams.value.trim()) {
      try {
        body.params = JSON.parse(tParams.value);
      } catch (ex) {
        tErr.textContent = `params: not JSON (${ex.message})`;
        tParams.focus();
        return;
      }
    }
    try {
      const r = await post(`/v1/projects/${enc(project)}/tickets`, body);
      ctx.notice(r.message || `ticket ${body.ticket} queued`);
      tInput.value = "";
      load();
    } catch (ex) {
      tErr.textContent = ex.message;
    }
  }

  load();
  const soon = throttle(load, 500);
  return { refresh: () => { lastSig = ""; load(); }, stats: () => soon(), progress: (p) => { if (p.key === project) soon(); } };
}
