// Shared body of the single-key get/set scenarios: one value kind, every peer, the same key set.
import { GRID_MEMORY, GRID_WORKERS, makeKeys, makeLru, redisDecodeObject, redisEncode } from './peers.mjs';

/** Round-robin key cursor; each task gets its own so tasks do not share state. */
export const cursor = (keys) => {
  let i = 0;
  const n = keys.length;
  return () => keys[(i = (i + 1) % n)];
};

/** Table note of every get table with a getSync row. */
export const GETSYNC_NOTE = 'shardgrid getSync is the synchronous API (no Promise, same result as an awaited get in a single-process grid); its "shardgrid ÷ this" is get ÷ getSync, i.e. what the Promise and the await cost. "(awaited)" lru-cache rows wrap the sync call in an async function and await it, as a caller of a Promise API does.';

/**
 * Fills Map, lru-cache, a grid map and Redis with `keys` → `value`.
 * Returns { map, lru, grid, gm, redis } (redis null when unavailable).
 */
export async function setupPeers(ctx, keys, value, { ttl, fill = true, mapName = 'bench' } = {}) {
  const map = new Map();
  const lru = makeLru({ ttl });
  const grid = await ctx.grid({ workers: GRID_WORKERS, memory: GRID_MEMORY });
  const gm = grid.map(mapName, ttl !== undefined ? { ttl } : undefined);
  const redis = await ctx.redis();
  if (redis) await redis.flushall();
  if (fill) {
    for (const k of keys) {
      map.set(k, value);
      lru.set(k, value);
    }
    for (let i = 0; i < keys.length; i += 500) {
      const chunk = keys.slice(i, i + 500);
      await gm.setMany(chunk.map((k) => [k, value]), ttl !== undefined ? { ttl } : undefined);
      if (redis) {
        const p = redis.pipeline();
        for (const k of chunk) {
          if (ttl !== undefined) p.set(k, redisEncode(value), 'PX', ttl);
          else p.set(k, redisEncode(value));
        }
        await p.exec();
      }
    }
  }
  return { map, lru, grid, gm, redis };
}

/** get and set tables for one value kind (used by values-16b, values-4kb, values-object). */
export async function valueScenario(ctx, label, value) {
  const N = 10_000;
  const keys = makeKeys(N);
  const { map, lru, gm, redis } = await setupPeers(ctx, keys, value);
  const skip = redis ? undefined : ctx.redisSkip;
  const isObject = typeof value !== 'string';
  const encoded = redisEncode(value);
  const c = () => cursor(keys);
  const [g1, g2, g3, g4, g5, g6] = [c(), c(), c(), c(), c(), c()];
  await ctx.bench('get', [
    { id: 'map-get', name: `Map get`, subject: 'Map', fn: () => map.get(g1()) },
    { id: 'lru-get', name: `lru-cache get`, subject: 'lru-cache', fn: () => lru.get(g2()) },
    { id: 'lru-get-awaited', name: `lru-cache get (awaited)`, subject: 'lru-cache', async: true, fn: async () => lru.get(g3()) },
    { id: 'shardgrid-get', name: `shardgrid get`, subject: 'shardgrid', sg: true, async: true, fn: () => gm.get(g4()) },
    { id: 'shardgrid-getsync', name: `shardgrid getSync`, subject: 'shardgrid', fn: () => gm.getSync(g6()) },
    isObject
      ? { id: 'redis-get', name: `Redis GET + JSON.parse (c=1)`, subject: 'redis', async: true, fn: async () => redisDecodeObject(await redis.get(g5())), skip }
      : { id: 'redis-get', name: `Redis GET (c=1)`, subject: 'redis', async: true, fn: () => redis.get(g5()), skip },
  ], { title: `get, ${label}`, note: GETSYNC_NOTE });
  const [s1, s2, s3, s4, s5] = [c(), c(), c(), c(), c()];
  await ctx.bench('set', [
    { id: 'map-set', name: `Map set`, subject: 'Map', fn: () => map.set(s1(), value) },
    { id: 'lru-set', name: `lru-cache set`, subject: 'lru-cache', fn: () => lru.set(s2(), value) },
    { id: 'lru-set-awaited', name: `lru-cache set (awaited)`, subject: 'lru-cache', async: true, fn: async () => lru.set(s3(), value) },
    { id: 'shardgrid-set', name: `shardgrid set`, subject: 'shardgrid', sg: true, async: true, fn: () => gm.set(s4(), value) },
    isObject
      ? { id: 'redis-set', name: `Redis SET + JSON.stringify (c=1)`, subject: 'redis', async: true, fn: () => redis.set(s5(), JSON.stringify(value)), skip }
      : { id: 'redis-set', name: `Redis SET (c=1)`, subject: 'redis', async: true, fn: () => redis.set(s5(), encoded), skip },
  ], { title: `set, ${label}` });
  if (isObject) ctx.note('Map and lru-cache store and return the same object reference; shardgrid encodes the object into shared memory (msgpackr) on set and decodes a fresh copy on get; Redis stores JSON text.');
}
