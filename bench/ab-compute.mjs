// A/B of entry processor latency between two built trees (e.g. before and after a change):
//   node bench/ab-compute.mjs <dirA> <dirB> [--rounds 3] [--ms 2000]
// Per tree, in a fresh child process per round (see ab-remote.mjs for why), rounds alternating
// A, B, A, B …:
// - one process (createGrid, workers 1): compute(key, increment, 1) awaited one by one and 64 at a
//   time, and increment(key, 1) one by one for reference;
// - a cluster of 3 data members, backups 1: 2 child processes (<dir>/test/fixtures/grid-member.mjs)
//   and this process; compute of keys whose primary is this process ("here": no network to the
//   primary, a replication round trip to the backup) and of keys on the other members ("there"),
//   one by one and 64 at a time, and a remote increment one by one for reference.
// The trivial processor is test/fixtures/compute-procs.mjs `increment`, registered as 'procs'.
// Prints µs per operation per task per round (for c=64: wall time / operations) and the median
// ratio B/A. `--limit-a N` / `--limit-b N`: that side's grids (this process's) run with
// compute.processorTimeoutMs N (a tree that has the option; 0: no limit, the opt-out); in the
// cluster the caller's limit is the one that applies, so the member processes need none.
// E.g. the cost of the limit in one tree: node bench/ab-compute.mjs <dir> <dir> --limit-a 0
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { abArgs, abRounds, startTreeMember } from './lib/ab.mjs';

const { opt, dirs, one } = abArgs();
if (one === undefined && dirs.length !== 2) {
  console.error('usage: node bench/ab-compute.mjs <dirA> <dirB> [--rounds 3] [--ms 2000] [--limit-a ms] [--limit-b ms]');
  process.exit(2);
}
const ROUNDS = opt('rounds', 3);
const MS = opt('ms', 2000);
const SECRET = 'bench-compute-secret-not-for-production';
const N = 1000;
const keys = Array.from({ length: N }, (_, i) => `k${i}`);

/** µs per operation of `step` (one round of `ops` operations), measured for `ms` after as long a warm-up. */
async function cost(step, ops, ms) {
  for (const measured of [false, true]) {
    let n = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < ms) {
      await step();
      n += ops;
    }
    if (measured) return ((performance.now() - t0) * 1000) / n;
  }
}

/** One round of `c` concurrent calls of `fn` over `ks`. */
const round = (ks, c, fn) => {
  let i = 0;
  return () => {
    const ps = new Array(c);
    for (let j = 0; j < c; j++) ps[j] = fn(ks[(i = (i + 1) % ks.length)]);
    return Promise.all(ps);
  };
};

const startMember = (dir, seeds) => startTreeMember(dir, seeds, SECRET);

async function measure(dir) {
  const { createGrid } = await import(pathToFileURL(resolve(dir, 'dist/index.js')).href);
  const limit = opt('limit', undefined);
  const compute = { modules: { procs: pathToFileURL(resolve(dir, 'test/fixtures/compute-procs.mjs')) }, ...(limit === undefined ? {} : { processorTimeoutMs: limit }) };
  const inc = { module: 'procs', name: 'increment' };
  const out = {};
  const local = await createGrid({ workers: 1, memory: '32MB', compute });
  try {
    const m = local.map('ab-compute');
    out['local compute c=1'] = await cost(round(keys, 1, (k) => m.compute(k, inc, 1)), 1, MS);
    out['local compute c=64'] = await cost(round(keys, 64, (k) => m.compute(k, inc, 1)), 64, MS);
    out['local increment c=1'] = await cost(round(keys, 1, (k) => m.increment(k, 1)), 1, MS);
  } finally {
    await local.close();
  }
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
    const here = keys.filter((k) => rep.serves(rep.records.partitionOf(k)));
    const there = keys.filter((k) => !here.includes(k));
    const m = g.map('ab-compute');
    out['member compute here c=1'] = await cost(round(here, 1, (k) => m.compute(k, inc, 1)), 1, MS);
    out['member compute there c=1'] = await cost(round(there, 1, (k) => m.compute(k, inc, 1)), 1, MS);
    out['member compute there c=64'] = await cost(round(there, 64, (k) => m.compute(k, inc, 1)), 64, MS);
    out['member increment there c=1'] = await cost(round(there, 1, (k) => m.increment(k, 1)), 1, MS);
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
const childArgs = (side) => ['--ms', String(MS), ...(limitOf(side) === undefined ? [] : ['--limit', String(limitOf(side))])];
abRounds(fileURLToPath(import.meta.url), dirs, ROUNDS, childArgs, (v) => `${v.toFixed(1)} µs`);
process.exit(0);
