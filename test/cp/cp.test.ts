// Coordination primitives in one thread: the API, versioned references without ABA, the fence,
// and the typed errors of misuse. Loads the compiled package (npm test builds first).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachGrid, createFence, createGrid, CpCapacityError, CpKindError, InvalidArgumentError, LockNotHeldError, PermitsNotHeldError, StaleTokenError, UnsupportedError, ValueTooLargeError, InvalidOptionError, LockTimeoutError, GridClosedError } from '../../dist/index.js';
import type { Grid } from '../../dist/index.js';
import { code } from './helpers.js';


describe('coordination primitives in one thread', () => {
  let grid: Grid;
  beforeAll(async () => {
    grid = await createGrid({ workers: 1, memory: '16MB', cp: { primitives: 64, maxValueBytes: 128, waiters: 64 } });
  });
  afterAll(async () => {
    await grid.close();
  });

  it('the same name gives the same lock from another attachment of the grid, and tokens count up per name', async () => {
    const other = await attachGrid(grid.handle);
    const a = grid.cp.lock('same');
    const b = other.cp.lock('same');
    const t1 = await a.lock();
    expect(await b.isLocked()).toBe(true);
    await b.unlock(); // same thread: a thread-held lock
    const t2 = await b.lock();
    expect(t2).toBeGreaterThan(t1);
    await a.unlock();
    const t3 = await grid.cp.lock('another').lock();
    expect(t3).toBe(1); // a separate counter per name
    await grid.cp.lock('another').unlock();
  });

  it('tryLock returns undefined while held, and a token within timeoutMs once released', async () => {
    const l = grid.cp.lock('try');
    const t = await l.lock();
    expect(await l.tryLock()).toBeUndefined();
    const waiting = l.tryLock({ timeoutMs: 5_000 });
    setTimeout(() => void l.unlock(), 20);
    const t2 = await waiting;
    expect(t2).toBe(t + 1);
    expect(await l.tryLock({ timeoutMs: 30 })).toBeUndefined(); // held by the waiter now: times out
    await l.unlock();
  });

  it('withLock passes the token, unlocks after fn, and unlocks when fn throws', async () => {
    const seen: number[] = [];
    const r = await grid.cp.withLock('with', async (token) => {
      seen.push(token);
      return 'done';
    });
    expect(r).toBe('done');
    expect(await grid.cp.lock('with').isLocked()).toBe(false);
    await expect(grid.cp.withLock('with', () => {
      throw new Error('inside');
    })).rejects.toThrow('inside');
    expect(await grid.cp.lock('with').isLocked()).toBe(false);
    expect(seen).toEqual([1]);
  });

  it('a lease that passes frees the lock for the next acquirer, and the late unlock throws GRID_ERR_LOCK_NOT_HELD', async () => {
    const l = grid.cp.lock('lease-1');
    const t1 = await l.lock({ leaseMs: 30 });
    await new Promise((r) => setTimeout(r, 50));
    expect(await l.isLocked()).toBe(false);
    const err = await code(() => l.unlock());
    expect(err).toBe(LockNotHeldError.code);
    const t2 = await l.tryLock();
    expect(t2).toBeGreaterThan(t1);
    await l.unlock();
  });

  it('atomicLong: get, set, addAndGet, getAndAdd, incrementAndGet, compareAndSet, as bigints that wrap like a Java long', async () => {
    const c = grid.cp.atomicLong('long');
    expect(await c.get()).toBe(0n);
    await c.set(40);
    expect(await c.addAndGet(2)).toBe(42n);
    expect(await c.getAndAdd(-2n)).toBe(42n);
    expect(await c.incrementAndGet()).toBe(41n);
    expect(await c.compareAndSet(40, 7)).toBe(false);
    expect(await c.compareAndSet(41, 7)).toBe(true);
    expect(await c.get()).toBe(7n);
    await c.set(2n ** 63n - 1n);
    expect(await c.incrementAndGet()).toBe(-(2n ** 63n));
    expect(await code(() => c.set(1.5))).toBe(InvalidArgumentError.code);
    expect(await code(() => c.set(2n ** 63n))).toBe(InvalidArgumentError.code);
  });

  it('atomicRef: compareAndSet compares encoded values; compareAndSetVersion refuses an A→B→A change (no ABA)', async () => {
    const ref = grid.cp.atomicRef<{ v: string }>('ref');
    expect(await ref.getVersioned()).toEqual({ value: undefined, version: 0 });
    expect(await ref.compareAndSet(undefined, { v: 'A' })).toBe(true);
    const seen = await ref.getVersioned();
    expect(seen).toEqual({ value: { v: 'A' }, version: 1 });
    await ref.set({ v: 'B' });
    await ref.set({ v: 'A' }); // back to an equal value
    expect(await ref.compareAndSetVersion(seen.version, { v: 'C' })).toBe(false); // version moved on
    expect(await ref.get()).toEqual({ v: 'A' });
    expect(await ref.compareAndSet({ v: 'A' }, { v: 'C' })).toBe(true); // by value it cannot tell
    const now = await ref.getVersioned();
    expect(now.version).toBe(4);
    expect(await ref.compareAndSetVersion(now.version, { v: 'D' })).toBe(true);
    expect(await ref.compareAndSet({ v: 'A' }, { v: 'E' })).toBe(false);
  });

  it('atomicRef: a value over options.cp.maxValueBytes is refused with GRID_ERR_VALUE_TOO_LARGE and leaves the ref as it was', async () => {
    const ref = grid.cp.atomicRef<string>('ref-big');
    await ref.set('small');
    expect(await code(() => ref.set('x'.repeat(200)))).toBe(ValueTooLargeError.code);
    expect(await ref.getVersioned()).toEqual({ value: 'small', version: 1 });
  });

  it('semaphore: acquire, tryAcquire, release and availablePermits; a waiter for many permits is not overtaken by a later one for fewer', async () => {
    const s = grid.cp.semaphore('sem', { permits: 3 });
    await s.acquire(2);
    expect(await s.availablePermits()).toBe(1);
    const order: string[] = [];
    const big = s.acquire(3, { timeoutMs: 5_000 }).then(() => order.push('big'));
    const small = s.acquire(1, { timeoutMs: 5_000 }).then(() => order.push('small'));
    await new Promise((r) => setTimeout(r, 20));
    expect(order).toEqual([]); // one permit is free, but the older waiter wants 3
    await s.release(2);
    await big;
    await s.release(3);
    await small;
    expect(order).toEqual(['big', 'small']);
    await s.release(1);
    expect(await s.availablePermits()).toBe(3);
    expect(await code(() => s.acquire(1, { timeoutMs: 10 }).then(() => s.acquire(3, { timeoutMs: 10 })))).toBe(LockTimeoutError.code);
    await s.release(1);
  });

  it('misuse gets typed errors', async () => {
    const l = grid.cp.lock('misuse');
    expect(await code(() => l.unlock())).toBe(LockNotHeldError.code);
    for (const leaseMs of [0, -1, NaN, Infinity, '10' as unknown as number]) expect(await code(() => l.lock({ leaseMs }))).toBe(InvalidArgumentError.code);
    expect(await code(() => l.tryLock({ timeoutMs: -1 }))).toBe(InvalidArgumentError.code);
    expect(await code(() => l.lockSync())).toBe(UnsupportedError.code); // would block the main thread
    expect(await code(() => grid.cp.atomicLong('misuse'))).toBe(CpKindError.code);
    expect(await code(() => grid.cp.semaphore('misuse', { permits: 1 }))).toBe(CpKindError.code);
    expect(await code(() => grid.cp.semaphore('sem-neg', { permits: -1 }))).toBe(InvalidArgumentError.code);
    expect(await code(() => grid.cp.semaphore('sem-frac', { permits: 1.5 }))).toBe(InvalidArgumentError.code);
    expect(await code(() => grid.cp.semaphore('sem-none'))).toBe(InvalidArgumentError.code);
    const s = grid.cp.semaphore('sem-misuse', { permits: 2 });
    expect(await code(() => grid.cp.semaphore('sem-misuse', { permits: 5 }))).toBe(InvalidArgumentError.code);
    for (const n of [0, -1, 1.5, 3]) expect(await code(() => s.acquire(n))).toBe(InvalidArgumentError.code);
    expect(await code(() => s.release(1))).toBe(PermitsNotHeldError.code);
    expect(await code(() => grid.cp.lock(''))).toBe(InvalidArgumentError.code);
    expect(await code(() => grid.cp.lock('n'.repeat(300)))).toBe(InvalidArgumentError.code);
    expect(await code(() => grid.cp.atomicRef('r').compareAndSetVersion(-1, 1))).toBe(InvalidArgumentError.code);
  });

  it('the table of names is bounded by options.cp.primitives (GRID_ERR_CP_CAPACITY)', async () => {
    const g = await createGrid({ workers: 1, memory: '16MB', cp: { primitives: 4 } });
    try {
      for (let i = 0; i < 4; i++) g.cp.atomicLong(`n${i}`);
      expect(await code(() => g.cp.atomicLong('n4'))).toBe(CpCapacityError.code);
      expect(g.cp.atomicLong('n2')).toBeDefined(); // existing names still resolve
    } finally {
      await g.close();
    }
  });

  it('options.cp is validated: unknown keys and out-of-range limits name the option', async () => {
    expect(await code(() => createGrid({ cp: { primitives: 0 } }))).toBe(InvalidOptionError.code);
    expect(await code(() => createGrid({ cp: { waiters: 1.5 } }))).toBe(InvalidOptionError.code);
    expect(await code(() => createGrid({ cp: { nope: 1 } as never }))).toBe(InvalidOptionError.code);
  });

  it('grid.cp after close throws GRID_ERR_CLOSED', async () => {
    const g = await createGrid({ workers: 1, memory: '16MB' });
    await g.close();
    expect(await code(() => g.cp.lock('x'))).toBe(GridClosedError.code);
  });
});

