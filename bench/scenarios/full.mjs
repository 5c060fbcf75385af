// A cache at its budget, where a cache spends its life: every set of a fresh key evicts an older
// entry. The other scenarios overwrite keys that are present, which never evicts. shardgrid and
// lru-cache (maxSize = the same budget, entries sized as in every scenario) are filled until
// they evict, then each task writes keys none of them holds. Afterwards the grid's newest keys
// are counted (approximate LRU must keep them).
import { scenario } from '../lib/harness.mjs';
import { GRID_WORKERS, VALUES, makeLru } from '../lib/peers.mjs';

const MB = 1024 * 1024;

/** Fresh keys for one task: its own prefix, so no task writes a key another one wrote. */
const fresh = (prefix) => {
  let n = 0;
  return () => `${prefix}${n++}`;
};

await scenario({
  name: 'full',
  title: 'set into a full cache (every set evicts)',
  description: 'a grid and lru-cache at the same budget (64 MB; 16 MB with --quick), filled with 100-byte strings until they evict; then sets of keys neither holds, so each evicts an older entry.',
}, async (ctx) => {
  const budgetMb = ctx.quick ? 16 : 64;
  ctx.evictionsExpected = true;
  const value = VALUES['100B'];
  ctx.progress(`filling lru-cache and the grid to ${budgetMb} MB`);
  const lru = makeLru({ maxBytes: budgetMb * MB });
  for (let i = 0; lru.size === i; i++) lru.set(`fill:${i}`, value);
  const grid = await ctx.grid({ workers: GRID_WORKERS, memory: `${budgetMb}MB` });
  const gm = grid.map('full');
  let filled = 0;
  while (grid.stats().evictions === 0) gm.setSync(`fill:${filled++}`, value);
  // a fifth more, so that the grid's pages are as mixed as they stay
  for (const end = filled * 1.2; filled < end; filled++) gm.setSync(`fill:${filled}`, value);
  const [l1, l2, s1, s2] = [fresh('l1:'), fresh('l2:'), fresh('s1:'), fresh('s2:')];
  await ctx.bench('full', [
    { id: 'lru', name: 'lru-cache set (evicts)', subject: 'lru-cache', group: 'sync', fn: () => lru.set(l1(), value) },
    { id: 'sg-sync', name: 'shardgrid setSync (evicts)', subject: 'shardgrid', group: 'sync', sg: true, fn: () => gm.setSync(s1(), value) },
    { id: 'lru-awaited', name: 'lru-cache set (evicts, awaited)', subject: 'lru-cache', group: 'async', async: true, fn: async () => lru.set(l2(), value) },
    { id: 'sg', name: 'shardgrid set (evicts)', subject: 'shardgrid', group: 'async', sg: true, async: true, fn: () => gm.set(s2(), value) },
  ], { title: `set of fresh keys into a full ${budgetMb} MB cache, 100 B strings`, note: 'ratios: shardgrid setSync ÷ lru-cache set, shardgrid set ÷ lru-cache set (awaited)' });
  const s = grid.stats();
  ctx.extra.full = { budgetMb, gridEntries: s.entries, lruEntries: lru.size, evictions: s.evictions };
  ctx.note(`at the end: the grid holds ${s.entries} entries, lru-cache ${lru.size} (same budget; lru-cache counts its entries' estimated heap size)`);
});
