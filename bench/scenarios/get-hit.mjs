// get of a present key, 100-byte string values, 10,000 keys read round-robin.
import { scenario } from '../lib/harness.mjs';
import { GETSYNC_NOTE, cursor, setupPeers } from '../lib/kv-scenario.mjs';
import { VALUES, makeKeys } from '../lib/peers.mjs';

await scenario({
  name: 'get-hit',
  title: 'get (hit), 100 B string',
  description: 'get of a present key: 10,000 keys with 100-byte string values, read round-robin. Redis: one awaited GET at a time.',
}, async (ctx) => {
  const keys = makeKeys(10_000);
  const { map, lru, grid, gm, redis } = await setupPeers(ctx, keys, VALUES['100B']);
  const [k1, k2, k3, k4, k5, k6] = Array.from({ length: 6 }, () => cursor(keys));
  await ctx.bench('get', [
    { id: 'map', name: 'Map get', subject: 'Map', fn: () => map.get(k1()) },
    { id: 'lru', name: 'lru-cache get', subject: 'lru-cache', fn: () => lru.get(k2()) },
    { id: 'lru-awaited', name: 'lru-cache get (awaited)', subject: 'lru-cache', async: true, fn: async () => lru.get(k3()) },
    { id: 'shardgrid', name: 'shardgrid get', subject: 'shardgrid', sg: true, async: true, fn: () => gm.get(k4()) },
    { id: 'shardgrid-sync', name: 'shardgrid getSync', subject: 'shardgrid', fn: () => gm.getSync(k6()) },
    { id: 'redis', name: 'Redis GET (c=1)', subject: 'redis', async: true, fn: () => redis.get(k5()), skip: redis ? undefined : ctx.redisSkip },
  ], { title: 'get (hit), 100 B string', note: GETSYNC_NOTE });
  const s = grid.stats();
  if (s.misses > 0) ctx.warn(`the grid counted ${s.misses} misses in a hit-only scenario`);
});
