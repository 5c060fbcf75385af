// Remote get through a lite member of a 2-member cluster (separate processes, loopback ws) against
// ioredis → redis-server (without and with auto-pipelining), at concurrency 1 and 64, in the
// same run: a table for c=64, then one for c=1. Every key is first read back through every client
// and checked (the fill), and every task runs for WARM_MS (c=64) or WARM_C1_MS (c=1) right before
// its measured run (task.warmMs, bench/lib/harness.mjs): shardgrid's three processes take seconds
// to tier up. In --quick mode tinybench warms each task for 40 ms only, which timed them still
// tiering up: from a cold start, 100 ms windows at c=64 read ~55 k/s, ~100 k/s after 0.4 s,
// ~200 k/s after 1 s and ~300 k/s after 2.3 s on a quiet machine (bench/profile-remote.mjs
// --warmup-ms 1 --runs 50 --run-ms 100); c=1 took ~0.8 s to reach its rate even after c=64 (and
// the reverse); a warm-up long before the measured run did not hold either (the processes sat idle
// while the other clients warmed). Redis barely moved. Every client gets the same warm-up.
// Then remote set at c=64 and c=1 (issue 10 names get and set). Every set carries a request id
// whose record both members keep (src/cluster/dedupe.ts: up to 271 × 4,096 per member), so a
// cluster that has run a while holds them at their bound; before the set rows the full run sends
// FILL_SETS sets (~20 s here) to get there, as a fresh cluster would flatter the rows otherwise.
// --quick skips the fill and says so in the table's note.
import { scenario } from '../lib/harness.mjs';
import { VALUES, makeKeys } from '../lib/peers.mjs';
import { oneAtATime, rounds } from '../lib/load.mjs';
import { startCluster } from '../lib/cluster.mjs';

const C = 64;
const WARM_MS = 2000;
const WARM_C1_MS = 1000;
/** Sets before the set rows of a full run: fills both members' request records (each member records every set). */
const FILL_SETS = 1_200_000;

/** Reads every key back through `get`, `c` at once, and checks its value. */
async function readBack(keys, value, get, c) {
  for (let i = 0; i < keys.length; i += c) {
    const batch = keys.slice(i, i + c);
    const got = await Promise.all(batch.map(get));
    const bad = got.findIndex((v) => v !== value);
    if (bad >= 0) throw new Error(`key ${batch[bad]} read back ${String(got[bad]).slice(0, 20)}`);
  }
}

await scenario({
  name: 'cluster-remote',
  title: `remote get and set through a lite member at concurrency 1 and ${C}`,
  description: `2 data members (child processes, 1 virtual node each, backups 1) and a lite member in the bench process: every get and set crosses a loopback WebSocket to the key's primary (a set also waits for its backup). 10,000 keys of 100-byte strings. Against Redis GET and SET through ioredis at the same concurrency.`,
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
    for (const get of [sg, rd, ap]) if (get !== null) await readBack(keys, value, get, C);
    await ctx.bench(`cluster-remote-c${C}`, [
      { id: `remote-c${C}`, name: `shardgrid remote get (lite), c=${C}`, subject: 'shardgrid', group: `c${C}`, sg: true, ops: C, async: true, warmMs: WARM_MS, fn: rounds(keys, C, sg) },
      { id: `redis-c${C}`, name: `Redis GET, c=${C}`, subject: 'redis', group: `c${C}`, ops: C, async: true, warmMs: WARM_MS, fn: rd ? rounds(keys, C, rd) : null, skip },
      { id: `redis-ap-c${C}`, name: `Redis GET, c=${C}, auto-pipelining`, subject: 'redis', group: `c${C}`, ops: C, async: true, warmMs: WARM_MS, fn: ap ? rounds(keys, C, ap) : null, skip },
    ], { title: `remote get through a lite member vs Redis, concurrency ${C}`, note: `ops/s counts single gets; rows time a round of ${C} concurrent gets. Each task ran for ${WARM_MS / 1000} s right before its measured run (JIT warm-up). Target (issue 4): shardgrid remote get at c=${C} ≥ 2x Redis GET at c=${C} (without auto-pipelining, as ioredis is configured by default).` });
    await ctx.bench('cluster-remote-c1', [
      { id: 'remote-c1', name: 'shardgrid remote get (lite), c=1', subject: 'shardgrid', group: 'c1', sg: true, async: true, warmMs: WARM_C1_MS, fn: oneAtATime(keys, sg) },
      { id: 'redis-c1', name: 'Redis GET, c=1', subject: 'redis', group: 'c1', async: true, warmMs: WARM_C1_MS, fn: rd ? oneAtATime(keys, rd) : null, skip },
    ], { title: 'remote get through a lite member vs Redis, concurrency 1', note: `Each task ran for ${WARM_C1_MS / 1000} s right before its measured run (JIT warm-up for this call pattern).` });

    const sgSet = (k) => gm.set(k, value);
    const rdSet = redis ? (k) => redis.set(k, value) : null;
    const filled = !ctx.quick;
    if (filled) {
      ctx.progress(`${FILL_SETS.toLocaleString('en')} sets to bring the members' request records to their bound`);
      const fill = rounds(keys, C, sgSet);
      for (let n = 0; n < FILL_SETS; n += C) await fill();
    }
    const setNote = filled
      ? `Before these rows the lite member sent ${FILL_SETS.toLocaleString('en')} sets, so both members' exactly-once records are at their bound (271 × 4,096 each), as in a cluster that has run a while.`
      : 'Quick mode: the members\' exactly-once records were not filled first, so these rows are cheaper than a cluster that has run a while (run without --quick for the steady state).';
    await ctx.bench(`cluster-remote-set-c${C}`, [
      { id: `remote-set-c${C}`, name: `shardgrid remote set (lite), c=${C}`, subject: 'shardgrid', group: `set-c${C}`, sg: true, ops: C, async: true, warmMs: WARM_MS, fn: rounds(keys, C, sgSet) },
      { id: `redis-set-c${C}`, name: `Redis SET, c=${C}`, subject: 'redis', group: `set-c${C}`, ops: C, async: true, warmMs: WARM_MS, fn: rdSet ? rounds(keys, C, rdSet) : null, skip },
    ], { title: `remote set through a lite member vs Redis, concurrency ${C}`, note: `ops/s counts single sets; each is acknowledged once the key's backup applied it (backups 1) and carries a request id (exactly-once retries). Redis SET: one server, no replica. ${setNote}` });
    await ctx.bench('cluster-remote-set-c1', [
      { id: 'remote-set-c1', name: 'shardgrid remote set (lite), c=1', subject: 'shardgrid', group: 'set-c1', sg: true, async: true, warmMs: WARM_C1_MS, fn: oneAtATime(keys, sgSet) },
      { id: 'redis-set-c1', name: 'Redis SET, c=1', subject: 'redis', group: 'set-c1', async: true, warmMs: WARM_C1_MS, fn: rdSet ? oneAtATime(keys, rdSet) : null, skip },
    ], { title: 'remote set through a lite member vs Redis, concurrency 1', note: setNote });
  } finally {
    for (const m of members) m.proc.kill('SIGTERM');
  }
});
