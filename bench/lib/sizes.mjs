// Shared body of the key-count sweep (issue 12): one key count per scenario file (sizes-10k,
// sizes-100k, sizes-1m: a fresh process each, so the 1M-key heaps of one do not weigh on the next),
// three access patterns, get and set, shardgrid against Map and lru-cache in the same process.
//
// Patterns, each a precomputed index sequence of 2^20 key indexes read in order (the timed loop
// only reads `keys[idx[i & MASK]]`):
//   scan     round-robin over all keys (0, 1, 2, … N-1, 0, …): every key comes back after N-1
//            others, the worst case for any cache in front of the data (the "cliff")
//   uniform  uniformly random keys (seeded)
//   zipf     Zipf(s = 0.99) over the keys (seeded; ranks scattered over the key space)
// Values: 100-byte flat strings. Sets overwrite present keys with a same-size value.
import { makeKeys, makeLru, VALUES } from './peers.mjs';
import { rng, zipfIndices } from './zipf.mjs';

const SEQ = 1 << 20;
const MASK = SEQ - 1;
/** Budget for the grid and for lru-cache's maxSize: room for 1M entries without eviction. */
export const SIZES_MEMORY = '512MB';
export const SIZES_MEMORY_BYTES = 512 * 1024 * 1024;
export const PATTERNS = ['scan', 'uniform', 'zipf'];

/** The index sequence of `pattern` over n keys. */
export function sequence(pattern, n) {
  const idx = new Uint32Array(SEQ);
  if (pattern === 'scan') {
    for (let i = 0; i < SEQ; i++) idx[i] = i % n;
    // SEQ is not a multiple of n: the wrap from idx[SEQ-1] to idx[0] breaks the cycle once per
    // 2^20 reads, a negligible distortion (n ≤ 2^20)
  } else if (pattern === 'uniform') {
    const r = rng(7);
    for (let i = 0; i < SEQ; i++) idx[i] = Math.floor(r() * n);
  } else if (pattern === 'zipf') {
    return zipfIndices(n, SEQ, { s: 0.99, seed: 11 });
  } else throw new Error(`unknown pattern ${pattern}`);
  return idx;
}

/** A key source over `keys` in the order of `idx`; each task gets its own cursor. */
const cursor = (keys, idx) => {
  let i = 0;
  return () => keys[idx[(i = (i + 1) & MASK)]];
};

const label = (n) => (n >= 1_000_000 ? `${n / 1_000_000}M` : `${n / 1000}k`);

export async function sizeSweep(ctx, n) {
  const keys = makeKeys(n);
  const value = VALUES['100B'];
  ctx.progress(`filling Map, lru-cache and the grid with ${n} keys`);
  const map = new Map();
  const lru = makeLru({ maxBytes: SIZES_MEMORY_BYTES });
  for (const k of keys) {
    map.set(k, value);
    lru.set(k, value);
  }
  const grid = await ctx.grid({ workers: 2, memory: SIZES_MEMORY });
  const gm = grid.map('sizes');
  for (let i = 0; i < n; i += 1000) await gm.setMany(keys.slice(i, i + 1000).map((k) => [k, value]));
  for (const pattern of PATTERNS) {
    const idx = sequence(pattern, n);
    const c = () => cursor(keys, idx);
    const tag = `${label(n)} keys, ${pattern}`;
    const [g1, g2, g3, g4] = [c(), c(), c(), c()];
    await ctx.bench(`get-${pattern}`, [
      { id: `${pattern}-map-get`, name: `Map get`, subject: 'Map', fn: () => map.get(g1()) },
      { id: `${pattern}-lru-get`, name: `lru-cache get`, subject: 'lru-cache', fn: () => lru.get(g2()) },
      { id: `${pattern}-sg-get`, name: `shardgrid get`, subject: 'shardgrid', sg: true, async: true, fn: () => gm.get(g3()) },
      { id: `${pattern}-sg-getsync`, name: `shardgrid getSync`, subject: 'shardgrid', fn: () => gm.getSync(g4()) },
    ], { title: `get, ${tag}, 100 B strings`, note: 'ratios are shardgrid get ÷ the row; for getSync ÷ lru-cache get see the targets' });
    const [s1, s2, s3, s4] = [c(), c(), c(), c()];
    await ctx.bench(`set-${pattern}`, [
      { id: `${pattern}-map-set`, name: `Map set`, subject: 'Map', fn: () => map.set(s1(), value) },
      { id: `${pattern}-lru-set`, name: `lru-cache set`, subject: 'lru-cache', fn: () => lru.set(s2(), value) },
      { id: `${pattern}-sg-set`, name: `shardgrid set`, subject: 'shardgrid', sg: true, async: true, fn: () => gm.set(s3(), value) },
      { id: `${pattern}-sg-setsync`, name: `shardgrid setSync`, subject: 'shardgrid', fn: () => gm.setSync(s4(), value) },
    ], { title: `set, ${tag}, 100 B strings (overwrites)`, note: 'ratios are shardgrid set ÷ the row; for setSync ÷ lru-cache set see the targets' });
  }
  ctx.extra.sizes = { keys: n, sequence: SEQ, patterns: PATTERNS, memory: SIZES_MEMORY, entries: grid.stats().entries, lruEntries: lru.size };
  if (grid.stats().entries !== n) ctx.warn(`the grid holds ${grid.stats().entries} entries, not ${n}`);
  if (lru.size !== n) ctx.warn(`lru-cache holds ${lru.size} entries, not ${n}`);
}
