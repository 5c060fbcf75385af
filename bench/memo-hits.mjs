// How often the read memo serves a get at 1M keys (issue 12): fills a grid with N keys of 100 B,
// reads the sizes-1m sequences (bench/lib/sizes.mjs: scan, uniform, Zipf(0.99)) with getSync, and
// counts the lookups ReadMemo.get answered, against the ideal for its size (the share of reads
// that go to the `capacity` most-read keys of the sequence) and the share it skipped (bypass).
// Also prints getSync's rate; read it only on a quiet machine.
//
// Usage: npm run build && node bench/memo-hits.mjs [--keys 1000000] [--rounds 2]
import { parseArgs } from 'node:util';
import { createGrid } from '../dist/index.js';
import { MEMO_DEFAULTS, MEMO_MISS, ReadMemo } from '../dist/memo.js';
import { PATTERNS, sequence } from './lib/sizes.mjs';
import { makeKeys, VALUES } from './lib/peers.mjs';

const { values: opt } = parseArgs({ options: { keys: { type: 'string', default: '1000000' }, rounds: { type: 'string', default: '2' } } });
const N = Number(opt.keys);
let looks = 0;
let hits = 0;
let skipped = 0;
const get = ReadMemo.prototype.get;
ReadMemo.prototype.get = function (key, st) {
  looks++;
  if (this.bypassing) skipped++;
  const r = get.call(this, key, st);
  if (r !== MEMO_MISS) hits++;
  return r;
};
const grid = await createGrid({ workers: 2, memory: N > 300_000 ? '512MB' : '256MB' });
const m = grid.map('memo-hits');
const keys = makeKeys(N);
for (let i = 0; i < N; i += 1000) await m.setMany(keys.slice(i, i + 1000).map((k) => [k, VALUES['100B']]));
for (const pattern of PATTERNS) {
  const idx = sequence(pattern, N);
  const count = new Map();
  for (const i of idx) count.set(i, (count.get(i) ?? 0) + 1);
  const top = [...count.values()].sort((a, b) => b - a).slice(0, MEMO_DEFAULTS.capacity).reduce((a, b) => a + b, 0);
  const rows = [];
  for (let r = 0; r < Number(opt.rounds); r++) {
    looks = hits = skipped = 0;
    const t = performance.now();
    for (let i = 0; i < idx.length; i++) m.getSync(keys[idx[i]]);
    const ms = performance.now() - t;
    rows.push(`${(hits / looks).toFixed(3)} hit, ${(skipped / looks).toFixed(3)} skipped, ${(idx.length / ms).toFixed(0)} k getSync/s`);
  }
  console.log(`${pattern.padEnd(8)} ${count.size} distinct keys in ${idx.length} reads; ideal for ${MEMO_DEFAULTS.capacity} entries ${(top / idx.length).toFixed(3)}; rounds: ${rows.join(' | ')}`);
}
await grid.close();
