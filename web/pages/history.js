// History: finished executions with their messages, by status ("all finished" merges one
// request per final status: the API filters by a single status); "Clear completed" deletes
// them (DELETE /v1/history), leaving the queue alone.

import { h, clear, time, statusBadge, throttle, field, table } from "/ui/lib/dom.js";
import { get, del, qs, enc } from "/ui/lib/api.js";

const FINAL = ["succeeded", "failed", "timed_out", "expired", "cancelled", "interrupted", "skipped"];
const PAGE = 50;

export default function mount(root, _params, ctx) {
  let status = "";
  let cursors = [""];
  let page = 0;
  let next = null;
  let lastSig = "";

  const sel = h("select", { "data-testid": "history-status" }, h("option", { value: "" }, "all finished"), FINAL.map((s) => h("option", { value: s }, s)));
  sel.addEventListener("change", () => { status = sel.value; cursors = [""]; page = 0; load(); });
  const clearBtn = h("button", { type: "button", class: "danger", "data-mutates": "", "data-testid": "clear-history", onclick: clearHistory }, "Clear completed");
  const prevBtn = h("button", { type: "button", class: "secondary", "data-testid": "prev-page", onclick: () => { page -= 1; load(); } }, "Previous page");
  const nextBtn = h("button", { type: "button", class: "secondary", "data-testid": "next-page", onclick: () => { cursors[page + 1] = next; page += 1; load(); } }, "Next page");
  const info = h("p", { class: "muted", "data-testid": "history-info", "aria-live": "polite" });
  const list = h("div", { "data-testid": "history-list" });
  root.append(h("h1", { id: "page-title" }, "History"),
    h("div", { class: "toolbar" }, field("Status", sel).wrap, clearBtn, prevBtn, nextBtn), info, list);

  async function load() {
    let items;
    try {
      if (status) {
        const r = await get(`/v1/executions${qs({ status, limit: PAGE, cursor: cursors[page] })}`);
        items = r.executions;
        next = r.next_cursor;
      } else {
        const all = await Promise.all(FINAL.map((s) => get(`/v1/executions${qs({ status: s, limit: PAGE })}`)));
        items = all.flatMap((r) => r.executions);
        items.sort((a, b) => String(b.finished).localeCompare(String(a.finished)));
        next = null;
        const more = all.some((r) => r.next_cursor);
        items = items.slice(0, PAGE * 2);
        info.dataset.more = String(more);
      }
    } catch (e) {
      clear(list, h("p", { class: "error", role: "alert" }, `history: ${e.message}`));
      return;
    }
    const sig = JSON.stringify([status, page, items, ctx.access()]);
    if (sig === lastSig) return;
    lastSig = sig;
    prevBtn.hidden = nextBtn.hidden = !status;
    prevBtn.disabled = page === 0;
    nextBtn.disabled = !next;
    info.textContent = status ? `page ${page + 1}: ${items.length} ${status}` : `${items.length} most recent finished executions${info.dataset.more === "true" ? " (choose a status to page through all)" : ""}`;
    if (!items.length) {
      clear(list, h("p", { class: "muted", "data-testid": "history-empty" }, "No finished executions."));
      return;
    }
    clear(list, table("history-table", ["Id", "Name", "Status", "Finished", "Attempt", "Message"], items.map((x) =>
      h("tr", { "data-testid": "history-row", "data-id": x.id, "data-status": x.status },
        h("td", {}, h("a", { href: `#/executions/${enc(x.id)}` }, x.id)),
        h("td", {}, x.name), h("td", {}, statusBadge(x.status)), h("td", {}, time(x.finished)),
        h("td", {}, `${x.attempt}/${x.max_attempts}`),
        h("td", { class: "msg", "data-testid": "history-message" }, x.message || ""))), "Finished executions"));
  }

  async function clearHistory() {
    try {
      const r = await del("/v1/history");
      ctx.notice(`history cleared: ${r.removed} removed`);
    } catch (e) {
      ctx.notice(`clear: ${e.message}`, "error");
    }
    cursors = [""];
    page = 0;
    lastSig = "";
    load();
  }

  load();
  const soon = throttle(load, 2000);
  return { refresh: () => { lastSig = ""; load(); }, stats: () => soon() };
}
