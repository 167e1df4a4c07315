#!/usr/bin/env node
// The BullMQ side of the side-by-side benchmark (issue #7, scripts/bench-redis.sh): BullMQ
// processing no-op jobs against a given Redis, with its workers in PROCESSES processes (2, to
// mirror 2 schedd daemons) sharing a total concurrency C, completed jobs kept
// (removeOnComplete: false, as schedd keeps history). Prints one JSON line.
//
//   node bench.js --redis redis://127.0.0.1:6379/0 [--jobs 50000] [--concurrency 8]
//                 [--processes 2] [--lag-jobs 2000] [--lag-span-ms 5000]
//
// (a) throughput: JOBS jobs are added first (addBulk), then the workers, already connected,
//     start; jobs_per_second = JOBS / (last completion - start). This mirrors schedd-bench's
//     dispatch measurement, which plans its executions before the dispatcher starts.
// (b) lag: LAG_JOBS delayed jobs due 500 ms from now and spread over LAG_SPAN_MS; each job's
//     lag is the processor's start minus its due time (job.timestamp + delay), as schedd-bench
//     measures due -> executor start. Reported as p50/p99/max in ms.
//
// Every loop here is bounded: a phase that does not finish within its timeout fails the run.
'use strict';

const { fork } = require('node:child_process');
const os = require('node:os');
const { performance } = require('node:perf_hooks');

function nowMs() {
  return performance.timeOrigin + performance.now();
}

function parseArgs(argv) {
  const args = {
    redis: '',
    jobs: 50000,
    concurrency: 8,
    processes: 2,
    lagJobs: 2000,
    lagSpanMs: 5000,
    timeoutS: 600,
    role: 'main',
  };
  const names = {
    '--redis': 'redis',
    '--jobs': 'jobs',
    '--concurrency': 'concurrency',
    '--processes': 'processes',
    '--lag-jobs': 'lagJobs',
    '--lag-span-ms': 'lagSpanMs',
    '--timeout-s': 'timeoutS',
    '--role': 'role',
  };
  for (let i = 0; i < argv.length; i += 2) {
    const key = names[argv[i]];
    if (!key || i + 1 >= argv.length) throw new Error(`unknown or incomplete option ${argv[i]}`);
    const value = argv[i + 1];
    args[key] = typeof args[key] === 'number' ? Number(value) : value;
    if (typeof args[key] === 'number' && !(Number.isInteger(args[key]) && args[key] >= 0)) {
      throw new Error(`${argv[i]}: ${value} is not a non-negative integer`);
    }
  }
  if (!args.redis) throw new Error('--redis redis://HOST:PORT/DB is required');
  if (args.processes < 1 || args.concurrency < args.processes) {
    throw new Error('--concurrency must be at least --processes (>= 1)');
  }
  return args;
}

// redis://[:PASSWORD@]HOST[:PORT][/DB] -> ioredis options.
function connectionFromUrl(url) {
  const u = new URL(url);
  if (u.protocol !== 'redis:') throw new Error(`${url}: not a redis:// URL`);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  return {
    host: u.hostname,
    port: u.port ? Number(u.port) : 6379,
    db,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    // Required by BullMQ workers (blocking commands must not be retried by ioredis).
    maxRetriesPerRequest: null,
  };
}

function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

// ---------------------------------------------------------------------------------------
// Worker process: one BullMQ Worker per phase, driven by messages from the main process.

