// Queue: executions filtered by helper, key, lane, status (default queued) and priority, one
// page at a time through the API's cursor; queued and planned ones in due order (order=due,
// a cursor the store pages without reading what lies before it). Per-row Cancel, a selection
// with "Cancel selected", "Clear queue" (cancel everything queued that the filter matches) and
// a bulk-add form (POST /v1/executions/bulk).

import { h, clear, time, statusBadge, throttle, field, table } from "/ui/lib/dom.js";
import { get, post, qs, enc } from "/ui/lib/api.js";

const STATUSES = ["queued", "planned", "running", "succeeded", "failed", "timed_out", "cancelled", "expired", "skipped", "interrupted"];
const PAGE = 50;

export default function mount(root, _params, ctx) {
  const filters = { status: "queued", helper: "", key: "", lane: "", priority: "" };
  let cursors = [""]; // cursors[i] is the cursor of page i
  let page = 0;
  let next = null;
  let lastSig = "";
  const selected = new Set();

  // ---- filters ----
  const fStatus = h("select", { "data-testid": "filter-status" }, STATUSES.map((s) => h("option", { value: s }, s)));
  const fHelper = h("input", { type: "text", "data-testid": "filter-helper", placeholder: "any" });
  const fKey = h("input", { type: "text", "data-testid": "filter-key", placeholder: "any" });
  const fLane = h("input", { type: "text", "data-testid": "filter-lane", placeholder: "any" });
  const fPriority = h("select", { "data-testid": "filter-priority" }, h("option", { value: "" }, "any"),
    [1, 2, 3, 4, 5].map((p) => h("option", { value: String(p) }, String(p))));
  const filterForm = h("form", { class: "filters", "data-testid": "queue-filters", role: "search" },
    field("Status", fStatus).wrap, field("Helper", fHelper).wrap, field("Key", fKey).wrap, field("Lane", fLane).wrap,
    field("Priority", fPriority).wrap,
    h("button", { type: "submit", "data-testid": "filter-apply" }, "Apply"));
  filterForm.addEventListener("submit", (e) => {
    e.preventDefault();
    Object.assign(filters, { status: fStatus.value, helper: fHelper.value.trim(), key: fKey.value.trim(), lane: fLane.value.trim(), priority: fPriority.value });
    cursors = [""];
    page = 0;
    selected.clear();
    load();
  });

  // ---- list ----
  const info = h("p", { class: "muted", "data-testid": "queue-info", "aria-live": "polite" });
  const list = h("div", { "data-testid": "queue-list" });
  const cancelSel = h("button", { type: "button", "data-mutates": "", "data-testid": "cancel-selected", onclick: cancelSelected }, "Cancel selected");
  const clearQueue = h("button", { type: "button", class: "danger", "data-mutates": "", "data-testid": "clear-queue", onclick: clearMatching,
    title: "Cancel every queued execution the filter's helper, key, lane and priority match" }, "Clear queue");
  const prevBtn = h("button", { type: "button", class: "secondary", "data-testid": "prev-page", onclick: () => { page -= 1; load(); } }, "Previous page");
  const nextBtn = h("button", { type: "button", class: "secondary", "data-testid": "next-page", onclick: () => { cursors[page + 1] = next; page += 1; load(); } }, "Next page");

  // ---- bulk add ----
  const bExec = h("input", { type: "text", required: true, "data-testid": "bulk-executor", list: "executors" });
  const bMode = h("select", { "data-testid": "bulk-mode" }, h("option", { value: "id" }, "execution ids"), h("option", { value: "key" }, "keys"));
  const bKey = h("input", { type: "text", "data-testid": "bulk-key", placeholder: "each its own" });
  const bLane = h("input", { type: "text", "data-testid": "bulk-lane", placeholder: "default" });
  const bParams = h("input", { type: "text", "data-testid": "bulk-params", placeholder: '{"duration": "10s"}', spellcheck: "false" });
  const bLines = h("textarea", { rows: 6, required: true, "data-testid": "bulk-lines", spellcheck: "false" });
  const bErr = h("p", { class: "field-error", role: "alert", "data-testid": "bulk-error" });
  const bulkForm = h("form", { class: "stack", "data-testid": "bulk-form" },
    h("div", { class: "row" }, field("Executor", bExec).wrap, field("Each line is", bMode).wrap,
      field("Shared key (optional)", bKey).wrap, field("Lane (optional)", bLane).wrap),
    field("Params (JSON object, optional)", bParams).wrap,
    field("One per line", bLines, "Up to 1,000 lines; all are queued or none.").wrap,
    h("button", { type: "submit", "data-mutates": "", "data-testid": "bulk-submit" }, "Queue all"), bErr);
  bulkForm.addEventListener("submit", submitBulk);

  root.append(
    h("h1", { id: "page-title" }, "Queue"),
    h("datalist", { id: "executors" }),
    filterForm,
    h("div", { class: "toolbar" }, cancelSel, clearQueue, prevBtn, nextBtn, info),
    list,
    h("section", { class: "card", "aria-labelledby": "bulk-h" }, h("h2", { id: "bulk-h" }, "Bulk add"), bulkForm));

  async function load() {
    // Queued and planned ones in due order; the rest by id.
    const due = filters.status === "queued" || filters.status === "planned";
    const q = { ...filters, order: due ? "due" : "", limit: PAGE, cursor: cursors[page] || "" };
    let r;
    try {
      r = await get(`/v1/executions${qs(q)}`);
    } catch (e) {
      clear(list, h("p", { class: "error", role: "alert" }, `executions: ${e.message}`));
      return;
    }
    next = r.next_cursor;
    const sig = JSON.stringify([r, [...selected], ctx.access()]);
    if (sig === lastSig) return;
    lastSig = sig;
    const ids = new Set(r.executions.map((x) => x.id));
    for (const id of [...selected]) if (!ids.has(id)) selected.delete(id);
    render(r.executions);
  }

  function render(items) {
    prevBtn.disabled = page === 0;
    nextBtn.disabled = !next;
    const due = filters.status === "queued" || filters.status === "planned";
    info.textContent = `page ${page + 1}: ${items.length} shown${due ? " in due order" : ""}${next ? ", more on the next page" : ""}`;
    updateSel();
    if (!items.length) {
      clear(list, h("p", { class: "muted", "data-testid": "queue-empty" }, "Nothing matches."));
      return;
    }
    const all = h("input", { type: "checkbox", "aria-label": "Select all on this page", "data-testid": "select-all",
      checked: items.every((x) => selected.has(x.id)),
      onchange: (e) => { for (const x of items) e.target.checked ? selected.add(x.id) : selected.delete(x.id); lastSig = ""; render(items); } });
    const rows = items.map((x) => {
      const cancellable = x.status === "queued" || x.status === "running";
      const box = h("input", { type: "checkbox", "aria-label": `Select ${x.id}`, "data-testid": "select", checked: selected.has(x.id), disabled: !cancellable,
        onchange: (e) => { e.target.checked ? selected.add(x.id) : selected.delete(x.id); updateSel(); } });
      return h("tr", { "data-testid": "queue-row", "data-id": x.id, "data-status": x.status },
        h("td", {}, box),
        h("td", {}, h("a", { href: `#/executions/${enc(x.id)}` }, x.id)),
        h("td", {}, x.name), h("td", {}, x.key), h("td", {}, x.lane), h("td", {}, String(x.priority)),
        h("td", {}, statusBadge(x.status)),
        h("td", {}, x.position ? `#${x.position}` : "-"),
        h("td", {}, time(x.due, { relative: true })),
        h("td", {}, h("button", { type: "button", "data-mutates": "", "data-testid": "cancel", onclick: () => cancel(x),
          disabled: !cancellable, "data-disabled-reason": cancellable ? null : "finished",
          "aria-label": `${x.status === "running" ? "Stop" : "Cancel"} ${x.id}` }, x.status === "running" ? "Stop" : "Cancel")));
    });
    clear(list, table("queue-table", [all, "Id", "Name", "Key", "Lane", "Priority", "Status", "Position", "Due", "Action"], rows, "Executions"));
  }

  function updateSel() {
    cancelSel.textContent = `Cancel selected (${selected.size})`;
    if (!cancelSel.dataset.readonly) cancelSel.disabled = selected.size === 0;
  }

  async function cancel(x) {
    try {
      await post(`/v1/executions/${enc(x.id)}/cancel`, x.status === "running" ? { stop: true } : {});
      ctx.notice(x.status === "running" ? `stop requested for ${x.id}` : `${x.id} cancelled`);
    } catch (e) {
      ctx.notice(`${x.id}: ${e.message}`, "error");
    }
    load();
  }

  async function cancelSelected() {
    const ids = [...selected];
    const results = await Promise.allSettled(ids.map((id) => post(`/v1/executions/${enc(id)}/cancel`, {})));
    const failed = results.map((r, i) => [r, ids[i]]).filter(([r]) => r.status === "rejected");
    selected.clear();
    ctx.notice(failed.length ? `${ids.length - failed.length} cancelled; ${failed.length} not: ${failed[0][0].reason.message}` : `${ids.length} cancelled`, failed.length ? "error" : "ok");
    lastSig = "";
    load();
  }

  // "Clear queue": a second click within 5 s confirms.
  let armed = null;
  async function clearMatching() {
    if (!armed) {
      clearQueue.textContent = "Click again to cancel all that match";
      armed = setTimeout(() => { armed = null; clearQueue.textContent = "Clear queue"; }, 5000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    clearQueue.textContent = "Clear queue";
    const body = {};
    for (const k of ["helper", "key", "lane"]) if (filters[k]) body[k] = filters[k];
    if (filters.priority) body.priority = Number(filters.priority);
    try {
      const r = await post("/v1/executions/cancel", body);
      ctx.notice(`${r.cancelled} cancelled`);
    } catch (e) {
      ctx.notice(`clear queue: ${e.message}`, "error");
    }
    selected.clear();
    lastSig = "";
    load();
  }

  async function submitBulk(e) {
    e.preventDefault();
    bErr.textContent = "";
    const lines = bLines.value.split("\n").map((x) => x.trim()).filter(Boolean);
    let params;
    if (bParams.value.trim()) {
      try {
        params = JSON.parse(bParams.value);
      } catch (ex) {
        bErr.textContent = `params: not JSON (${ex.message})`;
        bParams.focus();
        return;
      }
    }
    const executions = lines.map((line) => {
      const item = { executor: bExec.value.trim() };
      if (bMode.value === "id") item.id = line; else item.key = line;
      if (bKey.value.trim()) item.key = bKey.value.trim();
      if (bLane.value.trim()) item.lane = bLane.value.trim();
      if (params) item.params = params;
      return item;
    });
    try {
      const r = await post("/v1/executions/bulk", { executions });
      ctx.notice(`${r.count} executions queued`);
      bLines.value = "";
      lastSig = "";
      load();
    } catch (ex) {
      bErr.textContent = ex.message;
    }
  }

  get("/v1/helpers").then((r) => {
    const dl = root.querySelector("#executors");
    for (const x of new Set(r.helpers.map((y) => y.executor))) dl.append(h("option", { value: x }));
  }).catch(() => {});
  load();
  const soon = throttle(load, 1000);
  return { refresh: () => { lastSig = ""; load(); }, stats: () => soon() };
}
