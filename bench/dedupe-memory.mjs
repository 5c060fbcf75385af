// Heap and full-GC cost of the exactly-once records (src/cluster/dedupe.ts) at their bound:
// 271 partitions × DEDUPE_MAX_PER_PARTITION records of ids `<member id>.<base-36 counter>`, then
// the time of a check-and-record (`has` then `put`) of new ids in the full store.
// Usage: npm run build && node --expose-gc bench/dedupe-memory.mjs [path to a built dedupe.js]
import path from 'node:path';
import { pathToFileURL } from 'node:url';

if (typeof global.gc !== 'function') {
  console.error('run with node --expose-gc');
  process.exit(2);
}
const file = path.resolve(process.argv[2] ?? 'dist/cluster/dedupe.js');
const { Dedupe, DEDUPE_MAX_PER_PARTITION } = await import(pathToFileURL(file).href);
const P = 271;
global.gc();
const h0 = process.memoryUsage().heapUsed;
const d = new Dedupe(P);
let seq = 0;
const id = () => `m-1007df47433d.${(++seq).toString(36)}`;
for (let i = 0; i < P * DEDUPE_MAX_PER_PARTITION; i++) d.put(i % P, id(), undefined);
global.gc();
const heap = process.memoryUsage().heapUsed - h0;
let t0 = performance.now();
for (let i = 0; i < 10; i++) global.gc();
const gcMs = (performance.now() - t0) / 10;
const N = 500_000;
t0 = performance.now();
for (let i = 0; i < N; i++) {
  const r = id();
  const p = i % P;
  if (!d.has(p, r)) d.put(p, r, undefined);
}
const us = ((performance.now() - t0) * 1000) / N;
console.log(`${file}: ${P * DEDUPE_MAX_PER_PARTITION} records, heap ${(heap / 2 ** 20).toFixed(1)} MiB, full GC ${gcMs.toFixed(1)} ms, has+put of a new id ${us.toFixed(2)} µs`);
