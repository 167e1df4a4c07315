// Overview: capacity bars (overall and per lane), store health, throughput and start lag.
// Everything moves with the live stream: stats events set the bars; each change (at most
// every 5 s) and each heartbeat samples /metrics for the throughput and lag series. Until
// this tab has two samples of its own, the charts show the daemon's last 10 minutes
// (/v1/status `recent`), so a page opened now is not empty.

import { h, clear, bar, throttle, time } from "/ui/lib/dom.js";
import { get } from "/ui/lib/api.js";

const WINDOW_MS = 10 * 60 * 1000;
// Samples survive page changes (kept for the tab's life), so the series keeps its history.
const series = [];

export default function mount(root, _params, ctx) {
  const running = bar("bar-running", "RUNNING");
  const queued = bar("bar-queued", "QUEUED");
  const lanesBody = h("div", { class: "lanes", "data-testid": "lanes" });
  const laneBars = new Map();
  const health = h("dl", { class: "kv", "data-testid": "health" });
  const tput = h("div", { class: "spark", "data-testid": "throughput" });
  const lag = h("div", { class: "spark", "data-testid": "lag" });
  let capacityQueued = null;
  let recent = null; // /v1/status `recent`: the daemon's last 10 minutes

  root.append(
    h("h1", { id: "page-title" }, "Overview"),
    h("div", { class: "grid" },
      h("section", { class: "card", "aria-labelledby": "cap-h" },
        h("h2", { id: "cap-h" }, "Capacity"), running.el, queued.el),
      h("section", { class: "card", "aria-labelledby": "health-h" },
        h("h2", { id: "health-h" }, "Daemon and store"), health)),
    h("section", { class: "card", "aria-labelledby": "lanes-h" },
      h("h2", { id: "lanes-h" }, "Lanes"), lanesBody),
    h("div", { class: "grid" },
      h("section", { class: "card", "aria-labelledby": "tput-h" },
        h("h2", { id: "tput-h" }, "Throughput (finished runs per minute, last 10 min)"), tput),
      h("section", { class: "card", "aria-labelledby": "lag-h" },
        h("h2", { id: "lag-h" }, "Start lag (mean seconds, last 10 min)"), lag)));

  function laneRow(name) {
    let row = laneBars.get(name);
    if (!row) {
      const r = bar(`lane-running-${name}`, "running");
      const q = bar(`lane-queued-${name}`, "queued");
      const el = h("div", { class: "lane", "data-testid": `lane-${name}` }, h("h3", {}, name), r.el, q.el);
      lanesBody.append(el);
      row = { r, q, el };
      laneBars.set(name, row);
    }
    return row;
  }

  function stats(s) {
    const qcap = s.queuedCapacity ?? capacityQueued ?? 0;
    running.set(s.running, s.runningCapacity);
    queued.set(s.queued, qcap);
    const names = Object.keys(s.lanes || {});
    for (const [name, row] of laneBars) if (!names.includes(name)) { row.el.remove(); laneBars.delete(name); }
    for (const name of names) {
      const l = s.lanes[name];
      const row = laneRow(name);
      row.r.set(l.running, l.runningCapacity);
      row.q.set(l.queued, qcap);
    }
    sampleSoon();
  }

  async function loadStatus() {
    const kv = (k, v, testid) => [h("dt", {}, k), h("dd", { "data-testid": testid }, v)];
    let status, ready;
    try {
      [status, ready] = await Promise.all([get("/v1/status"), readyz()]);
    } catch (e) {
      clear(health, h("p", { class: "error", role: "alert" }, `status: ${e.message}`));
      return;
    }
    capacityQueued = status.capacity?.queued;
    recent = status.recent || null;
    drawSeries();
    const started = new Date(Date.parse(status.time) - status.uptime_seconds * 1000);
    const storeOk = ready.checks?.store === "ok";
    clear(health, 
      ...kv("Store", h("span", {}, h("span", { class: `dot ${storeOk ? "ok" : "bad"}`, "aria-hidden": "true" }),
        `${status.store}: ${ready.checks?.store ?? "unknown"}`), "store-health"),
      ...kv("Ready", ready.ready ? "yes" : "no", "ready"),
      ...kv("Plugins", ready.checks?.plugins ?? `${status.executors} executors`, "plugins"),
      ...kv("Helpers", `${status.helpers.total} (${status.helpers.enabled} enabled)`, "helpers-count"),
      ...kv("Node", status.node, "node"),
      ...kv("Version", `${status.version} (plugin ABI ${status.plugin_abi})`, "version"),
      ...kv("Started", time(started.toISOString(), { relative: true }), "started"),
      ...kv("Stream clients", String(status.stream_clients), "stream-clients"));
  }

  async function readyz() {
    const res = await fetch("/readyz", { cache: "no-store" });
    return res.json();
  }

  async function sample() {
    let text;
    try {
      const res = await fetch("/metrics", { cache: "no-store" });
      if (!res.ok) return;
      text = await res.text();
    } catch {
      return;
    }
    const m = parseMetrics(text);
    const now = Date.now();
    const prev = series[series.length - 1];
    if (prev && m.finished >= prev.finished && now - prev.at > 500) {
      const dt = (now - prev.at) / 60000;
      const dn = m.lagCount - prev.lagCount;
      series.push({ ...m, at: now, perMin: (m.finished - prev.finished) / dt, lag: dn > 0 ? (m.lagSum - prev.lagSum) / dn : 0 });
    } else if (!prev || m.finished < prev.finished) {
      series.length = 0;
      series.push({ ...m, at: now, perMin: null, lag: null });
    }
    while (series.length && series[0].at < now - WINDOW_MS) series.shift();
    drawSeries();
  }
  const sampleSoon = throttle(sample, 5000);

  function drawSeries() {
    let pts = series.filter((x) => x.perMin !== null);
    if (pts.length < 2 && recent && Array.isArray(recent.series)) {
      const per = 60 / (recent.bucket_seconds || 10);
      pts = recent.series.map((b) => ({ at: Date.parse(b.at), perMin: b.finished * per, lag: b.lag_mean_seconds ?? 0 }));
    }
    spark(tput, pts.map((x) => [x.at, x.perMin]), (v) => `${v.toFixed(1)}/min`);
    spark(lag, pts.map((x) => [x.at, x.lag]), (v) => `${v.toFixed(2)} s`);
  }

  loadStatus();
  sample();
  drawSeries();
  return {
    stats,
    heartbeat: () => sample(),
    refresh: () => { loadStatus(); sample(); },
  };
}

