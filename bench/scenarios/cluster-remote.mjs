// Remote get through a lite member of a 2-member cluster (separate processes, loopback ws) against
// ioredis → redis-server (without and with auto-pipelining), at concurrency 1 and 64, in the
// same run. Before timing, every key is read back through each client and checked, WARM_PASSES
// times at concurrency 64, and the first WARM_C1_KEYS keys once more one at a time: this proves
// the fill, and brings both clients and both data members past the JIT's tier-up (in --quick mode
// tinybench warms each task for 40 ms only, which measured the lite member and its data members
// still in their slower tiers: ~40-60 k/s at c=64 where the same processes reach ~100 k/s a few
// hundred ms later, and ~3 k/s at c=1 where they reach ~8 k/s after a second; Redis barely moved).
import { scenario } from '../lib/harness.mjs';
import { VALUES, makeKeys } from '../lib/peers.mjs';
import { oneAtATime, rounds } from '../lib/load.mjs';
import { startCluster } from '../lib/cluster.mjs';

const C = 64;
const WARM_PASSES = 3;
const WARM_C1_KEYS = 2000;

/** Reads every key back `passes` times, `c` at once, and checks its value. */
async function readBack(keys, value, get, c, passes) {
  for (let pass = 0; pass < passes; pass++) {
    for (let i = 0; i < keys.length; i += c) {
      const got = await Promise.all(keys.slice(i, i + c).map(get));
      const bad = got.findIndex((v) => v !== value);
      if (bad >= 0) throw new Error(`key ${keys[i + bad]} read back ${String(got[bad]).slice(0, 20)}`);
    }
  }
}

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
    const redisAp = redis ? await ctx.redis({ autoPipelining: true }) : null;
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
    const ap = redisAp ? (k) => redisAp.get(k) : null;
    ctx.progress('reading every key back through each client');
    for (const get of [sg, rd, ap]) {
      if (get === null) continue;
      await readBack(keys, value, get, C, WARM_PASSES);
      await readBack(keys.slice(0, WARM_C1_KEYS), value, get, 1, 1);
    }
    await ctx.bench('cluster-remote', [
      { id: 'remote-c1', name: 'shardgrid remote get (lite), c=1', subject: 'shardgrid', group: 'c1', sg: true, async: true, fn: oneAtATime(keys, sg) },
      { id: 'redis-c1', name: 'Redis GET, c=1', subject: 'redis', group: 'c1', async: true, fn: rd ? oneAtATime(keys, rd) : null, skip },
      { id: `remote-c${C}`, name: `shardgrid remote get (lite), c=${C}`, subject: 'shardgrid', group: `c${C}`, sg: true, ops: C, async: true, fn: rounds(keys, C, sg) },
      { id: `redis-c${C}`, name: `Redis GET, c=${C}`, subject: 'redis', group: `c${C}`, ops: C, async: true, fn: rd ? rounds(keys, C, rd) : null, skip },
      { id: `redis-ap-c${C}`, name: `Redis GET, c=${C}, auto-pipelining`, subject: 'redis', group: `c${C}`, ops: C, async: true, fn: ap ? rounds(keys, C, ap) : null, skip },
    ], { title: `remote get through a lite member vs Redis, concurrency 1 and ${C}`, note: `ops/s counts single gets; c=${C} rows time a round of ${C} concurrent gets. Before timing, every key was read back ${WARM_PASSES} times at c=${C} and ${WARM_C1_KEYS} keys once at c=1 through each client (fill check and JIT warm-up). Target (issue 4): shardgrid remote get at c=${C} ≥ 2x Redis GET at c=${C} (without auto-pipelining, as ioredis is configured by default).` });
  } finally {
    for (const m of members) m.proc.kill('SIGTERM');
  }
});
