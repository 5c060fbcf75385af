// Awaited get at concurrency 1 and 64: shardgrid against Redis with and without auto-pipelining.
import { scenario } from '../lib/harness.mjs';
import { setupPeers } from '../lib/kv-scenario.mjs';
import { VALUES, makeKeys } from '../lib/peers.mjs';
import { oneAtATime, rounds } from '../lib/load.mjs';

const C = 64;

await scenario({
  name: 'concurrency',
  title: `get at concurrency 1 and ${C}`,
  description: `Awaited get of 100-byte strings (10,000 keys). c=1: one get at a time. c=${C}: ${C} gets issued at once and awaited together (Promise.all), so ops/s counts requests and the latency is that of a round of ${C}. ioredis with enableAutoPipelining off (default) and on.`,
}, async (ctx) => {
  const N = 10_000;
  const keys = makeKeys(N);
  const { gm, redis } = await setupPeers(ctx, keys, VALUES['100B']);
  const redisAp = redis ? await ctx.redis({ autoPipelining: true }) : null;
  const skip = redis ? undefined : ctx.redisSkip;
  const sg = (k) => gm.get(k);
  const rd = redis ? (k) => redis.get(k) : null;
  const ap = redisAp ? (k) => redisAp.get(k) : null;
  await ctx.bench('concurrency', [
    { id: 'shardgrid-c1', name: 'shardgrid get, c=1', subject: 'shardgrid', group: 'c1', sg: true, async: true, fn: oneAtATime(keys, sg) },
    { id: 'redis-c1', name: 'Redis GET, c=1', subject: 'redis', group: 'c1', async: true, fn: rd ? oneAtATime(keys, rd) : null, skip },
    { id: 'redis-ap-c1', name: 'Redis GET, c=1, auto-pipelining', subject: 'redis', group: 'c1', async: true, fn: ap ? oneAtATime(keys, ap) : null, skip },
    { id: `shardgrid-c${C}`, name: `shardgrid get, c=${C}`, subject: 'shardgrid', group: `c${C}`, sg: true, ops: C, async: true, fn: rounds(keys, C, sg) },
    { id: `redis-c${C}`, name: `Redis GET, c=${C}`, subject: 'redis', group: `c${C}`, ops: C, async: true, fn: rd ? rounds(keys, C, rd) : null, skip },
    { id: `redis-ap-c${C}`, name: `Redis GET, c=${C}, auto-pipelining`, subject: 'redis', group: `c${C}`, ops: C, async: true, fn: ap ? rounds(keys, C, ap) : null, skip },
  ], { title: `awaited get at concurrency 1 and ${C}`, note: `ops/s counts single gets; for c=${C} rows, mean/p99 are the time for a round of ${C} concurrent gets (what each of them waits). Ratios compare rows of the same concurrency.` });
});
