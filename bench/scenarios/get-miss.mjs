// get of an absent key: the map holds 10,000 keys, reads go to 10,000 other keys.
import { scenario } from '../lib/harness.mjs';
import { GETSYNC_NOTE, cursor, setupPeers } from '../lib/kv-scenario.mjs';
import { VALUES, makeKeys } from '../lib/peers.mjs';

await scenario({
  name: 'get-miss',
  title: 'get (miss)',
  description: 'get of an absent key: 10,000 keys of 100-byte strings are stored, reads ask for 10,000 keys that are not.',
}, async (ctx) => {
  const keys = makeKeys(10_000);
  const absent = makeKeys(10_000, 'absent:');
  const { map, lru, grid, gm, redis } = await setupPeers(ctx, keys, VALUES['100B']);
  const [k1, k2, k3, k4, k5, k6] = Array.from({ length: 6 }, () => cursor(absent));
  await ctx.bench('get-miss', [
    { id: 'map', name: 'Map get (miss)', subject: 'Map', fn: () => map.get(k1()) },
    { id: 'lru', name: 'lru-cache get (miss)', subject: 'lru-cache', fn: () => lru.get(k2()) },
    { id: 'lru-awaited', name: 'lru-cache get (miss, awaited)', subject: 'lru-cache', async: true, fn: async () => lru.get(k3()) },
    { id: 'shardgrid', name: 'shardgrid get (miss)', subject: 'shardgrid', sg: true, async: true, fn: () => gm.get(k4()) },
    { id: 'shardgrid-sync', name: 'shardgrid getSync (miss)', subject: 'shardgrid', fn: () => gm.getSync(k6()) },
    { id: 'redis', name: 'Redis GET (miss, c=1)', subject: 'redis', async: true, fn: () => redis.get(k5()), skip: redis ? undefined : ctx.redisSkip },
  ], { title: 'get (miss)', note: GETSYNC_NOTE });
  const s = grid.stats();
  if (s.hits > 0) ctx.warn(`the grid counted ${s.hits} hits in a miss-only scenario`);
});
