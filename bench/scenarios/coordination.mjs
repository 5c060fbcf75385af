// Coordination primitives in one process (issue 13, in-process half): the cost of grid.cp's lock
// and atomicLong against the bare Atomics operations they are built on, in the same run.
import { Worker } from 'node:worker_threads';
import { scenario } from '../lib/harness.mjs';

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
});
