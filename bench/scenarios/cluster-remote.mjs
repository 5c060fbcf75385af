// Remote get through a lite member of a 2-member cluster (separate processes, loopback ws) against
// ioredis → redis-server, both at concurrency 1 and 64, in the same run.
import { scenario } from '../lib/harness.mjs';
import { VALUES, makeKeys } from '../lib/peers.mjs';
import { oneAtATime, rounds } from '../lib/load.mjs';
import { startCluster } from '../lib/cluster.mjs';

const C = 64;

await scenario({
  name: 'cluster-remote',
  title: `remote get through a lite member at concurrency 1 and ${C}`,
  description: `2 data members (child processes, 1 virtual node each, backups 1) and a lite member in the bench process: every get crosses a loopback WebSocket to the key's primary. 10,000 keys of 100-byte strings. Against Redis GET through ioredis at the same concurrency.`,
}, async (ctx) => {
  let members = [];
  try {
    ctx.progress('starting 2 cluster members');
    const c = await startCluster(2);
    members = c.members;
    const lite = c.lite;
    ctx.grids.push(lite);
    const N = 10_000;
    const keys = makeKeys(N);
    const value = VALUES['100B'];
    const gm = lite.map('remote');
    for (let i = 0; i < N; i += 500) await gm.setMany(keys.slice(i, i + 500).map((k) => [k, value]));
    const redis = await ctx.redis();
    const skip = redis ? undefined : ctx.redisSkip;
    if (redis) {
      await redis.flushall();
      for (let i = 0; i < N; i += 500) {
        const p = redis.pipeline();
        for (const k of keys.slice(i, i + 500)) p.set(k, value);
        await p.exec();
      }
    }
    const sg = (k) => gm.get(k);
    const rd = redis ? (k) => redis.get(k) : null;
    await ctx.bench('cluster-remote', [
      { id: 'remote-c1', name: 'shardgrid remote get (lite), c=1', subject: 'shardgrid', group: 'c1', sg: true, async: true, fn: oneAtATime(keys, sg) },
      { id: 'redis-c1', name: 'Redis GET, c=1', subject: 'redis', group: 'c1', async: true, fn: rd ? oneAtATime(keys, rd) : null, skip },
      { id: `remote-c${C}`, name: `shardgrid remote get (lite), c=${C}`, subject: 'shardgrid', group: `c${C}`, sg: true, ops: C, async: true, fn: rounds(keys, C, sg) },
      { id: `redis-c${C}`, name: `Redis GET, c=${C}`, subject: 'redis', group: `c${C}`, ops: C, async: true, fn: rd ? rounds(keys, C, rd) : null, skip },
    ], { title: `remote get through a lite member vs Redis, concurrency 1 and ${C}`, note: `ops/s counts single gets; c=${C} rows time a round of ${C} concurrent gets. Target (issue 4): shardgrid remote get at c=${C} ≥ 2x Redis GET at c=${C}.` });
  } finally {
    for (const m of members) m.proc.kill('SIGTERM');
  }
});