describe('createFence', () => {
  it('accepts tokens in order (equal included) and rejects an older one with GRID_ERR_STALE_TOKEN, per resource', () => {
    const fence = createFence();
    fence.check('orders', 5);
    fence.check('orders', 5);
    fence.check('orders', 7);
    expect(() => fence.check('orders', 6)).toThrow(StaleTokenError);
    fence.check('users', 1); // another resource has its own highest token
    expect(fence.highest('orders')).toBe(7);
    expect(fence.highest('nothing')).toBeUndefined();
    expect(() => fence.check('orders', 0)).toThrow(InvalidArgumentError);
  });

  it('with a lock: the holder whose lease passed is turned away by the resource', async () => {
    const grid = await createGrid({ workers: 1, memory: '16MB' });
    try {
      const fence = createFence();
      const lock = grid.cp.lock('fenced');
      const slow = await lock.lock({ leaseMs: 20 });
      await new Promise((r) => setTimeout(r, 40)); // the slow holder pauses past its lease
      const fast = await lock.lock();
      fence.check('row', fast);
      expect(() => fence.check('row', slow)).toThrow(StaleTokenError);
      await lock.unlock();
    } finally {
      await grid.close();
    }
  });
});

/** Misspelt and misplaced option keys, and a withLock without a function: GRID_ERR_INVALID_ARGUMENT before anything is taken. */
async function refusesBadOptions(grid: Grid): Promise<void> {
  const l = grid.cp.lock('opt-keys');
  const s = grid.cp.semaphore('opt-sem', { permits: 1 });
  const bad: Array<() => unknown> = [
    () => l.lock({ lease: 10_000 } as never), // would hold without a lease, for good
    () => l.lock({ timeoutMs: 10 } as never), // lock() never times out
    () => l.tryLock({ timeout: 100 } as never), // would not wait at all
    () => l.lock(5 as never),
    () => s.acquire(1, { timeout: 100 } as never), // would wait forever
    () => s.tryAcquire(1, { leaseMs: 100 } as never),
    () => grid.cp.semaphore('opt-sem', { permit: 1 } as never),
    () => grid.cp.withLock('opt-keys', 5 as never),
  ];
  for (const f of bad) expect(await code(f)).toBe(InvalidArgumentError.code);
  expect(await l.isLocked()).toBe(false);
  expect(await s.availablePermits()).toBe(1);
  const t = await l.tryLock({ timeoutMs: 10, leaseMs: 1000 });
  expect(t).toBeGreaterThan(0);
  await l.unlock();
}

