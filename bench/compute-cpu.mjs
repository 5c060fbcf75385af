// Wall time and CPU per entry processor call on a cluster member (native-notes.md, "Processor time
// limit", "Not understood"): a cluster of 3 data members, backups 1 — 2 child processes
// (<dir>/test/fixtures/grid-member.mjs) and this process — and computes of this process, awaited
// one by one:
// - "here": keys whose primary is this process (the processor runs on this process's processor
//   pool, or inline with a limit of 0; the write is replicated to a backup in a child);
// - "there": keys whose primary is a child (routed; the child runs it).
// Per task: wall µs per call; this process's CPU µs per call (process.cpuUsage: user, system) and
// its split by thread (/proc/self/task/*/stat: main thread, pool threads, the rest); the children's
// CPU µs per call (/proc/<pid>/stat, 10 ms ticks: use --ms 2000 or more); this process's voluntary
// and involuntary context switches per call (process.resourceUsage), and the main thread's event
// loop utilization (performance.eventLoopUtilization: the share of wall time not idle in poll).
// (No per-turn counter: a self re-arming setImmediate keeps poll from blocking and spins the loop.)
//
// Usage: npm run build && node bench/compute-cpu.mjs <dirA> <dirB> [--rounds 4] [--ms 2000] [--warm 4000] [--limit-a N] [--limit-b N]
//   Rounds alternate A, B, A, B …, each in a fresh child process (bench/lib/ab.mjs); `--limit-x N`:
//   that side's compute.processorTimeoutMs (in the cluster the caller's limit applies; 0: the
//   processor runs inline on the primary's main thread). Same tree twice with --limit-a 0 gives
//   the cost of the pool. Prints every round and the median ratio B/A per figure.
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { abArgs, abRounds, startTreeMember } from './lib/ab.mjs';

const { opt, dirs, one } = abArgs();
if (one === undefined && dirs.length !== 2) {
  console.error('usage: node bench/compute-cpu.mjs <dirA> <dirB> [--rounds 4] [--ms 2000] [--limit-a ms] [--limit-b ms]');
  process.exit(2);
}
const ROUNDS = opt('rounds', 4);
const MS = opt('ms', 2000);
// JIT warm-up: the pool path has two isolates to settle; 1-2 s left TurboFan compiling and the
// main thread at ~1.6x its later cost per call
const WARM = opt('warm', 4000);
const SECRET = 'bench-compute-secret-not-for-production';
const N = 1000;
const keys = Array.from({ length: N }, (_, i) => `k${i}`);
const TICK_US = 10_000; // /proc stat times are in clock ticks of 10 ms (USER_HZ 100)

/** utime + stime of a process or thread, µs. */
function ticks(file) {
  const f = readFileSync(file, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) * TICK_US;
}

/** CPU µs of this process's threads, grouped: the main thread, the processor/aggregation pool and grid workers (all 'node' workers), the rest by name. */
function threadCpu() {
  const out = {};
  for (const tid of readdirSync('/proc/self/task')) {
    let name;
    let us;
    try {
      name = tid === String(process.pid) ? 'main' : readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
      us = ticks(`/proc/self/task/${tid}/stat`);
    } catch {
      continue; // the thread ended
    }
    out[name] = (out[name] ?? 0) + us;
  }
  return out;
}

/** Per call figures of `fn(key)` over `ks`, awaited one by one, for `ms` after a warm-up of WARM ms. */
async function cost(ks, fn, ms, children) {
  let i = 0;
  const loop = async (measured, ms) => {
    let n = 0;
    const c0 = process.cpuUsage();
    const r0 = process.resourceUsage();
    const t0c = threadCpu();
    const k0 = children.map((c) => ticks(`/proc/${c.proc.pid}/stat`));
    const elu0 = performance.eventLoopUtilization();
    const t0 = performance.now();
    while (performance.now() - t0 < ms) {
      await fn(ks[(i = (i + 1) % ks.length)]);
      n++;
    }
    const wall = (performance.now() - t0) * 1000;
    const elu = performance.eventLoopUtilization(elu0);
    if (!measured) return undefined;
    const c = process.cpuUsage(c0);
    const r = process.resourceUsage();
    const t1c = threadCpu();
    const per = (x) => x / n;
    const out = {
      'wall µs': per(wall),
      'cpu µs': per(c.user + c.system),
      'user µs': per(c.user),
      'sys µs': per(c.system),
      'main thread µs': per((t1c.main ?? 0) - (t0c.main ?? 0)),
      'other threads µs': per(Object.keys(t1c).filter((k) => k !== 'main').reduce((a, k) => a + t1c[k] - (t0c[k] ?? 0), 0)),
      'children µs': per(children.reduce((a, ch, j) => a + ticks(`/proc/${ch.proc.pid}/stat`) - k0[j], 0)),
      'vol ctxsw': per(r.voluntaryContextSwitches - r0.voluntaryContextSwitches),
      'invol ctxsw': per(r.involuntaryContextSwitches - r0.involuntaryContextSwitches),
      'loop busy %': elu.utilization * 100,
    };
    return out;
  };
  await loop(false, WARM);
  return loop(true, ms);
}

const startMember = (dir, seeds) => startTreeMember(dir, seeds, SECRET);

async function measure(dir) {
  const { createGrid } = await import(pathToFileURL(resolve(dir, 'dist/index.js')).href);
  const limit = opt('limit', undefined);
  const compute = { modules: { procs: pathToFileURL(resolve(dir, 'test/fixtures/compute-procs.mjs')) }, ...(limit === undefined ? {} : { processorTimeoutMs: limit }) };
  const inc = { module: 'procs', name: 'increment' };
  const out = {};
  const a = await startMember(dir, []);
  const b = await startMember(dir, [a.url]);
  const g = await createGrid({ workers: 1, memory: '32MB', compute, cluster: { host: '127.0.0.1', port: 0, seeds: [a.url], secret: SECRET, backups: 1 } });
  try {
    for (const end = Date.now() + 30_000; ; ) {
      const t = g.cluster.currentTable;
      if (t && t.pending.every((l) => l.length === 0) && new Set(t.owners.map((o) => o[0])).size === 3) break;
      if (Date.now() > end) throw new Error('cluster did not settle');
      await new Promise((r) => setTimeout(r, 50));
    }
    const rep = g.cluster.replicas;
    const t = g.cluster.currentTable;
    const self = g.cluster.memberId;
    const here = keys.filter((k) => t.owners[rep.records.partitionOf(k)][0] === self);
    const there = keys.filter((k) => t.owners[rep.records.partitionOf(k)][0] !== self);
    const m = g.map('compute-cpu');
    const children = [a, b];
    for (const [name, ks] of [['here', here], ['there', there]]) {
      const r = await cost(ks, (k) => m.compute(k, inc, 1), MS, children);
      for (const [f, v] of Object.entries(r)) out[`${name} ${f}`] = v;
    }
  } finally {
    await g.close();
    for (const x of [a, b]) x.proc.kill('SIGKILL');
  }
  return out;
}

if (one !== undefined) {
  process.stdout.write(JSON.stringify(await measure(resolve(one))));
  process.exit(0);
}

const limitOf = (side) => opt(`limit-${side.toLowerCase()}`, undefined);
const childArgs = (side) => ['--ms', String(MS), '--warm', String(WARM), ...(limitOf(side) === undefined ? [] : ['--limit', String(limitOf(side))])];
abRounds(fileURLToPath(import.meta.url), dirs, ROUNDS, childArgs, (v) => v.toFixed(1));
process.exit(0);
