// Where the time of a hot loop goes: runs one operation in a loop through the public API under the
// V8 inspector's CPU profiler (node:inspector Session; see bench/lib/profiler.mjs) and prints the
// functions with the most self time, and the most inclusive time, as % of the profiled time.
// Same setup as the suite: a grid with 2 virtual nodes and a 256 MB budget, 10,000 keys read or
// written round-robin, 100-byte strings or the small object of values-object.
//
// Usage: npm run build && node bench/profile.mjs <mode> [options]
//   modes: get, getSync, miss, set, setSync, setRead (set of keys read first), object, objectSync, objectSet, setMany, lru, lruSet, threads
//   --seconds S     profiled time (default 2); each mode first warms up and times the loop
//                   without the profiler (best of 5 × 0.4 s), so the profiler's overhead shows
//   --keys K        keys in the round-robin (default 10,000, as the suite; fewer keys = a working
//                   set that fits the CPU caches, which separates memory latency from code)
//   --shuffle       read/write the keys in a fixed random order instead of insertion order (the
//                   suite's round-robin in insertion order walks Map's and lru-cache's storage
//                   sequentially, which the CPU prefetches; a shuffled order does not)
//   --value V       the value kind of bench/lib/peers.mjs VALUES (16B, 100B, 4KB, object) instead
//                   of the mode's own (100B; object for the object modes)
//   --top N         rows per table (default 25)
//   --interval US   sampling interval in µs (default 100)
//   --no-inline     run with TurboFan inlining off: finer attribution, slower code (say so when quoting)
//   --save FILE     also write the profile (.cpuprofile, opens in Chrome DevTools)
//   PROFILE_MEMORY  (environment) the grid's budget instead of 256MB, e.g. 512MB for --keys 1000000
//   threads mode:   --threads N (default 2), --ops N per thread (default 1,000,000, as the full
//                   suite), --write-ratio R (default 0.1): the threads scenario's 90/10 Zipf
//                   read-through mix (bench/lib/thread-worker.mjs) over 100,000 keys, cold start,
//                   1 thread then N threads on a fresh grid each, every thread profiled. Each thread
//                   does the same number of operations (a time-bound run would not compare: the
//                   cache warms as it runs, so a faster run also gets a higher hit rate).
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';

const { values: opt, positionals } = parseArgs({
  options: {
    seconds: { type: 'string', default: '2' },
    keys: { type: 'string', default: '10000' },
    shuffle: { type: 'boolean', default: false },
    value: { type: 'string' },
    top: { type: 'string', default: '25' },
    interval: { type: 'string', default: '100' },
    'no-inline': { type: 'boolean', default: false },
    save: { type: 'string' },
    threads: { type: 'string', default: '2' },
    ops: { type: 'string', default: '1000000' },
    'write-ratio': { type: 'string', default: '0.1' },
  },
  allowPositionals: true,
});
// Before anything is compiled; process-wide, so the grid's threads get it too.
if (opt['no-inline']) v8.setFlagsFromString('--no-turbo-inlining');

const { createGrid } = await import('../dist/index.js');
const { setupPeers } = await import('./lib/kv-scenario.mjs');
const { GRID_MEMORY, GRID_WORKERS, VALUES, makeKeys } = await import('./lib/peers.mjs');
const { formatTop, startProfile, summarize } = await import('./lib/profiler.mjs');
const { cpuScaling, runOnce } = await import('./lib/thread-runs.mjs');
const { rng } = await import('./lib/zipf.mjs');

const N = Number(opt.keys);
const seconds = Number(opt.seconds);
const top = Number(opt.top);
const intervalUs = Number(opt.interval);

/**
 * Each mode: the value the keys hold, and a loop body `(n) => …` doing n operations (each its own
 * function, so each has its own type feedback as in the suite's compiled batches). As in the
 * suite, a loop keeps the last result and does not read the values it gets.
 */
