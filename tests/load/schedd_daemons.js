#!/usr/bin/env node
// The schedd side of the side-by-side benchmark with real daemons (issue #7,
// scripts/bench-redis.sh): 2 `schedd run` daemons on one Redis (the noop plugin, lane
// workers = C with lane_capacity "cluster", so C runs at once over both, as BullMQ's 2
// processes share C), fed over HTTP. Node built-ins only. Prints one JSON line.
//
//   node tests/load/schedd_daemons.js --schedd build/release/bin/schedd
//        --plugin-dir build/release/plugins --redis redis://127.0.0.1:6379/0
//        [--jobs 50000] [--concurrency 8] [--keys 1000] [--lag-jobs 2000] [--lag-span-ms 5000]
//
// (a) throughput: JOBS noop executions on KEYS keys (serialized per key) are bulk-submitted
//     half to each daemon, all with not_before = T0, a moment after the submissions end
//     (estimated from a first chunk due in 2099; `submit_late_ms` > 0 says the estimate was
//     short, and the number is then low); jobs_per_second =
//     JOBS / (last `finished` - T0), from the execution records (ms resolution).
// (b) lag: LAG_JOBS executions spread over LAG_SPAN_MS, the first due once all are submitted
//     (twice the measured submission time, at least 500 ms); lag = `started` - `not_before`
//     of each record (from `created` for one stored after its due time: lag_submitted_late
//     counts them); p50/p99/max in ms.
// History is kept (the records are read back). Every wait is bounded; the daemons are
// stopped with SIGTERM at the end, and killed if this script fails.
'use strict';

const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');

