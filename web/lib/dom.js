// Small DOM helpers: elements are built with the DOM API (no HTML strings), which keeps the
// page within the daemon's Content-Security-Policy and safe from injected markup.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "value" && "value" in el) el.value = v;
    else if (k === "checked") el.checked = !!v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// Empties el, then appends children (null and false are skipped, unlike Element.append).
export function clear(el, ...children) {
  while (el.firstChild) el.firstChild.remove();
  return append(el, children);
}

let uid = 0;
export function nextId(prefix = "f") {
  uid += 1;
  return `${prefix}-${uid}`;
}

// A labelled form field: returns {wrap, input}.
export function field(label, input, hint) {
  if (!input.id) input.id = nextId("in");
  const wrap = h("div", { class: "field" }, h("label", { for: input.id }, label), input);
  if (hint) {
    const hid = nextId("hint");
    input.setAttribute("aria-describedby", hid);
    wrap.append(h("small", { id: hid, class: "hint" }, hint));
  }
  return { wrap, input };
}

// A time in the browser's zone, with the UTC instant in the title (shown on hover).
export function time(iso, { relative = false } = {}) {
  if (!iso) return h("span", { class: "muted" }, "-");
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return h("span", {}, iso);
  const local = d.toLocaleString(undefined, {
    year: "numeric", month: "short", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
  const text = relative ? `${local} (${ago(d)})` : local;
  return h("time", { datetime: d.toISOString(), title: `UTC ${d.toISOString()}` }, text);
}

export function ago(d) {
  const s = Math.round((d.getTime() - Date.now()) / 1000);
  const a = Math.abs(s);
  let t;
  if (a < 60) t = `${a}s`;
  else if (a < 3600) t = `${Math.round(a / 60)}m`;
  else if (a < 86400) t = `${Math.round(a / 3600)}h`;
  else t = `${Math.round(a / 86400)}d`;
  return s >= 0 ? `in ${t}` : `${t} ago`;
}

export function statusBadge(status) {
  return h("span", { class: `badge st-${status || "none"}`, "data-testid": "status" }, status || "-");
}

// A capacity bar: a <progress> with a visible "n/max" label; data-value and data-max mirror
// the numbers for tests and scripts.
export function bar(testid, label) {
  const id = nextId("bar");
  const progress = h("progress", { id, max: 1, value: 0, "data-testid": testid });
  const text = h("span", { class: "bar-text", "aria-hidden": "true" }, "0/0");
  const el = h("div", { class: "bar" },
    h("label", { for: id, class: "bar-label" }, label), progress, text);
  return {
    el,
    set(value, max) {
      const m = Math.max(1, Number(max) || 0);
      progress.max = m;
      progress.value = Math.min(Number(value) || 0, m);
      progress.dataset.value = String(value);
      progress.dataset.max = String(max);
      progress.classList.toggle("full", Number(value) >= Number(max) && Number(max) > 0);
      progress.setAttribute("aria-valuetext", `${value} of ${max}`);
      text.textContent = `${value}/${max}`;
    },
  };
}

// Calls fn at most once per `ms`, always eventually with the latest call.
export function throttle(fn, ms) {
  let timer = null;
  let last = 0;
  return (...args) => {
    const wait = Math.max(0, last + ms - Date.now());
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      last = Date.now();
      fn(...args);
    }, wait);
  };
}

export function table(testid, headers, rows, caption) {
  return h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
    h("table", { "data-testid": testid },
      h("caption", { class: "sr-only" }, caption),
      h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, rows)));
}
