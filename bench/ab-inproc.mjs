// In-process interleaved A/B of two builds of shardgrid: both are loaded into one process, each
// with its own grid, and a loop of one operation runs in 50 ms slices alternating between them
// (A B, B A, …). Machine noise that drifts over seconds then hits both sides alike; the figure to
// read is the median over slice pairs of B's time ÷ A's.
//
// Usage: node bench/ab-inproc.mjs <mode> <dirA> <dirB> [--slices 40] [--keys 10000] [--uniform] [--memory 256MB]
//   --uniform: keys in a seeded uniformly random order (2^20 draws) instead of round-robin
//   dirA, dirB: directories holding a built dist/ (e.g. copies of the repository at two commits)
//   modes: set, setRead (set of keys this thread read first), get, getSync, setMany (100 per call)
// Values are 100-byte strings; each grid has 2 virtual nodes and a 256 MB budget, as the suite.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values: opt, positionals } = parseArgs({
  options: { slices: { type: 'string', default: '40' }, keys: { type: 'string', default: '10000' }, uniform: { type: 'boolean', default: false }, memory: { type: 'string', default: '256MB' }, help: { type: 'boolean', default: false } },
  allowPositionals: true,
});
const [mode, dirA, dirB] = positionals;
const MODES = ['set', 'setRead', 'get', 'getSync', 'setMany'];
if (opt.help || !MODES.includes(mode) || dirB === undefined) {
  console.error(`usage: node bench/ab-inproc.mjs <${MODES.join('|')}> <dirA> <dirB> [--slices N] [--keys N] [--uniform] [--memory 256MB]`);
  process.exit(opt.help ? 0 : 2);
}
const SLICES = Number(opt.slices);
const N = Number(opt.keys);
const keys = Array.from({ length: N }, (_, i) => `key:${i}`);
const value = 'v'.repeat(100);
const { rng } = await import('./lib/zipf.mjs');
const order = new Uint32Array(1 << 20);
{
  const r = rng(7);
  for (let j = 0; j < order.length; j++) order[j] = opt.uniform ? Math.floor(r() * N) : j % N;
}

async function setup(dir) {
  const { createGrid } = await import(pathToFileURL(path.resolve(dir, 'dist/index.js')).href);
  const grid = await createGrid({ workers: 2, memory: opt.memory });
  const gm = grid.map('bench');
  for (let i = 0; i < N; i += 500) await gm.setMany(keys.slice(i, i + 500).map((k) => [k, value]));
  if (mode === 'setRead') for (const k of keys) gm.getSync(k);
  let i = 0;
  let o = 0;
  const next = opt.uniform ? () => keys[order[(o = (o + 1) & 0xfffff)]] : () => keys[(i = (i + 1) % N)];
  const bodies = {
    set: async (n) => { for (let j = 0; j < n; j++) await gm.set(next(), value); },
    setRead: async (n) => { for (let j = 0; j < n; j++) await gm.set(next(), value); },
    get: async (n) => { for (let j = 0; j < n; j++) await gm.get(next()); },
    getSync: async (n) => { for (let j = 0; j < n; j++) gm.getSync(next()); },
    setMany: async (n) => {
      for (let j = 0; j < n; j += 100) {
        const b = (i = (i + 100) % N);
        await gm.setMany(keys.slice(b, b + 100).map((k) => [k, value]));
      }
    },
  };
  return { grid, body: bodies[mode] };
}

/** ns per operation of `body` run for `ms`. */
async function slice(body, ms) {
  let ops = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    await body(200);
    ops += 200;
    t = performance.now();
  }
  return ((t - t0) * 1e6) / ops;
}

const a = await setup(dirA);
const b = await setup(dirB);
for (let w = 0; w < 5; w++) {
  await slice(a.body, 50);
  await slice(b.body, 50);
}
const ta = [];
const tb = [];
for (let s = 0; s < SLICES; s++) {
  if (s & 1) {
    tb.push(await slice(b.body, 50));
    ta.push(await slice(a.body, 50));
  } else {
    ta.push(await slice(a.body, 50));
    tb.push(await slice(b.body, 50));
  }
}
const median = (x) => [...x].sort((p, q) => p - q)[x.length >> 1];
console.log(`${mode}, ${N} keys${opt.uniform ? ' (uniform random order)' : ''}, ${SLICES} slice pairs of 50 ms: A ${median(ta).toFixed(0)} ns/op, B ${median(tb).toFixed(0)} ns/op (medians); median of B ÷ A per pair ${median(tb.map((x, k) => x / ta[k])).toFixed(3)}`);
console.log(`  A = ${dirA}\n  B = ${dirB}`);
await a.grid.close();
await b.grid.close();