async function workerMain(args) {
  const { Worker } = require('bullmq');
  const connection = connectionFromUrl(args.redis);
  const concurrency = Number(process.env.BENCH_CONCURRENCY);
  let worker = null;
  let completed = 0;
  let lastAt = 0;
  let reported = -1;
  let lags = [];
  let failed = 0;
  const report = setInterval(() => {
    if (completed !== reported) {
      reported = completed;
      process.send({ type: 'progress', completed, lastAt, failed });
    }
  }, 5);

  process.on('message', async (msg) => {
    try {
      if (msg.type === 'open') {
        completed = 0;
        reported = -1;
        failed = 0;
        lags = [];
        const lag = msg.phase === 'lag';
        // The no-op processor: records the due -> start lag of delayed jobs, nothing else.
        const processor = async (job) => {
          if (lag) lags.push(nowMs() - (job.timestamp + (job.opts.delay || 0)));
        };
        worker = new Worker(msg.queue, processor, {
          connection,
          concurrency,
          autorun: msg.autorun,
        });
        worker.on('completed', () => {
          completed += 1;
          lastAt = nowMs();
        });
        worker.on('failed', () => {
          failed += 1;
        });
        worker.on('error', (err) => process.send({ type: 'error', message: String(err) }));
        await worker.waitUntilReady();
        process.send({ type: 'ready' });
      } else if (msg.type === 'run') {
        worker.run().catch((err) => process.send({ type: 'error', message: String(err) }));
      } else if (msg.type === 'close') {
        await worker.close();
        worker = null;
        process.send({ type: 'closed', lags });
      } else if (msg.type === 'exit') {
        clearInterval(report);
        process.exit(0);
      }
    } catch (err) {
      process.send({ type: 'error', message: String(err && err.stack ? err.stack : err) });
    }
  });
  // The main process is gone (it failed, or was killed): nothing left to do.
  process.on('disconnect', () => process.exit(0));
  process.send({ type: 'started' });
}

// ---------------------------------------------------------------------------------------
// Main process.

