// getMany / setMany of 100 keys per call, with per-key rates, against a single-key get.
import { scenario } from '../lib/harness.mjs';
import { setupPeers } from '../lib/kv-scenario.mjs';
import { VALUES, makeKeys } from '../lib/peers.mjs';

await scenario({
  name: 'batch-100',
  title: 'getMany / setMany, 100 keys',
  description: 'getMany and setMany of 100 keys per call (100-byte strings, 10,000 keys in 100 fixed batches). Map and lru-cache loop over the 100 keys; Redis uses one MGET / MSET. "keys/s" is calls/s × 100; the single-key get row is there to compare per-key rates.',
}, async (ctx) => {
  const N = 10_000;
  const B = 100;
  const keys = makeKeys(N);
  const value = VALUES['100B'];
  const batches = [];
  for (let i = 0; i < N; i += B) batches.push(keys.slice(i, i + B));
  const entries = batches.map((b) => b.map((k) => [k, value]));
  const flat = batches.map((b) => b.flatMap((k) => [k, value]));
  const { map, lru, gm, redis } = await setupPeers(ctx, keys, value);
  const skip = redis ? undefined : ctx.redisSkip;
  const rot = (arr) => { let i = 0; return () => arr[(i = (i + 1) % arr.length)]; };
  const [b1, b2, b3, b4] = Array.from({ length: 4 }, () => rot(batches));
  const single = (() => { let i = 0; return () => keys[(i = (i + 1) % N)]; })();
  const getLoop = (c, ks) => { const out = new Array(ks.length); for (let i = 0; i < ks.length; i++) out[i] = c.get(ks[i]); return out; };
  await ctx.bench('getMany', [
    { id: 'map-getmany', name: 'Map get ×100 (loop)', subject: 'Map', ops: B, fn: () => getLoop(map, b1()) },
    { id: 'lru-getmany', name: 'lru-cache get ×100 (loop)', subject: 'lru-cache', ops: B, fn: () => getLoop(lru, b2()) },
    { id: 'shardgrid-getmany', name: 'shardgrid getMany(100)', subject: 'shardgrid', sg: true, ops: B, async: true, fn: () => gm.getMany(b3()) },
    { id: 'shardgrid-get', name: 'shardgrid get (1 key)', subject: 'shardgrid', ops: 1, async: true, fn: () => gm.get(single()) },
    { id: 'redis-mget', name: 'Redis MGET 100 keys', subject: 'redis', ops: B, async: true, fn: () => redis.mget(b4()), skip },
  ], { title: 'getMany, 100 keys per call', perKey: 'keys/s' });
  const [e1, e2, e3] = Array.from({ length: 3 }, () => rot(entries));
  const f1 = rot(flat);
  const setLoop = (c, es) => { for (let i = 0; i < es.length; i++) c.set(es[i][0], es[i][1]); };
  const single2 = (() => { let i = 0; return () => keys[(i = (i + 1) % N)]; })();
  await ctx.bench('setMany', [
    { id: 'map-setmany', name: 'Map set ×100 (loop)', subject: 'Map', ops: B, fn: () => setLoop(map, e1()) },
    { id: 'lru-setmany', name: 'lru-cache set ×100 (loop)', subject: 'lru-cache', ops: B, fn: () => setLoop(lru, e2()) },
    { id: 'shardgrid-setmany', name: 'shardgrid setMany(100)', subject: 'shardgrid', sg: true, ops: B, async: true, fn: () => gm.setMany(e3()) },
    { id: 'shardgrid-set', name: 'shardgrid set (1 key)', subject: 'shardgrid', ops: 1, async: true, fn: () => gm.set(single2(), value) },
    { id: 'redis-mset', name: 'Redis MSET 100 keys', subject: 'redis', ops: B, async: true, fn: () => redis.mset(f1()), skip },
  ], { title: 'setMany, 100 keys per call', perKey: 'keys/s' });
});
