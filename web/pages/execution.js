// One execution: status, timeline, message, output and log, and while it runs a progress
// bar fed by the stream's progress events for its id (and the record's own progress).

import { h, clear, time, statusBadge, throttle } from "/ui/lib/dom.js";
import { get, post, enc } from "/ui/lib/api.js";

export default function mount(root, params, ctx) {
  const id = params.join("/");
  const head = h("h1", { id: "page-title" }, "Execution ", h("code", {}, id));
  const body = h("div", { "data-testid": "execution-body" }, h("p", { class: "muted" }, "Loading..."));
  const progress = h("progress", { max: 1, value: 0, id: "exec-progress", "data-testid": "exec-progress" });
  const progressMsg = h("span", { "data-testid": "exec-progress-message", class: "progress-msg", "aria-live": "polite" });
  const progressBox = h("div", { class: "card progress-box", "data-testid": "progress-box", hidden: true },
    h("label", { for: "exec-progress" }, "Progress"), progress, progressMsg);
  root.append(head, progressBox, body);
  let rec = null;
  let lastAt = "";

  function setProgress(p) {
    if (!p || (lastAt && p.at && p.at < lastAt)) return;
    lastAt = p.at || lastAt;
    progressBox.hidden = false;
    if (p.fraction === null || p.fraction === undefined) {
      progress.removeAttribute("value"); // indeterminate
      progress.dataset.value = "";
    } else {
      progress.value = p.fraction;
      progress.dataset.value = String(p.fraction);
    }
    const pct = p.fraction === null || p.fraction === undefined ? "" : `${Math.round(p.fraction * 100)}% `;
    progressMsg.textContent = `${pct}${p.message || ""}`;
  }

  async function load() {
    try {
      rec = await get(`/v1/executions/${enc(id)}`);
    } catch (e) {
      clear(body, h("p", { class: "error", role: "alert", "data-testid": "execution-error" }, e.status === 404 ? `No execution ${id} (it may have left history).` : e.message));
      return;
    }
    render();
  }

  function render() {
    const x = rec;
    if (x.status === "running") setProgress(x.progress);
    else if (x.status !== "queued" && !progressBox.hidden) {
      if (x.status === "succeeded") { progress.value = 1; progress.dataset.value = "1"; }
    }
    const kv = (k, v) => [h("dt", {}, k), h("dd", {}, v)];
    const running = x.status === "running", queued = x.status === "queued";
    clear(body, 
      h("div", { class: "toolbar" }, statusBadge(x.status),
        queued || running ? h("button", { type: "button", "data-mutates": "", class: running ? "danger" : "", "data-testid": "exec-cancel", onclick: cancel }, running ? "Stop" : "Cancel") : null),
      h("div", { class: "grid" },
        h("section", { class: "card", "aria-labelledby": "d-h" }, h("h2", { id: "d-h" }, "Details"),
          h("dl", { class: "kv" },
            kv("Name", x.name), kv("Origin", x.origin), kv("Executor", x.executor), kv("Key", x.key), kv("Lane", x.lane),
            kv("Priority", String(x.priority)), kv("Attempt", `${x.attempt} of ${x.max_attempts}`),
            x.position ? kv("Position", `#${x.position}`) : null,
            x.project ? kv("Ticket", `${x.project} / ${x.ticket}`) : null,
            kv("Node", x.node || "-"), kv("Timeout", x.timeout || "-"), kv("Expires", time(x.expires)),
            kv("Params", h("code", {}, JSON.stringify(x.params || {}))))),
        h("section", { class: "card", "aria-labelledby": "t-h" }, h("h2", { id: "t-h" }, "Timeline"),
          h("ol", { class: "timeline", "data-testid": "timeline" }, timeline(x)))),
      x.message ? h("section", { class: "card", "aria-labelledby": "m-h" }, h("h2", { id: "m-h" }, x.status === "failed" || x.status === "timed_out" ? "Error" : "Message"),
        h("p", { "data-testid": "exec-message", class: x.status === "failed" ? "error" : "" }, x.message)) : null,
      h("section", { class: "card", "aria-labelledby": "o-h" }, h("h2", { id: "o-h" }, "Output (tail)"),
        h("pre", { "data-testid": "exec-output", tabindex: "0" }, tail(x.output) || "(none)")),
      x.log?.length ? h("section", { class: "card", "aria-labelledby": "l-h" }, h("h2", { id: "l-h" }, "Log (latest lines)"),
        h("pre", { "data-testid": "exec-log", tabindex: "0" }, x.log.join("\n"))) : null);
  }

  function timeline(x) {
    const events = [...(x.timeline || [])];
    const items = events.map((e) => {
      let label = e.event;
      if (e.event === "started" && x.node) label = `started on ${x.node}`;
      if (e.event === "not_before") label = "retry not before";
      return h("li", { "data-event": e.event }, h("span", { class: "ev" }, label), " ", time(e.at),
        e.attempt ? h("small", { class: "muted" }, ` attempt ${e.attempt}`) : null);
    });
    const has = (ev) => events.some((e) => e.event === ev);
    if (x.status === "queued" && x.not_before && x.attempt > 1 && !has("not_before")) items.push(h("li", {}, "next retry ", time(x.not_before, { relative: true })));
    if (x.status === "running" && x.started && !has("started")) items.push(h("li", {}, `started on ${x.node}`, " ", time(x.started)));
    if (x.finished && !events.some((e) => e.event === x.status)) items.push(h("li", {}, x.status, " ", time(x.finished)));
    return items.length ? items : h("li", { class: "muted" }, "no events");
  }

  async function cancel() {
    try {
      const r = await post(`/v1/executions/${enc(id)}/cancel`, rec.status === "running" ? { stop: true } : {});
      ctx.notice(rec.status === "running" ? "stop requested" : `cancelled${r?.status ? `: ${r.status}` : ""}`);
    } catch (e) {
      ctx.notice(e.message, "error");
    }
    load();
  }

  load();
  const soon = throttle(load, 1000);
  return {
    refresh: load,
    stats: () => { if (!rec || rec.status === "queued" || rec.status === "running") soon(); },
    progress: (p) => { if (p.id === id) { setProgress(p); soon(); } },
  };
}

function tail(text, lines = 200) {
  if (!text) return "";
  const all = text.split("\n");
  return all.length > lines ? `... (${all.length - lines} earlier lines)\n${all.slice(-lines).join("\n")}` : text;
}
