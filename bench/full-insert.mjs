// Inserts into a full grid, where a cache spends its life: the store's allocation path when every
// insert must evict or compact (`makeRoom`, `evictSampled`, `compact`). Not part of `npm test`.
//
// Each build gets a grid (2 virtual nodes, a 64 MB budget), filled with 100-byte strings under
// fresh keys until it evicts, then --extra more fresh keys (its pages settle as mixed as they
// stay), then --timed more, timed one `setSync` after another in --chunks chunks. Printed per
// build: µs per timed insert (the median chunk, and the mean), the entries held at the end, and
// of the newest 25 / 50 / 75 % of that many keys written, the fraction still readable
// (approximate LRU should keep nearly all of the newest).
//
// Usage: npm run build && node bench/full-insert.mjs [--dist DIR]... [options]
//   --dist DIR     a directory holding a built dist/ (default: this repository). Given twice
//                  (e.g. a copy of the starting commit, then `.`), both builds run in this one
//                  process, each with its own grid, and their chunks alternate (A B, B A, …), so
//                  load from other processes that drifts over seconds hits both alike; the figure
//                  to read is then the median over chunk pairs of B's time ÷ A's
//   --memory M     each grid's budget (default 64MB)
//   --extra N      fresh keys after the first eviction, untimed (default 700000)
//   --timed N      fresh keys timed per build (default 600000)
//   --chunks N     chunks the timed keys are split into (default 12)
//   --profile      CPU-profile the timed inserts (V8 inspector, bench/lib/profiler.mjs) and
//                  print the functions with the most self and inclusive time; with two builds
//                  each function shows up once per build (by its source path), both profiled
//                  under the same load
//   --top N        rows of the profile tables (default 25)
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const { values: opt } = parseArgs({
  options: {
    dist: { type: 'string', multiple: true },
    memory: { type: 'string', default: '64MB' },
    extra: { type: 'string', default: '700000' },
    timed: { type: 'string', default: '600000' },
    chunks: { type: 'string', default: '12' },
    profile: { type: 'boolean', default: false },
    top: { type: 'string', default: '25' },
  },
});
const dirs = (opt.dist ?? [path.resolve(HERE, '..')]).map((d) => path.resolve(d));
if (dirs.length > 2) {
  console.error('usage: node bench/full-insert.mjs [--dist DIR [--dist DIR]] [--memory M] [--extra N] [--timed N] [--chunks N] [--profile [--top N]]');
  process.exit(2);
}
const value = 'v'.repeat(100);
const timed = Number(opt.timed);
const CHUNKS = Number(opt.chunks);
const chunk = Math.max(1, Math.floor(timed / CHUNKS));

/** A full grid of the build in `dir`, and `insert(count)`: that many fresh keys, in µs per insert. */
async function setup(dir, tag) {
  const { createGrid } = await import(pathToFileURL(path.join(dir, 'dist/index.js')).href);
  const grid = await createGrid({ workers: 2, memory: opt.memory });
  const gm = grid.map('full');
  let n = 0;
  while (grid.stats().evictions === 0) gm.setSync(`${tag}${n++}`, value);
  for (const end = n + Number(opt.extra); n < end; n++) gm.setSync(`${tag}${n}`, value);
  const keys = Array.from({ length: timed }, (_, i) => `${tag}${n + i}`);
  let next = 0;
  const insert = (count) => {
    const end = Math.min(keys.length, next + count);
    const t0 = performance.now();
    for (let i = next; i < end; i++) gm.setSync(keys[i], value);
    const us = ((performance.now() - t0) * 1000) / (end - next);
    next = end;
    return us;
  };
  /** Entries held, and the fraction kept of the newest 25 / 50 / 75 % of that many keys written. */
  const retention = () => {
    const last = n + next;
    const entries = grid.stats().entries;
    const kept = [0.25, 0.5, 0.75].map((f) => {
      const k = Math.floor(entries * f);
      let found = 0;
      for (let i = last - k; i < last; i++) if (gm.getSync(`${tag}${i}`) !== undefined) found++;
      return found / k;
    });
    return { entries, evictions: grid.stats().evictions, kept };
  };
  return { dir, grid, insert, retention, times: [] };
}

const builds = [];
for (const [k, dir] of dirs.entries()) builds.push(await setup(dir, `${'ab'[k]}:`));
const prof = opt.profile ? await import(pathToFileURL(path.join(HERE, 'lib/profiler.mjs')).href) : null;
const stop = prof ? await prof.startProfile() : null;
for (let c = 0; c < CHUNKS; c++) {
  const order = c & 1 ? [...builds].reverse() : builds;
  for (const b of order) b.times.push(b.insert(chunk));
}
const profile = stop ? await stop() : null;

const median = (x) => [...x].sort((p, q) => p - q)[x.length >> 1];
const mean = (x) => x.reduce((a, b) => a + b, 0) / x.length;
for (const [k, b] of builds.entries()) {
  const r = b.retention();
  const label = builds.length > 1 ? `${'AB'[k]} ` : '';
  console.log(`${label}${median(b.times).toFixed(3)} µs/insert (median of ${CHUNKS} chunks of ${chunk}; mean ${mean(b.times).toFixed(3)}), ${r.entries} entries, newest 25/50/75 % kept ${r.kept.map((f) => f.toFixed(4)).join(' / ')}, evictions ${r.evictions}  (${b.dir})`);
}
if (builds.length === 2) {
  const ratios = builds[1].times.map((t, c) => t / builds[0].times[c]);
  const q = [...ratios].sort((a, b) => a - b);
  console.log(`B ÷ A per chunk pair: median ${median(ratios).toFixed(3)} (quartiles ${q[q.length >> 2].toFixed(3)}, ${q[(3 * q.length) >> 2].toFixed(3)}; ${ratios.length} pairs)`);
}
if (profile) {
  const sum = prof.summarize([profile]);
  const top = Number(opt.top);
  console.log(`${prof.formatTop(sum.self, top, 'self time')}\n${prof.formatTop(sum.inclusive, top, 'inclusive time')}`);
}
for (const b of builds) await b.grid.close();
