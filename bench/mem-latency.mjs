// The memory floor under the 1M-key rows (issue 12): how long one random read of a large
// SharedArrayBuffer takes on this machine, when each read depends on the one before (a chain of
// loads, as a get's key → hash-table slot → record) and when the reads are independent (the CPU
// overlaps them). A get of a key not in the CPU caches cannot be faster than its chain of
// dependent misses; at 1M keys in random order every get starts cold.
//
// Usage: node bench/mem-latency.mjs [--mb 512] [--reads 4000000]
//   --mb     size of the buffer read (default 512, the sizes-1m budget); a run at 2 shows the
//            cache-resident cost for contrast
// Prints ns per read for: a dependent chain (pointer chase over 2^20 slots spread evenly over the
// buffer, a random cycle) and independent random reads of the same slots.
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({ options: { mb: { type: 'string', default: '512' }, reads: { type: 'string', default: '4000000' } } });
const words = (Number(opt.mb) * 1024 * 1024) >>> 2;
const READS = Number(opt.reads);
const a = new Uint32Array(new SharedArrayBuffer(words * 4));
const M = Math.min(1 << 20, words >>> 4);
const stride = Math.floor(words / M);

// a random cycle through M slots (Sattolo's shuffle: one cycle, so the chase visits every slot)
let seed = 12345;
const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
const perm = new Uint32Array(M);
for (let i = 0; i < M; i++) perm[i] = i;
for (let i = M - 1; i > 0; i--) {
  const j = Math.floor(rand() * i);
  const t = perm[i];
  perm[i] = perm[j];
  perm[j] = t;
}
for (let i = 0; i < M; i++) a[perm[i] * stride] = perm[(i + 1) % M] * stride;
const idx = new Uint32Array(1 << 22);
for (let i = 0; i < idx.length; i++) idx[i] = Math.floor(rand() * M) * stride;

function chase(n) {
  let p = 0;
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) p = a[p];
  return [Number(process.hrtime.bigint() - t) / n, p];
}
function independent(n) {
  let s = 0;
  const mask = idx.length - 1;
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) s += a[idx[i & mask]];
  return [Number(process.hrtime.bigint() - t) / n, s];
}

chase(READS >>> 2); // warm-up: pages touched, code optimized
independent(READS >>> 2);
const rows = [];
for (let r = 0; r < 3; r++) rows.push([chase(READS)[0], independent(READS)[0]]);
const med = (k) => rows.map((x) => x[k]).sort((x, y) => x - y)[1];
console.log(`buffer ${opt.mb} MB, ${M} slots ${stride * 4} bytes apart, ${READS} reads per run, 3 runs (median):`);
console.log(`  dependent chain      ${med(0).toFixed(0)} ns per read (runs: ${rows.map((x) => x[0].toFixed(0)).join(', ')})`);
console.log(`  independent reads    ${med(1).toFixed(0)} ns per read (runs: ${rows.map((x) => x[1].toFixed(0)).join(', ')})`);
