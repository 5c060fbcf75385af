// 90 % get / 10 % set over 100,000 keys drawn from a Zipf distribution (s = 0.99).
import { scenario } from '../lib/harness.mjs';
import { setupPeers } from '../lib/kv-scenario.mjs';
import { VALUES, makeKeys } from '../lib/peers.mjs';
import { flags, zipfIndices } from '../lib/zipf.mjs';

await scenario({
  name: 'mix-zipf',
  title: '90/10 get/set mix, Zipf keys',
  description: '90 % get, 10 % set of 100-byte strings over 100,000 keys, keys drawn Zipf(s = 0.99) from a precomputed index array (the same sequence for every peer).',
}, async (ctx) => {
  const N = 100_000;
  const SEQ = 1 << 20;
  const MASK = SEQ - 1;
  const keys = makeKeys(N);
  const value = VALUES['100B'];
  const idx = zipfIndices(N, SEQ, { s: 0.99, seed: 42 });
  const write = flags(SEQ, 0.1, 43);
  const { map, lru, gm, redis } = await setupPeers(ctx, keys, value);
  const op = (get, set) => {
    let i = 0;
    return () => {
      const j = (i = (i + 1) & MASK);
      const k = keys[idx[j]];
      return write[j] === 1 ? set(k) : get(k);
    };
  };
  await ctx.bench('mix', [
    { id: 'map', name: 'Map 90/10', subject: 'Map', fn: op((k) => map.get(k), (k) => map.set(k, value)) },
    { id: 'lru', name: 'lru-cache 90/10', subject: 'lru-cache', fn: op((k) => lru.get(k), (k) => lru.set(k, value)) },
    { id: 'lru-awaited', name: 'lru-cache 90/10 (awaited)', subject: 'lru-cache', async: true, fn: op(async (k) => lru.get(k), async (k) => lru.set(k, value)) },
    { id: 'shardgrid', name: 'shardgrid 90/10', subject: 'shardgrid', sg: true, async: true, fn: op((k) => gm.get(k), (k) => gm.set(k, value)) },
    { id: 'redis', name: 'Redis 90/10 (c=1)', subject: 'redis', async: true, fn: redis ? op((k) => redis.get(k), (k) => redis.set(k, value)) : () => undefined, skip: redis ? undefined : ctx.redisSkip },
  ], { title: '90/10 get/set mix over Zipf(0.99) keys, 100 B strings' });
  ctx.extra.zipf = { keys: N, s: 0.99, sequence: SEQ, writeShare: write.reduce((a, b) => a + b, 0) / SEQ };
});
