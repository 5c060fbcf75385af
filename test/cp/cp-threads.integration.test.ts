// Coordination primitives across threads: every test checks an invariant a race would break (an
// exact count of non-atomic increments, strictly increasing tokens observed inside the critical
// section, a bound on concurrent holders, an acquisition order), and the negative control shows
// the same loop without the lock does lose updates. Workers start from the compiled dist/.
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrid } from '../../dist/index.js';
import type { Grid } from '../../dist/index.js';
import { CpRegion } from '../../dist/cp/region.js';
import { K_LOCK, S_NWAIT } from '../../dist/cp/layout.js';

const WORKER = new URL('../fixtures/cp-worker.mjs', import.meta.url);
const COUNTER = 1;
const BAD_TOKENS = 3;
const MAX_INSIDE = 5;
const BUMPS = 9;
const ORDER_LEN = 6;
const ORDER_AT = 16;

interface Run {
  worker: Worker;
  messages: any[];
  exited: Promise<number>;
  next(type: string): Promise<any>;
}

function start(grid: Grid, shared: SharedArrayBuffer, data: Record<string, unknown>): Run {
  const worker = new Worker(WORKER, { workerData: { handle: grid.handle, shared, ...data } });
  const messages: any[] = [];
  const waiting: Array<{ type: string; resolve: (m: any) => void }> = [];
  worker.on('message', (m) => {
    messages.push(m);
    const i = waiting.findIndex((w) => w.type === m.type);
    if (i >= 0) waiting.splice(i, 1)[0].resolve(m);
  });
  const exited = new Promise<number>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('exit', resolve);
  });
  return {
    worker,
    messages,
    exited,
    next: (type) => {
      const seen = messages.find((m) => m.type === type);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve) => waiting.push({ type, resolve }));
    },
  };
}