const MODES = {
  get: { value: '100B', body: ({ gm, keys }) => { let i = 0; return async (n) => { let r; for (let j = 0; j < n; j++) r = await gm.get(keys[(i = (i + 1) % N)]); return r; }; } },
  getSync: { value: '100B', body: ({ gm, keys }) => { let i = 0; return (n) => { let r; for (let j = 0; j < n; j++) r = gm.getSync(keys[(i = (i + 1) % N)]); return r; }; } },
  miss: { value: '100B', body: ({ gm, absent }) => { let i = 0; return async (n) => { let r; for (let j = 0; j < n; j++) r = await gm.get(absent[(i = (i + 1) % N)]); return r; }; } },
  set: { value: '100B', body: ({ gm, keys, value }) => { let i = 0; return async (n) => { for (let j = 0; j < n; j++) await gm.set(keys[(i = (i + 1) % N)], value); return n; }; } },
  setSync: { value: '100B', body: ({ gm, keys, value }) => { let i = 0; return (n) => { for (let j = 0; j < n; j++) gm.setSync(keys[(i = (i + 1) % N)], value); return n; }; } },
  // set over keys this thread has read first (so each has a read memo), as a read-then-update workload
  setRead: { value: '100B', body: ({ gm, keys, value }) => { for (const k of keys) gm.getSync(k); let i = 0; return async (n) => { for (let j = 0; j < n; j++) await gm.set(keys[(i = (i + 1) % N)], value); return n; }; } },
  object: { value: 'object', body: ({ gm, keys }) => { let i = 0; return async (n) => { let r; for (let j = 0; j < n; j++) r = await gm.get(keys[(i = (i + 1) % N)]); return r; }; } },
  objectSync: { value: 'object', body: ({ gm, keys }) => { let i = 0; return (n) => { let r; for (let j = 0; j < n; j++) r = gm.getSync(keys[(i = (i + 1) % N)]); return r; }; } },
  objectSet: { value: 'object', body: ({ gm, keys, value }) => { let i = 0; return async (n) => { for (let j = 0; j < n; j++) await gm.set(keys[(i = (i + 1) % N)], value); return n; }; } },
  // n counts keys: n / 100 calls of setMany(100) over 100 fixed batches (as batch-100)
  setMany: { value: '100B', body: ({ gm, keys, value }) => {
    const batches = [];
    for (let k = 0; k + 100 <= N; k += 100) batches.push(keys.slice(k, k + 100).map((key) => [key, value]));
    let b = 0;
    return async (n) => { for (let j = 0; j < n; j += 100) await gm.setMany(batches[(b = (b + 1) % batches.length)]); return n; };
  } },
  lru: { value: '100B', body: ({ lru, keys }) => { let i = 0; return (n) => { let r; for (let j = 0; j < n; j++) r = lru.get(keys[(i = (i + 1) % N)]); return r; }; } },
  lruSet: { value: '100B', body: ({ lru, keys, value }) => { let i = 0; return (n) => { for (let j = 0; j < n; j++) lru.set(keys[(i = (i + 1) % N)], value); return n; }; } },
};

/** A copy of `arr` in a fixed pseudo-random order (bench/lib/zipf.mjs's seeded PRNG). */
function shuffled(arr) {
  const out = arr.slice();
  const rand = rng(12345);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

const CHUNK = 1000;
let sink;

/** Runs `body` in chunks for `ms`; returns ns per operation. */
async function runFor(body, ms) {
  let ops = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    sink = await body(CHUNK);
    ops += CHUNK;
    t = performance.now();
  }
  return ((t - t0) * 1e6) / ops;
}

function printSummary(sum, label) {
  if (top === 0) return;
  console.log(`\n${label}: ${(sum.totalUs / 1000).toFixed(0)} ms of samples (interval ${intervalUs} µs)${opt['no-inline'] ? ', TurboFan inlining OFF' : ''}`);
  console.log(formatTop(sum.self, top, '\nself time'));
  console.log(formatTop(sum.inclusive.filter((r) => r.fn !== '(root)'), top, '\ninclusive time (a function and everything it called)'));
}