// Counters from the Prometheus text: finished runs and the start-lag histogram's sum/count.
export function parseMetrics(text) {
  let finished = 0, lagSum = 0, lagCount = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const sp = line.lastIndexOf(" ");
    const v = Number(line.slice(sp + 1));
    if (line.startsWith("schedd_executions_total")) finished += v;
    else if (line.startsWith("schedd_start_lag_seconds_sum")) lagSum += v;
    else if (line.startsWith("schedd_start_lag_seconds_count")) lagCount += v;
  }
  return { finished, lagSum, lagCount };
}

const SVGNS = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

// An inline SVG sparkline drawn with DOM calls, with the latest value as text beside it.
function spark(host, points, fmt) {
  clear(host);
  const W = 300, H = 60;
  if (points.length < 2) {
    host.append(h("p", { class: "muted" }, points.length ? `now ${fmt(points[0][1])}; collecting samples...` : "collecting samples..."));
    return;
  }
  const t0 = points[0][0], t1 = points[points.length - 1][0];
  const max = Math.max(...points.map((p) => p[1]), 1e-9);
  const xy = points.map(([t, v]) => [((t - t0) / Math.max(1, t1 - t0)) * (W - 4) + 2, H - 4 - (v / max) * (H - 8)]);
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", height: H, role: "img", "aria-label": `latest ${fmt(points[points.length - 1][1])}, max ${fmt(max)}` });
  s.append(svg("polyline", { points: xy.map((p) => p.join(",")).join(" "), fill: "none", class: "spark-line", "stroke-width": 2 }));
  const last = xy[xy.length - 1];
  s.append(svg("circle", { cx: last[0], cy: last[1], r: 3, class: "spark-dot" }));
  host.append(s, h("p", { class: "spark-text" }, `latest ${fmt(points[points.length - 1][1])} (max ${fmt(max)})`));
}
