// Hot path, single thread, through the public API: get and set of a 100-byte string against Map
// and lru-cache, measured in the same run with tinybench; prints a table and the ratios.
// Usage: node bench/hotpath.mjs [--quick]
import { Bench } from 'tinybench';
import { LRUCache } from 'lru-cache';
import { createGrid } from '../dist/index.js';

const quick = process.argv.includes('--quick');
const KEYS = 10_000;
const keys = Array.from({ length: KEYS }, (_, i) => `key:${i}`);
const value = 'v'.repeat(100);

const grid = await createGrid({ workers: 2, memory: '256MB' });
const gm = grid.map('bench');
const map = new Map();
const lru = new LRUCache({ max: 1_000_000 });
for (const k of keys) {
  await gm.set(k, value);
  map.set(k, value);
  lru.set(k, value);
}

let i = 0;
let sink = 0;
const next = () => keys[(i = (i + 1) % KEYS)];
const bench = new Bench({ time: quick ? 300 : 1500, warmupTime: quick ? 100 : 300 });
bench
  .add('Map get', () => { sink += map.get(next()).length; })
  .add('lru-cache get', () => { sink += lru.get(next()).length; })
  .add('shardgrid get', async () => { sink += (await gm.get(next())).length; })
  .add('Map set', () => { map.set(next(), value); })
  .add('lru-cache set', () => { lru.set(next(), value); })
  .add('shardgrid set', async () => { await gm.set(next(), value); });
await bench.run();

const hz = Object.fromEntries(bench.tasks.map((t) => [t.name, t.result.throughput?.mean ?? t.result.hz]));
console.table(bench.tasks.map((t) => ({
  task: t.name,
  'ops/s': Math.round(hz[t.name]).toLocaleString('en-US'),
  'mean µs': ((t.result.latency?.mean ?? t.result.mean) * 1000).toFixed(3),
  'p99 µs': ((t.result.latency?.p99 ?? t.result.p99) * 1000).toFixed(3),
})));
const ratio = (a, b) => (hz[a] / hz[b]).toFixed(2);
console.log(`shardgrid get / lru-cache get = ${ratio('shardgrid get', 'lru-cache get')}x   (target ≥ 0.3x)`);
console.log(`shardgrid set / lru-cache set = ${ratio('shardgrid set', 'lru-cache set')}x   (target ≥ 0.2x)`);
console.log(`shardgrid get / Map get       = ${ratio('shardgrid get', 'Map get')}x`);
if (sink < 0) console.log(sink);
await grid.close();
