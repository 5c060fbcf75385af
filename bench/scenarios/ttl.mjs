// Entries with a TTL: set with a ttl, and get of entries that carry one.
import { scenario } from '../lib/harness.mjs';
import { cursor, setupPeers } from '../lib/kv-scenario.mjs';
import { VALUES, makeKeys } from '../lib/peers.mjs';

const TTL = 60_000;

await scenario({
  name: 'ttl',
  title: 'entries with a TTL',
  description: `set with a ttl of ${TTL / 1000} s and get of entries that carry a ttl; 10,000 keys, 100-byte strings. The grid map and lru-cache are both configured with ttl ${TTL} ms (lru-cache: ttl option, same maxSize bound); Redis uses SET … PX. Map has no TTL and is left out. Nothing expires during the run.`,
}, async (ctx) => {
  const keys = makeKeys(10_000);
  const value = VALUES['100B'];
  const { lru, grid, gm, redis } = await setupPeers(ctx, keys, value, { ttl: TTL, mapName: 'ttl' });
  const skip = redis ? undefined : ctx.redisSkip;
  // one options object per peer: lru-cache's set writes `status` into the object it is given
  // (lru-cache 11, setOptions.status = status), which shardgrid's set then refuses as an unknown option
  const lruOpt = { ttl: TTL };
  const sgOpt = { ttl: TTL };
  const [s1, s2, s3, s4] = Array.from({ length: 4 }, () => cursor(keys));
  await ctx.bench('set-ttl', [
    { id: 'lru-set', name: 'lru-cache set {ttl}', subject: 'lru-cache', fn: () => lru.set(s1(), value, lruOpt) },
    { id: 'lru-set-awaited', name: 'lru-cache set {ttl} (awaited)', subject: 'lru-cache', async: true, fn: async () => lru.set(s2(), value, lruOpt) },
    { id: 'shardgrid-set', name: 'shardgrid set {ttl}', subject: 'shardgrid', sg: true, async: true, fn: () => gm.set(s3(), value, sgOpt) },
    { id: 'redis-set', name: 'Redis SET PX (c=1)', subject: 'redis', async: true, fn: () => redis.set(s4(), value, 'PX', TTL), skip },
  ], { title: `set with ttl ${TTL / 1000} s` });
  const [g1, g2, g3, g4] = Array.from({ length: 4 }, () => cursor(keys));
  await ctx.bench('get-ttl', [
    { id: 'lru-get', name: 'lru-cache get (ttl entry)', subject: 'lru-cache', fn: () => lru.get(g1()) },
    { id: 'lru-get-awaited', name: 'lru-cache get (ttl entry, awaited)', subject: 'lru-cache', async: true, fn: async () => lru.get(g2()) },
    { id: 'shardgrid-get', name: 'shardgrid get (ttl entry)', subject: 'shardgrid', sg: true, async: true, fn: () => gm.get(g3()) },
    { id: 'redis-get', name: 'Redis GET (ttl entry, c=1)', subject: 'redis', async: true, fn: () => redis.get(g4()), skip },
  ], { title: 'get of entries with a ttl' });
  const s = grid.stats();
  if (s.expirations > 0) ctx.warn(`${s.expirations} entries expired during the run`);
  if (s.misses > 0) ctx.warn(`the grid counted ${s.misses} misses (expected none)`);
});
