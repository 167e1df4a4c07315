// Schedules: as written (a TOML inline table, the form PUT .../schedule accepts) and in words.

const DAYS = { mon: "Mon", tue: "Tue", wed: "Wed", thu: "Thu", fri: "Fri", sat: "Sat", sun: "Sun" };
const DOW = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

export function toToml(s) {
  if (typeof s === "string") return s;
  if (!s || typeof s !== "object") return "";
  const parts = [];
  for (const [k, v] of Object.entries(s)) {
    if (v === null || v === undefined || v === "" || (k === "jitter" && v === "0s")) continue;
    parts.push(`${k} = ${tomlValue(v)}`);
  }
  return `{ ${parts.join(", ")} }`;
}

function tomlValue(v) {
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(", ")}]`;
  if (typeof v === "object") return toToml(v);
  if (typeof v === "string") return JSON.stringify(v);
  return String(v);
}

// Reads a TOML inline table as the API echoes an override ('{ every = "15m" }') into an
// object; null when it is not that simple.
export function parseInline(text) {
  const t = String(text).trim();
  if (!t.startsWith("{") || !t.endsWith("}")) return null;
  const out = {};
  const re = /([A-Za-z_]+)\s*=\s*("(?:[^"\\]|\\.)*"|\[[^\]]*\]|\{[^}]*\}|[^,}\s]+)/g;
  for (const [, k, v] of t.slice(1, -1).matchAll(re)) {
    if (v.startsWith('"')) out[k] = JSON.parse(v);
    else if (v.startsWith("[")) out[k] = [...v.matchAll(/"([^"]*)"/g)].map((m) => m[1]);
    else if (v.startsWith("{")) out[k] = parseInline(v) || v;
    else out[k] = v;
  }
  return Object.keys(out).length ? out : null;
}

export function inWords(s) {
  if (typeof s === "string") {
    const o = parseInline(s);
    return o ? inWords(o) : s;
  }
  if (!s) return "";
  let w;
  if (s.every) w = `every ${duration(s.every)}`;
  else if (s.time) {
    w = `daily at ${s.time}`;
    if (Array.isArray(s.days) && s.days.length && s.days.length < 7) w = `at ${s.time} on ${s.days.map((d) => DAYS[d] || d).join(", ")}`;
  } else if (s.cron) w = cronWords(s.cron);
  else w = toToml(s);
  if (s.tz) w += ` (${s.tz})`;
  if (s.jitter && s.jitter !== "0s") w += `, up to ${duration(s.jitter)} late`;
  return w;
}

const UNITS = { ms: "millisecond", s: "second", m: "minute", h: "hour", d: "day" };
export function duration(d) {
  const parts = [...String(d).matchAll(/(\d+)(ms|s|m|h|d)/g)];
  if (!parts.length) return String(d);
  return parts.map(([, n, u]) => (n === "1" ? `1 ${UNITS[u]}` : `${n} ${UNITS[u]}s`)).join(" ");
}

const MACROS = {
  "@yearly": "once a year (Jan 1, 00:00)", "@annually": "once a year (Jan 1, 00:00)",
  "@monthly": "monthly on the 1st at 00:00", "@weekly": "weekly on Sunday at 00:00",
  "@daily": "daily at 00:00", "@midnight": "daily at 00:00", "@hourly": "every hour, on the hour",
};

export function cronWords(expr) {
  const e = expr.trim();
  if (MACROS[e]) return MACROS[e];
  let f = e.split(/\s+/);
  let sec = "0";
  if (f.length === 6) [sec, ...f] = f;
  if (f.length !== 5) return `cron ${e}`;
  const [min, hour, dom, mon, dow] = f;
  const pad = (x) => String(x).padStart(2, "0");
  const isNum = (x) => /^\d+$/.test(x);
  const step = (x) => /^\*\/(\d+)$/.exec(x)?.[1];
  const rest = [];
  if (dom !== "*") rest.push(`on day ${dom} of the month`);
  if (mon !== "*") rest.push(`in month ${mon}`);
  if (dow !== "*") rest.push(`on ${dow.split(",").map((d) => (isNum(d) ? DOW[Number(d)] : d)).join(", ")}`);
  const tail = rest.length ? ` ${rest.join(", ")}` : "";
  if (sec !== "0" && step(sec)) return `every ${step(sec)} seconds${tail}`;
  if (sec === "*") return `every second${tail}`;
  if (min === "*" && hour === "*") return `every minute${tail}`;
  if (step(min) && hour === "*") return `every ${step(min)} minutes${tail}`;
  if (isNum(min) && hour === "*") return `every hour at minute ${min}${tail}`;
  if (isNum(min) && step(hour)) return `every ${step(hour)} hours at minute ${min}${tail}`;
  if (isNum(min) && isNum(hour)) return `${rest.length ? "" : "daily "}at ${pad(hour)}:${pad(min)}${tail}`.trim();
  return `cron: minute ${min}, hour ${hour}${tail}`;
}