describe('unknown option keys', () => {
  it('are refused with GRID_ERR_INVALID_ARGUMENT naming the key, in one process and in a cluster', async () => {
    const one = await createGrid({ workers: 1, memory: '16MB' });
    try {
      await refusesBadOptions(one);
    } finally {
      await one.close();
    }
    const clustered = await createGrid({ workers: 1, memory: '16MB', cluster: { port: 0, secret: 'a-test-secret-of-enough-length-0123456789' } });
    try {
      await refusesBadOptions(clustered);
    } finally {
      await clustered.close();
    }
  });
});

describe('a clustered grid', () => {
  it('serves grid.cp from the metadata log (a cluster of one), and its synchronous forms throw GRID_ERR_UNSUPPORTED', async () => {
    const grid = await createGrid({ workers: 1, memory: '16MB', cluster: { port: 0, secret: 'a-test-secret-of-enough-length-0123456789' } });
    try {
      expect(grid.handle.cp).toBeUndefined();
      const lock = grid.cp.lock('x');
      const t1 = await lock.lock();
      expect(await lock.tryLock()).toBeUndefined(); // not re-entrant: this member holds it
      await lock.unlock();
      const t2 = await grid.cp.withLock('x', (t) => t);
      expect(t2).toBeGreaterThan(t1);
      await expect(lock.unlock()).rejects.toMatchObject({ code: 'GRID_ERR_LOCK_NOT_HELD' });
      expect(await grid.cp.atomicLong('n').addAndGet(2n ** 53n - 1n)).toBe(2n ** 53n - 1n);
      await expect(grid.cp.atomicLong('n').incrementAndGet()).rejects.toMatchObject({ code: 'GRID_ERR_CP_RANGE' });
      await expect(grid.cp.atomicLong('n').set(2n ** 60n)).rejects.toMatchObject({ code: 'GRID_ERR_CP_RANGE' });
      await expect(grid.cp.semaphore('x', { permits: 1 }).acquire()).rejects.toMatchObject({ code: 'GRID_ERR_CP_KIND' });
      for (const f of [() => lock.lockSync(), () => grid.cp.atomicLong('n').getSync(), () => grid.cp.atomicRef('r').getSync(), () => grid.cp.semaphore('s', { permits: 1 }).tryAcquireSync()]) {
        expect(await code(f)).toBe(UnsupportedError.code);
      }
      // idle, nothing is resent: no log entries appear (a leader that is its own majority applies a
      // command inside its submit; a resend timer armed after that would propose it every second)
      const meta = (grid as unknown as { cluster: { meta: { state: { index: number } } } }).cluster.meta;
      const idx = meta.state.index;
      await new Promise((r) => setTimeout(r, 2500));
      expect(meta.state.index).toBe(idx);
      expect(await code(() => grid.cp.lock(''))).toBe('GRID_ERR_INVALID_ARGUMENT');
      expect(await code(() => grid.cp.lock('x').lock({ leaseMs: 0 }))).toBe('GRID_ERR_INVALID_ARGUMENT');
    } finally {
      await grid.close();
    }
  });
});
