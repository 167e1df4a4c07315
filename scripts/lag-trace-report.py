#!/usr/bin/env python3
"""Matches schedd-bench's lag runs against the scheduler's trace (docs/PERFORMANCE.md, issue #15).

  perf sched record -k CLOCK_MONOTONIC -o sched.data -- \\
      build/release/bin/schedd-bench --isolation-only --lag-trace trace.txt
  perf sched timehist -i sched.data > timehist.txt
  scripts/lag-trace-report.py trace.txt timehist.txt

For each lag phase (inprocess, isolated): how many runs were over 2 ms; how much of their
windows (due -> end) the bench's threads and its runners spent runnable but off a CPU,
on a CPU, or all asleep; each thread's wake-ups that waited >= 2 ms for a CPU; and the lag's
p50/p99/max with each run's waits for a CPU taken out (an upper bound of what they cost).
The bench is the process whose main thread is named schedd-bench; its runners are the
schedd-runner processes that ran during the phases (another program's runners would count).
"""
import bisect
import collections
import re
import sys

SLOW_MS = 2.0
LINE = re.compile(r"^\s*(\d+\.\d+)\s+\[(\d+)\]\s+(.+?)\[(\d+)(?:/(\d+))?\]\s+"
                  r"([\d.]+)\s+([\d.]+)\s+([\d.]+)")


def union(ivs, starts, a0, a1):
    i = bisect.bisect_left(starts, a0 - 1.0)
    segs = sorted((max(a0, s), min(a1, e)) for s, e in ivs[i:bisect.bisect_right(starts, a1)]
                  if min(a1, e) > max(a0, s))
    total, cs, ce = 0.0, None, None
    for s, e in segs:
        if ce is None or s > ce:
            if ce is not None:
                total += ce - cs
            cs, ce = s, e
        else:
            ce = max(ce, e)
    return total + (ce - cs if ce is not None else 0.0)


def main(trace, timehist):
    phases = collections.defaultdict(list)
    for line in open(trace):
        p = line.split()
        phases[p[0]].append((float(p[1]),) + tuple(int(x) / 1e9 for x in p[2:6]))
    spans = {k: (min(r[1] for r in v), max(r[4] for r in v)) for k, v in phases.items()}
    rows = []
    bench = None
    for line in open(timehist):
        m = LINE.match(line)
        if not m:
            continue
        comm, tid = m.group(3).strip(), int(m.group(4))
        pid = int(m.group(5) or tid)
        if comm == "schedd-bench" and bench is None:
            bench = pid
        rows.append((float(m.group(1)), comm, pid, float(m.group(7)) / 1e3,
                     float(m.group(8)) / 1e3))
    waits, runs = [], []
    delayed = {k: collections.Counter() for k in phases}
    for t, comm, pid, sch, run in rows:
        if pid != bench and not comm.startswith("schedd-runner"):
            continue
        if not any(s - 1 <= t <= e + 1 for s, e in spans.values()):
            continue
        runs.append((t - run, t))
        if sch > 0:
            waits.append((t - run - sch, t - run))
        for k, (s, e) in spans.items():
            if s <= t <= e and sch >= SLOW_MS / 1e3:
                delayed[k][comm] += 1
    waits.sort()
    runs.sort()
    both = sorted(waits + runs)
    ws, bs = [w[0] for w in waits], [b[0] for b in both]
    pct = lambda v, q: v[min(len(v) - 1, int(q * len(v)))]
    for k, v in phases.items():
        lags, adj = [], []
        slow = collections.Counter()
        for lag, due, _, _, end in v:
            w = union(waits, ws, due, end)
            lags.append(lag)
            adj.append(max(0.0, lag - 1e3 * w))
            if lag > SLOW_MS:
                slow["runs"] += 1
                slow["window"] += end - due
                slow["waiting"] += w
                slow["busy"] += union(both, bs, due, end)
        lags.sort()
        adj.sort()
        print(f"{k}: {len(v)} runs, lag p50 {pct(lags, .5):.2f} p99 {pct(lags, .99):.2f} "
              f"max {lags[-1]:.1f} ms; {slow['runs']} over {SLOW_MS} ms")
        if slow["runs"]:
            win = slow["window"]
            print(f"  their windows: {100 * slow['waiting'] / win:.0f} % a thread runnable but "
                  f"off a CPU, {100 * (1 - slow['busy'] / win):.0f} % all asleep")
        print("  wake-ups that waited >= 2 ms for a CPU: " +
              ", ".join(f"{c} {n}" for c, n in delayed[k].most_common()))
        print(f"  without the waits for a CPU: p50 {pct(adj, .5):.2f} p99 {pct(adj, .99):.2f} "
              f"max {adj[-1]:.1f} ms")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
