// Coordination primitives (issue 13). In one process: the cost of grid.cp's lock and atomicLong
// against the bare Atomics operations they are built on, in the same run. In a 3-member cluster
// (3 data members in child processes, a lite member in this process; grid.cp runs on the metadata
// Raft group): lock+unlock and incrementAndGet at c=1 and c=64 against Redis's single-instance
// lock pattern (SET key token NX PX, then a compare-and-delete script) and INCR through ioredis.
import { randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { startCluster } from '../lib/cluster.mjs';
import { scenario } from '../lib/harness.mjs';

const C = 64;
const WARM_MS = 1500;
/**
 * Warm-up of the cluster rows at c=64, the first ones run after the cluster starts: four
 * processes' JIT has to settle. `node bench/profile-cp.mjs --op lock --c 64 --no-profile --runs 5
 * --run-ms 1000 --warmup-ms 500` on 2026-11-27, consecutive 1 s windows after the start: 18.5,
 * 22.2, 32.1, 35.8, 39.7 k lock+unlock/s. Both sides of a row get the same warm-up (Redis needs none).
 */
const CLUSTER_WARM_MS = 5000;
const UNLOCK_LUA = 'if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end';

/** `c` loops at once, each running `step(j)` once per round (j = its index), awaited together. */
const roundsOf = (c, step) => () => {
  const ps = new Array(c);
  for (let j = 0; j < c; j++) ps[j] = step(j);
  return Promise.all(ps);
};

const CONTEND_WORKER = new URL('../lib/cp-contend-worker.mjs', import.meta.url);

await scenario({
  name: 'coordination',
  title: 'coordination: grid.cp lock and atomicLong vs bare Atomics',
  description: 'Uncontended lock+unlock of a grid.cp FencedLock (tryLockSync + unlockSync: the lease-less fast path, one CAS each way plus the fencing token; and the awaited lock()/unlock(); and a leased lock, which takes the slot mutex) against a bare Atomics compareExchange mutex (CAS 0→1, store 0) in the same thread. atomicLong.incrementAndGetSync against Atomics.add on a BigInt64Array. Contended: 2 worker threads each run lock+unlock cycles on one lock (grid.cp lockSync/unlockSync, fair FIFO hand-off) against the project\'s unfair futex mutex (src/sync/mutex.ts).',
}, async (ctx) => {
  const grid = await ctx.grid({ workers: 1, memory: '16MB' });
  const lock = grid.cp.lock('bench-lock');
  const leased = grid.cp.lock('bench-leased');
  const seq = grid.cp.atomicLong('bench-seq');
  const bare = new Int32Array(new SharedArrayBuffer(64));
  const bareLong = new BigInt64Array(new SharedArrayBuffer(64));

  const bareLockUnlock = () => {
    if (Atomics.compareExchange(bare, 0, 0, 1) !== 0) throw new Error('bare mutex busy');
    Atomics.store(bare, 0, 0);
  };
  const sgLockUnlock = () => {
    lock.tryLockSync();
    lock.unlockSync();
  };
  const sgLeased = () => {
    leased.tryLockSync({ leaseMs: 60_000 });
    leased.unlockSync();
  };
  const sgAwaited = async () => {
    await lock.lock();
    await lock.unlock();
  };

  await ctx.bench('coordination-lock', [
    { id: 'bare-cas', name: 'bare Atomics CAS mutex lock+unlock', subject: 'atomics', fn: bareLockUnlock },
    { id: 'sg-lock-sync', name: 'grid.cp lock tryLockSync+unlockSync', subject: 'shardgrid', sg: true, fn: sgLockUnlock },
    { id: 'sg-lock-leased', name: 'grid.cp lock with leaseMs, tryLockSync+unlockSync', subject: 'shardgrid-leased', fn: sgLeased },
    { id: 'sg-lock-awaited', name: 'grid.cp lock await lock()+unlock()', subject: 'shardgrid-awaited', fn: sgAwaited, async: true },
  ], { title: 'coordination: uncontended lock+unlock (one thread)', note: '"shardgrid ÷ this" compares the tryLockSync row with each row; the target is cost ≤ 3x the bare CAS mutex (ratio ≥ 0.33).' });

  await ctx.bench('coordination-long', [
    { id: 'bare-add', name: 'Atomics.add on a BigInt64Array', subject: 'atomics', fn: () => Atomics.add(bareLong, 0, 1n) + 1n },
    { id: 'sg-incr-sync', name: 'atomicLong.incrementAndGetSync', subject: 'shardgrid', sg: true, fn: () => seq.incrementAndGetSync() },
    { id: 'sg-incr-awaited', name: 'atomicLong await incrementAndGet()', subject: 'shardgrid-awaited', fn: () => seq.incrementAndGet(), async: true },
  ], { title: 'coordination: atomicLong incrementAndGet (one thread)' });

  // contended: 2 threads, one lock
  const n = ctx.quick ? 20_000 : 200_000;
  const rows = [];
  for (const variant of ['sg', 'futex']) {
    ctx.progress(`contended 2 threads: ${variant}`);
    const shared = new SharedArrayBuffer(64);
    const sh = new Int32Array(shared);
    const workers = [0, 1].map(() => new Worker(CONTEND_WORKER, { workerData: { handle: grid.handle, variant, n, shared, name: 'bench-contended' } }));
    const msgs = workers.map((w) => {
      const got = {};
      return { got, ready: new Promise((r) => w.on('message', (m) => ((got[m.type] = m), m.type === 'ready' && r()))), exit: new Promise((r) => w.once('exit', r)) };
    });
    await Promise.all(msgs.map((m) => m.ready));
    const t0 = performance.now();
    Atomics.store(sh, 0, 1);
    Atomics.notify(sh, 0);
    await Promise.all(msgs.map((m) => m.exit));
    const wall = performance.now() - t0;
    if (sh[2] !== 2 * n) ctx.warn(`contended ${variant}: counter ${sh[2]} ≠ ${2 * n}`);
    rows.push({
      id: variant === 'sg' ? 'sg-contended-2' : 'futex-contended-2',
      name: variant === 'sg' ? 'grid.cp lock, 2 threads (fair FIFO hand-off)' : 'futex mutex (src/sync/mutex.ts), 2 threads (unfair)',
      subject: variant === 'sg' ? 'shardgrid' : 'futex',
      sg: variant === 'sg',
      status: 'ok',
      opsPerSec: (2 * n) / (wall / 1000),
      meanUs: (wall * 1000) / (2 * n),
      seconds: wall / 1000,
    });
  }
  rows[1].ratio = rows[0].opsPerSec / rows[1].opsPerSec;
  ctx.table({
    id: 'coordination-contended',
    title: `coordination: contended lock+unlock, 2 worker threads × ${n.toLocaleString('en-US')} cycles on one lock`,
    kind: 'custom',
    columns: [
      { key: 'name', label: 'variant', fmt: 'text' },
      { key: 'opsPerSec', label: 'lock+unlock/s (both threads)', fmt: 'rate' },
      { key: 'meanUs', label: 'µs per cycle', fmt: 'us' },
      { key: 'seconds', label: 'seconds', fmt: 'num1' },
      { key: 'ratio', label: 'shardgrid ÷ this', fmt: 'ratio' },
    ],
    rows,
    note: 'Wall time from the start flag until both threads finished. The fair lock hands the lock to the sleeping waiter on every release (a wake-up each cycle); the unfair futex lets the releasing thread take it again while the other sleeps, which is faster and can starve a waiter.',
    chart: { key: 'opsPerSec', label: 'lock+unlock/s', fmt: 'rate' },
  });
  await clusterHalf(ctx);
});

/**
 * The cluster half: grid.cp through a lite member of a 3-data-member cluster against Redis's
 * lock pattern and INCR. At c=64 each of the 64 loops locks and unlocks its own lock (64 names,
 * uncontended, as 64 independent clients would); the counter is one for all loops in both.
 */
async function clusterHalf(ctx) {
  let members = [];
  try {
    ctx.progress('starting 3 cluster members');
    const c = await startCluster(3);
    members = c.members;
    const lite = c.lite;
    ctx.grids.push(lite);
    const redis = await ctx.redis();
    const skip = redis ? undefined : ctx.redisSkip;
    if (redis) {
      await redis.flushall();
      redis.defineCommand('unlockIf', { numberOfKeys: 1, lua: UNLOCK_LUA });
    }
    const locks = Array.from({ length: C }, (_, j) => lite.cp.lock(`bench-cl-${j}`));
    const counter = lite.cp.atomicLong('bench-cl-counter');
    const tokenOf = Array.from({ length: C }, () => randomBytes(16).toString('hex'));
    let redisLost = 0;
    const sgLock = async (j) => {
      await locks[j].lock();
      await locks[j].unlock();
    };
    const rdLock = async (j) => {
      if ((await redis.set(`bench-cl-${j}`, tokenOf[j], 'PX', 10_000, 'NX')) !== 'OK') redisLost++;
      else await redis.unlockIf(`bench-cl-${j}`, tokenOf[j]);
    };
    const sgIncr = () => counter.incrementAndGet();
    const rdIncr = () => redis.incr('bench-cl-counter');
    // both sides checked once before timing: the lock is exclusive and the counter counts
    await sgLock(0);
    const before = await counter.get();
    await Promise.all(Array.from({ length: C }, sgIncr));
    if ((await counter.get()) !== before + BigInt(C)) throw new Error('coordination: atomicLong lost increments');
    for (const cc of [C, 1]) {
      const j1 = () => 0;
      const warmMs = cc === C ? CLUSTER_WARM_MS : WARM_MS;
      await ctx.bench(`coordination-cluster-lock-c${cc}`, [
        { id: `cl-lock-c${cc}`, name: `grid.cp lock()+unlock() via lite member, c=${cc}`, subject: 'shardgrid', group: `c${cc}`, sg: true, ops: cc, async: true, warmMs, fn: cc === 1 ? () => sgLock(j1()) : roundsOf(cc, sgLock) },
        { id: `redis-lock-c${cc}`, name: `Redis SET NX PX + compare-and-delete script, c=${cc}`, subject: 'redis', group: `c${cc}`, ops: cc, async: true, warmMs, fn: redis ? (cc === 1 ? () => rdLock(j1()) : roundsOf(cc, rdLock)) : null, skip },
      ], { title: `coordination, 3-member cluster: lock+unlock, concurrency ${cc}`, note: `ops/s counts lock+unlock pairs${cc > 1 ? `; each of the ${cc} loops uses its own lock name (uncontended)` : ''}. grid.cp's lock is a Raft-replicated fenced lock (each lock and each unlock is a command in a committed log entry of the metadata group, several commands per entry); Redis's pattern is one redis-server with no replication and no fencing token. Target (issue 13): ≥ 0.5x Redis at c=64.` });
      await ctx.bench(`coordination-cluster-incr-c${cc}`, [
        { id: `cl-incr-c${cc}`, name: `grid.cp atomicLong.incrementAndGet via lite member, c=${cc}`, subject: 'shardgrid', group: `c${cc}`, sg: true, ops: cc, async: true, warmMs, fn: cc === 1 ? sgIncr : roundsOf(cc, sgIncr) },
        { id: `redis-incr-c${cc}`, name: `Redis INCR, c=${cc}`, subject: 'redis', group: `c${cc}`, ops: cc, async: true, warmMs, fn: redis ? (cc === 1 ? rdIncr : roundsOf(cc, rdIncr)) : null, skip },
      ], { title: `coordination, 3-member cluster: incrementAndGet vs INCR, concurrency ${cc}`, note: 'One counter for every loop on both sides. Target (issue 13): ≥ 0.5x Redis at c=64.' });
    }
    if (redisLost > 0) ctx.warn(`Redis lock: ${redisLost} SET NX calls found the key held (a loop's own lock: should not happen)`);
  } finally {
    for (const m of members) m.proc.kill('SIGTERM');
  }
}