async function profileLoop(mode) {
  const spec = MODES[mode];
  const keys = makeKeys(N);
  const value = VALUES[opt.value ?? spec.value];
  if (value === undefined) throw new Error(`--value must be one of ${Object.keys(VALUES).join(', ')}`);
  // setupPeers is the suite's own fill (it only needs ctx.grid and ctx.redis)
  const grids = [];
  const ctx = { grid: async (o) => { const g = await createGrid(o); grids.push(g); return g; }, redis: async () => null };
  const { lru, gm } = await setupPeers(ctx, keys, value);
  const order = opt.shuffle ? shuffled(keys) : keys;
  const body = spec.body({ gm, lru, keys: order, absent: makeKeys(N, 'absent:'), value });
  await runFor(body, 500);
  const free = [];
  for (let r = 0; r < 5; r++) free.push(await runFor(body, 400));
  const stop = await startProfile({ intervalUs });
  const profiled = await runFor(body, seconds * 1000);
  const profile = await stop();
  console.log(`${mode}${opt.shuffle ? ' (shuffled key order)' : ''}, ${N} keys: ${Math.min(...free).toFixed(0)} ns/op without the profiler (best of 5 × 0.4 s: ${free.map((x) => x.toFixed(0)).join(', ')}), ${profiled.toFixed(0)} ns/op while profiled`);
  if (opt.save) writeFileSync(opt.save, JSON.stringify(profile));
  printSummary(summarize([profile]), `${mode}, main thread`);
  await Promise.all(grids.map((g) => g.close()));
}

async function profileThreads() {
  const n = Number(opt.threads);
  const writeRatio = Number(opt['write-ratio']);
  const baseline = n > 1 ? await cpuScaling(n, 1000) : 1;
  const runs = [];
  for (const threads of [1, n]) {
    const grid = await createGrid({ workers: GRID_WORKERS, memory: process.env.PROFILE_MEMORY ?? GRID_MEMORY });
    try {
      const res = await runOnce({ variant: 'shardgrid', threads, keys: 100_000, opsTarget: Number(opt.ops), maxMs: 60_000, warmupMs: 400, handle: grid.handle, writeRatio, profile: true });
      const wallMs = Math.max(...res.map((r) => r.elapsedMs));
      const ops = res.reduce((a, r) => a + r.ops, 0);
      const hits = res.reduce((a, r) => a + r.hits, 0);
      const misses = res.reduce((a, r) => a + r.misses, 0);
      runs.push({ threads, seconds: wallMs / 1000, opsPerSec: ops / (wallMs / 1000), perThread: res.map((r) => r.ops / (r.elapsedMs / 1000)), hitRate: hits / (hits + misses), profiles: res.map((r) => r.profile) });
    } finally {
      await grid.close();
    }
  }
  console.log(`threads: ${Math.round((1 - writeRatio) * 100)}/${Math.round(writeRatio * 100)} Zipf read-through mix, 100,000 keys, ${Number(opt.ops).toLocaleString('en-US')} operations per thread, cold start, every thread profiled`);
  console.log(`CPU baseline: pure computation in ${n} threads ran ${baseline.toFixed(2)}x as fast as in 1 thread`);
  for (const r of runs) {
    console.log(`  ${r.threads} thread(s): ${r.seconds.toFixed(1)} s, ${(r.opsPerSec / 1e3).toFixed(0)} k ops/s aggregate (${(r.opsPerSec / runs[0].opsPerSec).toFixed(2)}x; per thread ${r.perThread.map((x) => `${(x / 1e3).toFixed(0)} k`).join(', ')}), hit rate ${(100 * r.hitRate).toFixed(1)} %`);
  }
  for (const r of runs) printSummary(summarize(r.profiles), `${r.threads} thread(s), all threads' samples together`);
  if (opt.save) writeFileSync(opt.save, JSON.stringify(runs.at(-1).profiles[0]));
}

const mode = positionals[0];
if (mode === 'threads') await profileThreads();
else if (MODES[mode]) await profileLoop(mode);
else {
  console.error(`usage: node bench/profile.mjs <${[...Object.keys(MODES), 'threads'].join('|')}> [--seconds S] [--keys K] [--shuffle] [--value V] [--top N] [--interval US] [--no-inline] [--save FILE] [--threads N --ops N --write-ratio R]`);
  process.exitCode = 2;
}
if (sink === Symbol.for('never')) console.log(sink);