/** Starts `count` workers in `mode`, lets them go together, waits for all to finish. */
async function runTogether(grid: Grid, count: number, data: Record<string, unknown>, shared = new SharedArrayBuffer(4096)): Promise<{ sh: Int32Array; runs: Run[] }> {
  const sh = new Int32Array(shared);
  const runs = Array.from({ length: count }, (_, id) => start(grid, shared, { id, ...data }));
  await Promise.all(runs.map((r) => r.next('ready')));
  Atomics.store(sh, 0, 1);
  Atomics.notify(sh, 0);
  const codes = await Promise.all(runs.map((r) => r.exited));
  expect(codes).toEqual(runs.map(() => 0));
  return { sh, runs };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('coordination primitives across worker threads', () => {
  let grid: Grid;
  beforeAll(async () => {
    grid = await createGrid({ workers: 1, memory: '32MB' });
  });
  afterAll(async () => {
    await grid.close();
  });

  const N = 100_000;

  it('without a lock, 4 threads doing the same non-atomic read-modify-write lose updates (negative control)', { timeout: 120_000 }, async () => {
    // each thread bumps for 300 ms once all four run (cp-worker.mjs): a fixed 100,000 bumps per
    // thread once finished inside a time slice and lost nothing (CI, 2 cores shared with other files)
    const { sh } = await runTogether(grid, 4, { mode: 'count-unlocked', count: 4, ms: 300 });
    const made = sh[BUMPS];
    console.log(`unlocked: ${sh[COUNTER]} of ${made} increments survived`);
    expect(made).toBeGreaterThan(4 * 1000);
    expect(sh[COUNTER]).toBeLessThan(made);
  });

  it('4 threads × 100,000 lockSync / non-atomic increment / unlockSync give the exact count, and tokens strictly increase across threads', { timeout: 300_000 }, async () => {
    const { sh } = await runTogether(grid, 4, { mode: 'count-sync', name: 'count-sync', n: N });
    expect(sh[COUNTER]).toBe(4 * N);
    expect(sh[BAD_TOKENS]).toBe(0);
  });

  it('4 threads × 20,000 await lock() / increment / await unlock() (Atomics.waitAsync path) give the exact count with increasing tokens', { timeout: 300_000 }, async () => {
    const { sh } = await runTogether(grid, 4, { mode: 'count-async', name: 'count-async', n: 20_000 });
    expect(sh[COUNTER]).toBe(4 * 20_000);
    expect(sh[BAD_TOKENS]).toBe(0);
  });

  it('atomicLong: 4 threads × 100,000 incrementAndGet reach the exact total and every returned value is distinct', { timeout: 120_000 }, async () => {
    const { runs } = await runTogether(grid, 4, { mode: 'long', name: 'seq-threads', n: N });
    const all = new Set<bigint>();
    for (const r of runs) for (const v of (r.messages.find((m) => m.type === 'values').values as BigInt64Array)) all.add(v);
    expect(all.size).toBe(4 * N);
    expect(await grid.cp.atomicLong('seq-threads').get()).toBe(BigInt(4 * N));
    let lo = BigInt(Number.MAX_SAFE_INTEGER);
    let hi = 0n;
    for (const v of all) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    expect([lo, hi]).toEqual([1n, BigInt(4 * N)]); // distinct, 4N of them, from 1 to 4N: exactly 1..4N
  });

  it('atomicRef: 4 threads × 5,000 version-CAS increments lose none (every success is counted once)', { timeout: 120_000 }, async () => {
    const { runs } = await runTogether(grid, 4, { mode: 'ref-cas', name: 'ref-threads', n: 5_000 });
    const ref = grid.cp.atomicRef<{ count: number }>('ref-threads');
    const { value, version } = await ref.getVersioned();
    expect(value).toEqual({ count: 20_000 });
    expect(version).toBe(20_000);
    console.log(`ref-cas: ${runs.reduce((a, r) => a + r.messages.find((m) => m.type === 'fails').fails, 0)} failed CAS attempts (contention happened)`);
  });

  it('semaphore of 2 permits: 4 threads × 20,000 acquire/release never have more than 2 holders at once', { timeout: 120_000 }, async () => {
    grid.cp.semaphore('sem-threads', { permits: 2 });
    const { sh } = await runTogether(grid, 4, { mode: 'sem', name: 'sem-threads', n: 20_000 });
    console.log(`semaphore: at most ${sh[MAX_INSIDE]} holders at once`);
    expect(sh[MAX_INSIDE]).toBeLessThanOrEqual(2);
    expect(sh[MAX_INSIDE]).toBeGreaterThanOrEqual(1);
    expect(await grid.cp.semaphore('sem-threads').availablePermits()).toBe(2);
  });

  it('FIFO: threads waiting for a lock get it in the order they arrived', { timeout: 60_000 }, async () => {
    const lock = grid.cp.lock('fifo');
    // the queue length, read from the region's slot (internals: only to know a waiter is queued)
    const region = new CpRegion(grid.handle.cp!, 1000);
    const slot = region.slot('fifo', K_LOCK, () => undefined);
    const queued = () => Atomics.load(region.i32, region.sw(slot) + S_NWAIT);
    await lock.lock();
    const shared = new SharedArrayBuffer(4096);
    const sh = new Int32Array(shared);
    const runs: Run[] = [];
    const ids = [3, 0, 4, 1, 2];
    for (const id of ids) {
      const r = start(grid, shared, { mode: 'fifo', name: 'fifo', id });
      runs.push(r);
      await r.next('ready');
      // the next one starts only once this one is queued: arrival order is the order of `ids`
      while (queued() < runs.length) await sleep(2);
    }
    await lock.unlock();
    await Promise.all(runs.map((r) => r.exited));
    expect(Array.from(sh.subarray(ORDER_AT, ORDER_AT + sh[ORDER_LEN]))).toEqual(ids);
  });

  it('FIFO: promises waiting in the main thread get the lock in call order, before a later worker', { timeout: 60_000 }, async () => {
    const lock = grid.cp.lock('fifo-main');
    await lock.lock();
    const order: number[] = [];
    const waits = [0, 1, 2].map((i) => lock.lock().then(async (t) => {
      order.push(i);
      await sleep(1);
      await lock.unlock();
      return t;
    }));
    await sleep(20);
    await lock.unlock();
    const tokens = await Promise.all(waits);
    expect(order).toEqual([0, 1, 2]);
    expect(tokens[0] < tokens[1] && tokens[1] < tokens[2]).toBe(true);
  });

  for (const how of ['terminate', 'exit'] as const) {
    it(`a worker that ${how === 'terminate' ? 'is terminated' : 'calls process.exit'} while holding a lock frees it: the waiting main thread acquires soon after the exit event`, { timeout: 60_000 }, async () => {
      const name = `dies-${how}`;
      const shared = new SharedArrayBuffer(4096);
      const r = start(grid, shared, { mode: 'hold', name, how });
      await r.next('held');
      const lock = grid.cp.lock(name);
      expect(await lock.tryLock()).toBeUndefined(); // really held by the worker
      let exitAt = 0;
      r.worker.once('exit', () => (exitAt = performance.now()));
      const acquired = lock.lock().then((t) => ({ t, at: performance.now() }));
      const killedAt = performance.now();
      if (how === 'terminate') void r.worker.terminate();
      const { t, at } = await acquired;
      const afterExit = at - exitAt;
      console.log(`${how}: acquired ${afterExit.toFixed(2)} ms after the exit event (${(at - killedAt).toFixed(1)} ms after ${how === 'terminate' ? 'terminate()' : 'the wait began'})`);
      expect(exitAt).toBeGreaterThan(0);
      // The release runs in the member's exit handler and wakes the waiter at once; the bound is
      // the 100 ms, measured from the exit event (when the process learns of the death).
      expect(afterExit).toBeLessThan(100);
      expect(t).toBeGreaterThan(1);
      expect(grid.stats().cpRecoveries).toBeGreaterThan(0);
      await lock.unlock();
    });
  }

  it('a worker that exits while a CP session it opened holds a lock and permits frees both (the session ends with its thread)', { timeout: 60_000 }, async () => {
    const lock = grid.cp.lock('session-dies');
    const sem = grid.cp.semaphore('session-dies-sem', { permits: 3 });
    const a = start(grid, new SharedArrayBuffer(4096), { mode: 'hold', name: 'session-dies', session: true });
    const b = start(grid, new SharedArrayBuffer(4096), { mode: 'hold', name: 'session-dies-sem', permits: 2, session: true });
    await Promise.all([a.next('held'), b.next('held')]);
    expect(await lock.tryLock()).toBeUndefined();
    expect(await sem.availablePermits()).toBe(1);
    const acquired = lock.lock().then((t) => ({ t, at: performance.now() }));
    let exitAt = 0;
    a.worker.once('exit', () => (exitAt = performance.now()));
    await Promise.all([a.worker.terminate(), b.worker.terminate()]);
    const { t, at } = await acquired;
    expect(t).toBeGreaterThan(1);
    expect(at - exitAt).toBeLessThan(100);
    await b.exited;
    // the release runs in the exit handler, which may come a moment after terminate() resolves
    for (let i = 0; i < 50 && (await sem.availablePermits()) !== 3; i++) await sleep(10);
    expect(await sem.availablePermits()).toBe(3);
    await lock.unlock();
  });

  it('a thread terminated while waiting for a lock leaves the queue: the next release does not hand the lock to it', { timeout: 60_000 }, async () => {
    const lock = grid.cp.lock('dead-waiter');
    await lock.lock();
    const region = new CpRegion(grid.handle.cp!, 1000);
    const slot = region.slot('dead-waiter', K_LOCK, () => undefined);
    const queued = () => Atomics.load(region.i32, region.sw(slot) + S_NWAIT);
    const r = start(grid, new SharedArrayBuffer(4096), { mode: 'wait', name: 'dead-waiter' });
    await r.next('ready');
    while (queued() < 1) await sleep(2);
    await r.worker.terminate();
    await r.exited;
    expect(queued()).toBe(0);
    await lock.unlock();
    expect(await lock.tryLock()).toBeGreaterThan(0); // free at once, not handed to the dead waiter
    await lock.unlock();
    expect(r.messages.some((m) => m.type === 'acquired')).toBe(false);
  });

  it('a thread that dies inside a primitive\'s internal mutex: the mutex is taken over and the counters are rebuilt from the records', { timeout: 60_000 }, async () => {
    const sem = grid.cp.semaphore('in-mutex-sem', { permits: 2 });
    const before = grid.stats().cpRecoveries;
    const r = start(grid, new SharedArrayBuffer(4096), { mode: 'die-in-mutex', name: 'in-mutex' });
    await r.next('held');
    expect(await r.exited).toBe(9);
    await sleep(10);
    expect(grid.stats().cpRecoveries - before).toBe(2);
    const lock = grid.cp.lock('in-mutex');
    // with a lease: this path takes the slot mutex the dead thread held (lockTimeout if never freed)
    const t = await lock.tryLock({ timeoutMs: 5_000, leaseMs: 60_000 });
    expect(t).toBeGreaterThan(0);
    await lock.unlock();
    expect(await lock.isLocked()).toBe(false);
    expect(await sem.availablePermits()).toBe(2); // recounted: TOTAL - held
    expect(await sem.tryAcquire(2)).toBe(true);
    await sem.release(2);
  });

  it('semaphore permits held by a thread that is terminated are returned', { timeout: 60_000 }, async () => {
    const sem = grid.cp.semaphore('sem-dies', { permits: 3 });
    const r = start(grid, new SharedArrayBuffer(4096), { mode: 'hold', name: 'sem-dies', permits: 2 });
    await r.next('held');
    expect(await sem.availablePermits()).toBe(1);
    expect(await sem.tryAcquire(2)).toBe(false);
    const got = sem.acquire(3, { timeoutMs: 10_000 });
    void r.worker.terminate();
    await got;
    expect(await sem.availablePermits()).toBe(0);
    await sem.release(3);
    expect(await sem.availablePermits()).toBe(3);
  });

  it('a lock held by the child worker of an attached thread is freed when that child is terminated (the attached grid watches its own workers)', { timeout: 60_000 }, async () => {
    const r = start(grid, new SharedArrayBuffer(4096), { mode: 'parent', name: 'nested' });
    const m = await r.next('result');
    expect(m.before).toBeNull();
    expect(m.after).toBeGreaterThan(0);
    expect(await r.exited).toBe(0);
  });

  it('a lock held by the child worker of an attached thread is freed when Node ends that child with its terminated parent', { timeout: 60_000 }, async () => {
    // The member never saw the child start (only its parent did) and the parent's exit handler
    // never runs: the lock stayed held for good. The parent links its workers in shared memory now.
    const r = start(grid, new SharedArrayBuffer(4096), { mode: 'parent-of-holder', name: 'orphaned' });
    await r.next('held');
    const lock = grid.cp.lock('orphaned');
    expect(await lock.isLocked()).toBe(true);
    await r.worker.terminate();
    expect(await lock.tryLock({ timeoutMs: 5000 })).toBeGreaterThan(0);
    await lock.unlock();
  });

  it('lease expiry: another thread takes the lock over with a higher token, and the old holder\'s unlock throws GRID_ERR_LOCK_NOT_HELD', { timeout: 60_000 }, async () => {
    const shared = new SharedArrayBuffer(4096);
    const sh = new Int32Array(shared);
    const r = start(grid, shared, { mode: 'lease', name: 'leased', leaseMs: 150 });
    const { token: first } = await r.next('held');
    const lock = grid.cp.lock('leased');
    expect(await lock.tryLock()).toBeUndefined();
    const second = await lock.lock({ leaseMs: 60_000 }); // waits for the lease to pass
    expect(second).toBeGreaterThan(first);
    Atomics.store(sh, 0, 1);
    Atomics.notify(sh, 0);
    expect((await r.next('unlock-error')).code).toBe('GRID_ERR_LOCK_NOT_HELD');
    expect(await lock.isLocked()).toBe(true); // the old holder's failed unlock did not release ours
    await lock.unlock();
    expect(await lock.isLocked()).toBe(false);
  });
});
