// Profiling helper (not part of the suite): node --cpu-prof bench/_loop.mjs get|getSync|set|obj
import { createGrid } from '../dist/index.js';
import { LRUCache } from 'lru-cache';
const KEYS = 10_000; const keys = Array.from({ length: KEYS }, (_, i) => `key:${i}`); const value = 'v'.repeat(100);
const grid = await createGrid({ workers: 1, memory: '256MB' }); const gm = grid.map('bench');
const lru = new LRUCache({ max: 100_000 });
for (const k of keys) { await gm.set(k, value); lru.set(k, value); }
let sink = 0;
const mode = process.argv[2] ?? 'get';
const N = mode === 'set' ? 1_000_000 : 3_000_000;
let best = Infinity;
for (let rep = 0; rep < 5; rep++) {
const t = performance.now();
if (mode === 'getSync') for (let i = 0; i < N; i++) sink += gm.getSync(keys[i % KEYS]).length;
else if (mode === 'get') for (let i = 0; i < N; i++) sink += (await gm.get(keys[i % KEYS])).length;
else if (mode === 'set') for (let i = 0; i < N; i++) await gm.set(keys[i % KEYS], value);
else if (mode === 'lru') for (let i = 0; i < N; i++) sink += lru.get(keys[i % KEYS]).length;
else if (mode === 'lruset') for (let i = 0; i < N; i++) lru.set(keys[i % KEYS], value);
best = Math.min(best, performance.now() - t);
}
const ms = best;
console.log(mode, (N / ms * 1000 / 1e6).toFixed(2), 'M ops/s', (ms * 1e6 / N).toFixed(0), 'ns/op (best of 5)', sink >= 0);
await grid.close();
