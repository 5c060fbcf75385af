// A/B of remote get and set through a lite member (the cluster-remote setup: 2 data members in
// child processes, backups 1, a lite member in this process) between two built trees, e.g. the
// code before a change and after it:
//   node bench/ab-remote.mjs <dirA> <dirB> [--rounds 3] [--ms 3000] [--keys 10000] [--steady 1200000]
// Each tree starts its own cluster from its own bench/lib/cluster.mjs and dist/ (the two need not
// speak the same protocol). Rounds alternate A, B, A, B … so that drift of a shared, noisy machine
// falls on both; each round warms every task for --ms, then measures it for --ms. Prints ops/s per
// task per round and the median ratio B/A.
// `--steady N`: N sets at c=64 before the measured tasks, so that the exactly-once records of a
// cluster with request ids (271 partitions × 4,096 per member, src/cluster/dedupe.ts) are at their
// bound, as in any cluster that has run for a while; without it the set rounds of a fresh cluster
// measure records that are still filling (cheaper). 1,200,000 fills them (each member records every
// set, as primary or as backup); it takes ~20 s per round here.
// Each round runs in a fresh child process (`--one <dir>`): run in one process, the second tree's
// copy of the same code met call sites in Node's own stream and Buffer code that the first tree
// had already made polymorphic, so every round after the first read slower (up to 3x) for both.
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { abArgs, abRounds } from './lib/ab.mjs';

const { opt, dirs, one } = abArgs();
if (one === undefined && dirs.length !== 2) {
  console.error('usage: node bench/ab-remote.mjs <dirA> <dirB> [--rounds 3] [--ms 3000] [--keys 10000]');
  process.exit(2);
}
const ROUNDS = opt('rounds', 3);
const MS = opt('ms', 3000);
const N = opt('keys', 10_000);
const STEADY = opt('steady', 0);
const VALUE = 'x'.repeat(100);
const keys = Array.from({ length: N }, (_, i) => `key:${i}`);

/** Runs `step` (one round of `ops` operations) for `ms`; ops/s. */
async function rate(step, ops, ms) {
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    await step();
    n += ops;
  }
  return (n * 1000) / (performance.now() - t0);
}

const round = (c, fn) => {
  let i = 0;
  return () => {
    const ps = new Array(c);
    for (let j = 0; j < c; j++) ps[j] = fn(keys[(i = (i + 1) % N)]);
    return Promise.all(ps);
  };
};

async function measure(dir) {
  const lib = await import(pathToFileURL(resolve(dir, 'bench/lib/cluster.mjs')).href);
  const { members, lite } = await lib.startCluster(2);
  try {
    const m = lite.map('ab-remote');
    for (let i = 0; i < N; i += 500) await m.setMany(keys.slice(i, i + 500).map((k) => [k, VALUE]));
    if (STEADY > 0) {
      const fill = round(64, (k) => m.set(k, VALUE));
      for (let n = 0; n < STEADY; n += 64) await fill();
    }
    const tasks = {
      'get c=64': [round(64, (k) => m.get(k)), 64],
      'set c=64': [round(64, (k) => m.set(k, VALUE)), 64],
      'get c=1': [round(1, (k) => m.get(k)), 1],
      'set c=1': [round(1, (k) => m.set(k, VALUE)), 1],
    };
    const out = {};
    for (const [name, [step, ops]] of Object.entries(tasks)) {
      await rate(step, ops, MS); // warm-up (JIT of three processes)
      out[name] = await rate(step, ops, MS);
    }
    return out;
  } finally {
    await lite.close();
    for (const x of members) x.proc.kill('SIGTERM');
  }
}

if (one !== undefined) {
  process.stdout.write(JSON.stringify(await measure(resolve(one))));
  process.exit(0);
}

abRounds(fileURLToPath(import.meta.url), dirs, ROUNDS, ['--ms', String(MS), '--keys', String(N), '--steady', String(STEADY)], (v) => `${(v / 1000).toFixed(1)}k/s`);
process.exit(0);
