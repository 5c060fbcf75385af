// Where the read memo stops paying (issue 12: "no memo for values that are cheaper to decode than
// to memoize"). For each value kind and size, getSync over a working set that fits the memo, read
// round-robin, measured twice in one process on the same grid and keys: with the map's memo
// (every read a memo hit after the first pass) and with a memo that admits nothing (every read
// hashes the key, probes the table and decodes). Also the cost of a memo miss that is not
// admitted (a scan bigger than the memo) against no memo at all. Alternated rounds; medians.
//
// Usage: node bench/memo-line.mjs [rounds=5] [ms per measurement=300]   (after npx tsc -p .)
import { createGrid } from '../dist/index.js';
import { ReadMemo } from '../dist/memo.js';

const ROUNDS = Number(process.argv[2] ?? 5);
const MS = Number(process.argv[3] ?? 300);
const grid = await createGrid({ workers: 1, memory: '512MB' });

const kinds = [
  ['number', () => 12345.5],
  ['string 8 B', () => 'abcdefgh'],
  ['string 32 B', () => 'x'.repeat(32)],
  ['string 100 B', () => 'v'.repeat(100)],
  ['string 1 KB', () => 'w'.repeat(1000)],
  ['string 4 KB', () => 'y'.repeat(4000)],
  ['object (4 fields)', () => ({ id: 1042, name: 'Ada Lovelace', tags: ['math', 'engines'], score: 98.5 })],
];

function rate(fn, keys) {
  const n = keys.length;
  let ops = 0;
  let i = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < MS) {
    for (let b = 0; b < 4096; b++) {
      fn(keys[i]);
      i = i + 1 === n ? 0 : i + 1;
    }
    ops += 4096;
    t = performance.now();
  }
  return ops / ((t - t0) / 1000);
}
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const ns = (r) => (1e9 / r).toFixed(0).padStart(5);

console.log(`getSync ns/op, ${ROUNDS} alternated rounds of ${MS} ms, medians (node ${process.version})`);
console.log('kind                 | memo hit | no memo | no memo ÷ hit | scan miss (memo) | scan (no memo)');
for (const [name, make] of kinds) {
  const hot = grid.map(`line-${name}`);
  const cold = grid.map(`line-${name}-off`);
  const keys = Array.from({ length: 4096 }, (_, i) => `k:${i}`);
  const scanKeys = Array.from({ length: 50_000 }, (_, i) => `s:${i}`);
  for (const k of keys) {
    await hot.set(k, make());
    await cold.set(k, make());
  }
  for (let i = 0; i < scanKeys.length; i += 1000) {
    await hot.setMany(scanKeys.slice(i, i + 1000).map((k) => [k, make()]));
    await cold.setMany(scanKeys.slice(i, i + 1000).map((k) => [k, make()]));
  }
  // `cold` never memoizes: values over maxValue are never admitted
  cold.memos = new ReadMemo({ capacity: 1, maxValue: -1 });
  const r = { hit: [], off: [], scanMemo: [], scanOff: [] };
  for (let round = 0; round < ROUNDS; round++) {
    r.hit.push(rate((k) => hot.getSync(k), keys));
    r.off.push(rate((k) => cold.getSync(k), keys));
    r.scanMemo.push(rate((k) => hot.getSync(k), scanKeys));
    r.scanOff.push(rate((k) => cold.getSync(k), scanKeys));
  }
  const [h, o, sm, so] = [median(r.hit), median(r.off), median(r.scanMemo), median(r.scanOff)];
  console.log(`${name.padEnd(20)} | ${ns(h)}    | ${ns(o)}   | ${(h / o).toFixed(2).padStart(6)}x       | ${ns(sm)}            | ${ns(so)}`);
}
await grid.close();