function parseArgs(argv) {
  const args = {
    schedd: '',
    pluginDir: '',
    redis: '',
    jobs: 50000,
    concurrency: 8,
    keys: 1000,
    lagJobs: 2000,
    lagSpanMs: 5000,
    timeoutS: 600,
    laneCapacity: 'cluster',
    claimAhead: 0,
  };
  const names = {
    '--schedd': 'schedd',
    '--plugin-dir': 'pluginDir',
    '--redis': 'redis',
    '--jobs': 'jobs',
    '--concurrency': 'concurrency',
    '--keys': 'keys',
    '--lag-jobs': 'lagJobs',
    '--lag-span-ms': 'lagSpanMs',
    '--timeout-s': 'timeoutS',
    '--lane-capacity': 'laneCapacity',
    '--claim-ahead': 'claimAhead',
  };
  for (let i = 0; i < argv.length; i += 2) {
    const key = names[argv[i]];
    if (!key || i + 1 >= argv.length) throw new Error(`unknown or incomplete option ${argv[i]}`);
    args[key] = typeof args[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  for (const k of ['schedd', 'pluginDir', 'redis']) {
    if (!args[k]) throw new Error(`--${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} is required`);
  }
  // The configs live in a temp dir: relative paths would be resolved against it.
  args.schedd = path.resolve(args.schedd);
  args.pluginDir = path.resolve(args.pluginDir);
  return args;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

function request(port, method, target, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path: target,
        agent,
        headers: data ? { 'content-type': 'application/json', 'content-length': data.length } : {},
        timeout: 60000,
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          if (res.statusCode >= 300) {
            reject(new Error(`${method} ${target}: ${res.statusCode} ${text.slice(0, 500)}`));
          } else {
            resolve(text ? JSON.parse(text) : {});
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${target}: timed out`)));
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

class Daemon {
  constructor(args, dir, node) {
    this.config = path.join(dir, `${node}.toml`);
    fs.writeFileSync(
      this.config,
      [
        '[daemon]',
        `plugin_dir = ${JSON.stringify(args.pluginDir)}`,
        `store = ${JSON.stringify(args.redis)}`,
        `node_id = "${node}"`,
        '[redis]',
        `namespace = "bench-${process.pid}"`,
        `lane_capacity = "${args.laneCapacity}"`,
        `claim_ahead = ${args.claimAhead}`,
        '[api]',
        'listen = "127.0.0.1:0"',
        '[capacity]',
        'queued = 100000000',
        '[lanes.default]',
        // cluster: C runs at once over both daemons; node: C/2 on each, as BullMQ's workers.
        `workers = ${args.laneCapacity === 'node' ? Math.max(1, Math.floor(args.concurrency / 2)) : args.concurrency}`,
        '',
      ].join('\n'),
    );
    this.log = '';
    this.proc = spawn(args.schedd, ['run', '-c', this.config], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc.stderr.on('data', (c) => {
      this.log += c.toString();
      if (this.log.length > 200000) this.log = this.log.slice(-100000);  // the start is parsed early
    });
  }
  async ready(timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    while (!this.log.includes('schedd ready')) {
      if (this.proc.exitCode !== null || Date.now() > deadline) {
        throw new Error(`daemon ${this.config} did not start:\n${this.log}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    const m = /listening on (?:http:\/\/)?127\.0\.0\.1:(\d+)/.exec(this.log);
    if (!m) throw new Error(`no API port in the log of ${this.config}:\n${this.log}`);
    this.port = Number(m[1]);
  }
  async stop() {
    if (this.proc.exitCode !== null) return this.proc.exitCode;
    const exited = new Promise((r) => this.proc.on('exit', (code) => r(code)));
    this.proc.kill('SIGTERM');
    return exited;
  }
}

// Redis's CPU time so far (used_cpu_user + used_cpu_sys, seconds), or NaN without redis-cli.
function redisCpuSeconds(url) {
  try {
    const info = execFileSync('redis-cli', ['-u', url, 'info', 'cpu'], { encoding: 'utf8' });
    const get = (name) => Number((new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info) || [])[1]);
    return get('used_cpu_user') + get('used_cpu_sys');
  } catch {
    return NaN;
  }
}

function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

// Bulk-submits `items` in chunks of 1000, alternating between the daemons (chunk n to daemon
// n mod 2), 2 requests at once.
async function submit(daemons, items) {
  const chunks = [];
  for (let i = 0; i < items.length; i += 1000) chunks.push(items.slice(i, i + 1000));
  let next = 0;
  const lanes = [0, 1].map(async () => {
    while (next < chunks.length) {
      const n = next++;
      await request(daemons[n % daemons.length].port, 'POST', '/v1/executions/bulk', {
        executions: chunks[n],
      });
    }
  });
  await Promise.all(lanes);
}

// Every succeeded execution whose id starts with `prefix`, read back page by page.
async function succeeded(port, prefix) {
  const out = [];
  let cursor = null;
  for (let page = 0; page < 100000; ++page) {
    const q = `/v1/executions?status=succeeded&limit=1000${cursor ? '&cursor=' + encodeURIComponent(cursor) : ''}`;
    const r = await request(port, 'GET', q);
    for (const e of r.executions) if (e.id.startsWith(prefix)) out.push(e);
    cursor = r.next_cursor;
    if (!cursor) break;
  }
  return out;
}

// Waits until the last of them came due (`lastDueMs`), then until nothing is queued or
// running, then reads them back. Before the last due time nothing is listed: a listing reads
// every execution of the namespace and would compete with the run being measured.
// `onDrained` is called once, when nothing is queued or running any more (before listing).
async function waitForSucceeded(port, prefix, n, timeoutMs, lastDueMs, onDrained) {
  const deadline = Date.now() + timeoutMs;
  const wait = lastDueMs + 100 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  for (;;) {
    const stats = await request(port, 'GET', '/v1/stats');
    if (stats.queued === 0 && stats.running === 0) {
      if (onDrained) onDrained();
      onDrained = null;
      const done = await succeeded(port, prefix);
      if (done.length >= n) return done;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} ${prefix} executions`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function main(args) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'schedd-daemons-'));
  const daemons = [new Daemon(args, dir, 'bench-a'), new Daemon(args, dir, 'bench-b')];
  const kill = () => daemons.forEach((d) => d.proc.exitCode === null && d.proc.kill('SIGKILL'));
  process.on('exit', kill);
  try {
    await Promise.all(daemons.map((d) => d.ready(60000)));
    const out = {
      tool: 'schedd',
      daemons: daemons.length,
      redis: args.redis.replace(/\/\/[^@]*@/, '//'),
      concurrency: args.concurrency,
      lane_capacity: args.laneCapacity,
      claim_ahead: args.claimAhead,
      keys: args.keys,
      history_kept: true,
      cpus: os.cpus().length,
      load_before: os.loadavg().map((x) => Number(x.toFixed(2))),
    };

    // (a) Throughput: due together at T0, after the submissions. The submission rate is
    // estimated first with one chunk due in 2099 (never due: not counted, never run).
    const warm = [];
    for (let i = 0; i < Math.min(1000, args.jobs); ++i) {
      warm.push({ id: `warm-${i}`, executor: 'noop', key: `w${i}`, not_before: '2099-01-01T00:00:00Z' });
    }
    const w0 = Date.now();
    await submit(daemons, warm);
    const rate = warm.length / Math.max(0.001, (Date.now() - w0) / 1000);
    const budgetMs = Math.max(1000, Math.ceil((1.5 * args.jobs * 1000) / rate) + 500);
    const t0 = Date.now() + budgetMs;
    const items = [];
    for (let i = 0; i < args.jobs; ++i) {
      items.push({
        id: `tp-${i}`,
        executor: 'noop',
        key: `k${i % args.keys}`,
        not_before: new Date(t0).toISOString(),
      });
    }
    const s0 = Date.now();
    await submit(daemons, items);
    out.jobs = args.jobs;
    out.submit_per_second = args.jobs / ((Date.now() - s0) / 1000);
    out.submit_late_ms = Math.max(0, Date.now() - t0);
    // Redis CPU over the run itself: from before T0 until nothing is queued or running.
    const cpu0 = redisCpuSeconds(args.redis);
    let cpu1 = NaN;
    const done = await waitForSucceeded(
      daemons[0].port,
      'tp-',
      args.jobs,
      args.timeoutS * 1000 + budgetMs,
      t0,
      () => (cpu1 = redisCpuSeconds(args.redis)),
    );
    if (Number.isFinite(cpu1 - cpu0)) {
      out.redis_cpu_us_per_job = Number((((cpu1 - cpu0) * 1e6) / args.jobs).toFixed(1));
    }
    const last = Math.max(...done.map((e) => Date.parse(e.finished)));
    out.throughput_seconds = (last - t0) / 1000;
    out.jobs_per_second = args.jobs / out.throughput_seconds;
    const byNode = {};
    for (const e of done) byNode[e.node] = (byNode[e.node] || 0) + 1;
    out.jobs_by_node = byNode;

    // (b) Lag.
    if (args.lagJobs > 0) {
      // The first is due once all are submitted (at twice the measured rate's time, at least
      // 500 ms): one submitted after its due time would count its submission as lag.
      const start = Date.now() + Math.max(500, Math.ceil((2 * args.lagJobs * 1000) / rate));
      const lagItems = [];
      for (let i = 0; i < args.lagJobs; ++i) {
        const due = start + Math.floor((args.lagSpanMs * i) / args.lagJobs);
        lagItems.push({
          id: `lag-${i}`,
          executor: 'noop',
          key: `lag${i % 100}`,
          not_before: new Date(due).toISOString(),
        });
      }
      await submit(daemons, lagItems);
      const lagDone = await waitForSucceeded(
        daemons[0].port,
        'lag-',
        args.lagJobs,
        args.lagSpanMs + args.timeoutS * 1000,
        start + args.lagSpanMs,
      );
      // Due -> start; an execution stored after its due time (the submission was late) counts
      // from when it was stored, and is counted in lag_submitted_late.
      const due = (e) => Math.max(Date.parse(e.not_before), Date.parse(e.created));
      const lags = lagDone.map((e) => Date.parse(e.started) - due(e)).sort((a, b) => a - b);
      out.lag_submitted_late = lagDone.filter((e) => Date.parse(e.created) > Date.parse(e.not_before)).length;
      out.lag_jobs = args.lagJobs;
      out.lag_span_ms = args.lagSpanMs;
      out.lag_p50_ms = percentile(lags, 0.5);
      out.lag_p99_ms = percentile(lags, 0.99);
      out.lag_max_ms = lags.length ? lags[lags.length - 1] : 0;
    }
    out.load_after = os.loadavg().map((x) => Number(x.toFixed(2)));
    const codes = await Promise.all(daemons.map((d) => d.stop()));
    out.daemon_exit_codes = codes;
    console.log(JSON.stringify(out));
    if (codes.some((c) => c !== 0)) process.exitCode = 1;
  } finally {
    kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

let args;
try {
  args = parseArgs(process.argv.slice(2));
} catch (err) {
  console.error(`schedd_daemons: ${err.message}`);
  process.exit(2);
}
main(args).catch((err) => {
  console.error(`schedd_daemons: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
