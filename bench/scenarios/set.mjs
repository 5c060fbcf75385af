// set (overwrite) of 100-byte strings over 10,000 keys.
import { scenario } from '../lib/harness.mjs';
import { cursor, setupPeers } from '../lib/kv-scenario.mjs';
import { VALUES, makeKeys } from '../lib/peers.mjs';

await scenario({
  name: 'set',
  title: 'set, 100 B string',
  description: 'set of a 100-byte string over 10,000 keys round-robin (each set overwrites an entry). Redis: one awaited SET at a time.',
}, async (ctx) => {
  const keys = makeKeys(10_000);
  const value = VALUES['100B'];
  const { map, lru, gm, redis } = await setupPeers(ctx, keys, value);
  const [k1, k2, k3, k4, k5] = Array.from({ length: 5 }, () => cursor(keys));
  await ctx.bench('set', [
    { id: 'map', name: 'Map set', subject: 'Map', fn: () => map.set(k1(), value) },
    { id: 'lru', name: 'lru-cache set', subject: 'lru-cache', fn: () => lru.set(k2(), value) },
    { id: 'lru-awaited', name: 'lru-cache set (awaited)', subject: 'lru-cache', async: true, fn: async () => lru.set(k3(), value) },
    { id: 'shardgrid', name: 'shardgrid set', subject: 'shardgrid', sg: true, async: true, fn: () => gm.set(k4(), value) },
    { id: 'redis', name: 'Redis SET (c=1)', subject: 'redis', async: true, fn: () => redis.set(k5(), value), skip: redis ? undefined : ctx.redisSkip },
  ], { title: 'set, 100 B string' });
});