class Child {
  constructor(args, concurrency) {
    this.proc = fork(__filename, ['--role', 'worker', '--redis', args.redis], {
      env: { ...process.env, BENCH_CONCURRENCY: String(concurrency) },
    });
    this.completed = 0;
    this.lastAt = 0;
    this.failed = 0;
    this.waiters = [];
    this.proc.on('message', (msg) => {
      if (msg.type === 'progress') {
        this.completed = msg.completed;
        this.lastAt = msg.lastAt;
        this.failed = msg.failed;
      } else if (msg.type === 'error') {
        console.error(`bench: worker ${this.proc.pid}: ${msg.message}`);
      }
      for (const w of this.waiters.filter((w) => w.type === msg.type)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(msg);
      }
    });
    this.proc.on('exit', (code) => {
      if (code !== 0 && !this.exiting) {
        console.error(`bench: worker process ${this.proc.pid} exited with ${code}`);
        process.exit(1);
      }
    });
  }
  wait(type, timeoutMs = 60000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${type} from worker in time`)), timeoutMs);
      this.waiters.push({
        type,
        resolve: (msg) => {
          clearTimeout(timer);
          resolve(msg);
        },
      });
    });
  }
  send(msg) {
    this.proc.send(msg);
  }
}

async function waitUntil(predicate, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function addInChunks(queue, jobs) {
  for (let i = 0; i < jobs.length; i += 1000) {
    await queue.addBulk(jobs.slice(i, i + 1000));
  }
}

async function main(args) {
  const { Queue } = require('bullmq');
  const connection = connectionFromUrl(args.redis);
  const tag = `${process.pid}-${Date.now()}`;
  const jobOpts = { removeOnComplete: false, removeOnFail: false, attempts: 1 };

  const children = [];
  for (let p = 0; p < args.processes; ++p) {
    // The total concurrency split as evenly as it goes.
    const share =
      Math.floor(args.concurrency / args.processes) + (p < args.concurrency % args.processes);
    const child = new Child(args, share);
    children.push(child);
  }
  await Promise.all(children.map((c) => c.wait('started')));
  const totalCompleted = () => children.reduce((n, c) => n + c.completed, 0);
  const totalFailed = () => children.reduce((n, c) => n + c.failed, 0);

  const out = {
    tool: 'bullmq',
    bullmq_version: require('bullmq/package.json').version,
    node_version: process.version,
    redis: args.redis.replace(/\/\/[^@]*@/, '//'),
    processes: args.processes,
    concurrency: args.concurrency,
    remove_on_complete: false,
    cpus: os.cpus().length,
    load_before: os.loadavg().map((x) => Number(x.toFixed(2))),
  };

  // (a) Throughput.
  const tpQueue = new Queue(`bench-tp-${tag}`, { connection });
  await tpQueue.waitUntilReady();
  const IORedis = require('ioredis');
  const plain = new IORedis(connection);
  const version = /redis_version:(\S+)/.exec(await plain.info('server'));
  out.redis_version = version ? version[1] : 'unknown';
  plain.disconnect();
  const jobs = [];
  for (let i = 0; i < args.jobs; ++i) jobs.push({ name: 'noop', data: { i }, opts: jobOpts });
  let t0 = nowMs();
  await addInChunks(tpQueue, jobs);
  out.jobs = args.jobs;
  out.add_per_second = args.jobs / ((nowMs() - t0) / 1000);
  for (const c of children) c.send({ type: 'open', phase: 'throughput', queue: tpQueue.name, autorun: false });
  await Promise.all(children.map((c) => c.wait('ready')));
  t0 = nowMs();
  for (const c of children) c.send({ type: 'run' });
  await waitUntil(() => totalCompleted() + totalFailed() >= args.jobs, args.timeoutS * 1000, 'throughput jobs');
  const end = Math.max(...children.map((c) => c.lastAt));
  out.throughput_seconds = (end - t0) / 1000;
  out.jobs_per_second = args.jobs / out.throughput_seconds;
  const tpCounts = await tpQueue.getJobCounts('completed', 'failed', 'wait', 'active');
  out.completed_kept = tpCounts.completed;
  out.failed = tpCounts.failed;
  for (const c of children) c.send({ type: 'close' });
  await Promise.all(children.map((c) => c.wait('closed')));

  // (b) Lag of delayed jobs.
  if (args.lagJobs > 0) {
    const lagQueue = new Queue(`bench-lag-${tag}`, { connection });
    await lagQueue.waitUntilReady();
    for (const c of children) c.send({ type: 'open', phase: 'lag', queue: lagQueue.name, autorun: true });
    await Promise.all(children.map((c) => c.wait('ready')));
    const start = Date.now() + 500;
    const delayed = [];
    for (let i = 0; i < args.lagJobs; ++i) {
      const due = start + Math.floor((args.lagSpanMs * i) / args.lagJobs);
      delayed.push({ name: 'noop', data: { i }, opts: { ...jobOpts, delay: Math.max(0, due - Date.now()) } });
    }
    // Each job's due time is its own timestamp + delay, whatever adding them costs.
    await addInChunks(lagQueue, delayed);
    await waitUntil(
      () => totalCompleted() + totalFailed() >= args.lagJobs,
      args.lagSpanMs + args.timeoutS * 1000,
      'delayed jobs',
    );
    for (const c of children) c.send({ type: 'close' });
    const closed = await Promise.all(children.map((c) => c.wait('closed')));
    const lags = closed.flatMap((m) => m.lags).sort((a, b) => a - b);
    out.lag_jobs = args.lagJobs;
    out.lag_span_ms = args.lagSpanMs;
    out.lag_measured = lags.length;
    out.lag_p50_ms = percentile(lags, 0.5);
    out.lag_p99_ms = percentile(lags, 0.99);
    out.lag_max_ms = lags.length ? lags[lags.length - 1] : 0;
    await lagQueue.obliterate({ force: true });
    await lagQueue.close();
  }

  await tpQueue.obliterate({ force: true });
  await tpQueue.close();
  for (const c of children) {
    c.exiting = true;
    c.send({ type: 'exit' });
  }
  out.load_after = os.loadavg().map((x) => Number(x.toFixed(2)));
  console.log(JSON.stringify(out));
  if (out.failed > 0 || out.completed_kept !== args.jobs) {
    console.error(`bench: ${out.completed_kept} of ${args.jobs} completed, ${out.failed} failed`);
    process.exit(1);
  }
}

let args;
try {
  args = parseArgs(process.argv.slice(2));
} catch (err) {
  console.error(`bench: ${err.message}`);
  process.exit(2);
}
const run = args.role === 'worker' ? workerMain(args) : main(args);
run.catch((err) => {
  console.error(`bench: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
