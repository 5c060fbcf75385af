// CP sessions in one process (grid.cp.session()): owners that are not threads, so one thread can
// hold locks and permits for many clients (the RESP endpoint opens one per connection). Each test
// checks what a mix-up of owners would break: a session releasing another's lock, a closed
// session still holding or being granted, records or entries that leak. Loads the compiled package.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrid } from '../../dist/index.js';
import type { Grid } from '../../dist/index.js';
import { CpRegion } from '../../dist/cp/region.js';
import { K_LOCK, K_SEMAPHORE, S_NHOLD, S_NWAIT, S_OWNER } from '../../dist/cp/layout.js';
import { code } from './helpers.js';


const WAITERS = 32;

describe('CP sessions in one process', () => {
  let grid: Grid;
  let region: CpRegion;
  /** Records in use (waiting or holding), over every slot: what a leak would show. */
  const recordsInUse = (): number => {
    let n = 0;
    const words = 64 >> 2;
    const at = (region as unknown as { recW: number }).recW;
    for (let r = 0; r < region.waiters; r++) if (Atomics.load(region.i32, at + r * words) !== 0) n++;
    return n;
  };
  beforeAll(async () => {
    grid = await createGrid({ workers: 1, memory: '16MB', cp: { primitives: 64, maxValueBytes: 128, waiters: WAITERS } });
    region = new CpRegion(grid.handle.cp!, 1000);
  });
  afterAll(async () => {
    await grid.close();
  });

  it('two sessions of one thread exclude each other, and neither can unlock what the other holds', async () => {
    const a = grid.cp.session();
    const b = grid.cp.session();
    const t1 = await a.lock('x').lock();
    expect(await b.lock('x').tryLock()).toBeUndefined();
    expect(await code(() => b.lock('x').unlock())).toBe('GRID_ERR_LOCK_NOT_HELD');
    expect(await code(() => grid.cp.lock('x').unlock())).toBe('GRID_ERR_LOCK_NOT_HELD'); // nor the thread
    expect(await grid.cp.lock('x').isLocked()).toBe(true);
    const waiting = b.lock('x').lock();
    await a.lock('x').unlock();
    const t2 = await waiting;
    expect(t2).toBe(t1 + 1);
    expect(await code(() => a.lock('x').unlock())).toBe('GRID_ERR_LOCK_NOT_HELD');
    await b.lock('x').unlock();
    expect(await grid.cp.lock('x').isLocked()).toBe(false);
    // the same holds for the sync forms on the main thread (tryLockSync, unlockSync)
    expect(a.lock('x').tryLockSync()).toBe(t2 + 1);
    expect(b.lock('x').tryLockSync()).toBeUndefined();
    expect(() => b.lock('x').unlockSync()).toThrow(/not held by this session/);
    a.lock('x').unlockSync();
    await a.close();
    await b.close();
  });

  it('close() hands a held lock to the next waiter and returns held permits; the closed session can take nothing', async () => {
    const a = grid.cp.session();
    const b = grid.cp.session();
    const t1 = await a.lock('handoff').lock({ leaseMs: 60_000 });
    const sem = a.semaphore('sem-close', { permits: 3 });
    await sem.acquire(2);
    expect(await sem.availablePermits()).toBe(1);
    const waiting = b.lock('handoff').lock();
    await a.close();
    expect(await waiting).toBe(t1 + 1);
    expect(await grid.cp.semaphore('sem-close').availablePermits()).toBe(3);
    expect(a.closed).toBe(true);
    expect(await code(() => a.lock('handoff').lock())).toBe('GRID_ERR_CP_SESSION');
    expect(await code(() => a.lock('other').tryLock())).toBe('GRID_ERR_CP_SESSION');
    expect(await code(() => sem.acquire(1))).toBe('GRID_ERR_CP_SESSION');
    expect(await code(() => a.lock('handoff').unlock())).toBe('GRID_ERR_LOCK_NOT_HELD');
    expect(await code(() => sem.release(1))).toBe('GRID_ERR_CP_SESSION');
    expect(sem.heldPermitsSync()).toBe(0);
    await b.lock('handoff').unlock();
    await b.close();
    expect(recordsInUse()).toBe(0);
  });

  it('close() ends the session\'s own waits: they reject, leave the queue, and the lock stays with its holder', async () => {
    const holder = grid.cp.session();
    const w = grid.cp.session();
    await holder.lock('q').lock();
    // the outcome's code, with a handler attached now (they reject while close() is awaited)
    const outcome = (p: Promise<unknown>) => p.then(() => 'resolved', (e: { code?: string }) => e.code);
    const lockWait = outcome(w.lock('q').lock());
    const tryWait = outcome(w.lock('q').tryLock({ timeoutMs: 60_000 }));
    const semHolder = holder.semaphore('q-sem', { permits: 1 });
    await semHolder.acquire(1);
    const acqWait = outcome(w.semaphore('q-sem').acquire(1));
    await new Promise((r) => setTimeout(r, 10));
    const slot = region.slot('q', K_LOCK, () => undefined);
    expect(Atomics.load(region.i32, region.sw(slot) + S_NWAIT)).toBe(2);
    await w.close();
    expect(await lockWait).toBe('GRID_ERR_CP_SESSION');
    expect(await tryWait).toBe('GRID_ERR_CP_SESSION');
    expect(await acqWait).toBe('GRID_ERR_CP_SESSION');
    expect(Atomics.load(region.i32, region.sw(slot) + S_NWAIT)).toBe(0);
    expect(await grid.cp.lock('q').isLocked()).toBe(true);
    await holder.lock('q').unlock();
    expect(await grid.cp.lock('q').isLocked()).toBe(false); // not handed to the closed waiter
    await semHolder.release(1);
    expect(await grid.cp.semaphore('q-sem').availablePermits()).toBe(1);
    await holder.close();
    expect(recordsInUse()).toBe(0);
  });

  it('a release and a close of the waiter in the same turn: the lock never stays with the closed session (200 rounds)', async () => {
    const a = grid.cp.session();
    const c = grid.cp.session();
    const slot = region.slot('race', K_LOCK, () => undefined);
    let last = 0;
    for (let i = 0; i < 200; i++) {
      const b = grid.cp.session();
      last = await a.lock('race').lock();
      const bWait = b.lock('race').lock().catch((e: { code?: string }) => e.code);
      // c queues behind b on odd rounds: then b's grant, if it came, must pass on to c
      const cWait = i % 2 === 1 ? c.lock('race').lock() : undefined;
      await new Promise((r) => setImmediate(r));
      const closing = i % 3 === 0 ? [a.lock('race').unlock(), b.close()] : [b.close(), a.lock('race').unlock()];
      await Promise.all(closing);
      const bGot = await bWait;
      // b either was granted before its close (a token, which its close released) or not
      expect(bGot === 'GRID_ERR_CP_SESSION' || typeof bGot === 'number').toBe(true);
      if (cWait !== undefined) {
        const t = await cWait;
        expect(t).toBeGreaterThan(last);
        await c.lock('race').unlock();
      }
      expect(Atomics.load(region.i32, region.sw(slot) + S_OWNER)).toBe(0);
      expect(Atomics.load(region.i32, region.sw(slot) + S_NWAIT)).toBe(0);
    }
    await a.close();
    await c.close();
    expect(recordsInUse()).toBe(0);
  });

  it('session entries are bounded by options.cp.waiters (GRID_ERR_CP_CAPACITY), reused after close, and a closed session\'s id is not reused at once', async () => {
    const open = [];
    for (let i = 0; i < WAITERS; i++) open.push(grid.cp.session());
    expect(await code(() => grid.cp.session())).toBe('GRID_ERR_CP_CAPACITY');
    const old = open.pop()!;
    await old.lock('ids').lock();
    await old.close();
    const fresh = grid.cp.session();
    // the fresh session may take the same entry, but not the same owner: the closed handle's
    // unlock must not release what the fresh session holds
    await fresh.lock('ids').lock();
    expect(await code(() => old.lock('ids').unlock())).toBe('GRID_ERR_LOCK_NOT_HELD');
    expect(await grid.cp.lock('ids').isLocked()).toBe(true);
    await fresh.lock('ids').unlock();
    await fresh.close();
    await Promise.all(open.map((s) => s.close()));
    // many open/close cycles with waits and holds leak nothing
    for (let i = 0; i < 3 * WAITERS; i++) {
      const s = grid.cp.session();
      await s.semaphore('cycle', { permits: 2 }).acquire(1);
      await s.lock('cycle-lock').lock();
      await s.close();
    }
    expect(recordsInUse()).toBe(0);
    const sem = region.slot('cycle', K_SEMAPHORE, () => undefined);
    expect(Atomics.load(region.i32, region.sw(sem) + S_NHOLD)).toBe(0);
    expect(await grid.cp.semaphore('cycle').availablePermits()).toBe(2);
  });

  it('grid.close() closes the sessions opened through it', async () => {
    const g = await createGrid({ workers: 1, memory: '16MB', cp: { primitives: 8, maxValueBytes: 64, waiters: 8 } });
    const s = g.cp.session();
    const l = s.lock('g');
    await l.lock();
    await g.close();
    expect(s.closed).toBe(true);
    expect(await code(() => l.lock())).toBe('GRID_ERR_CP_SESSION');
    expect(await code(() => g.cp.session())).toBe('GRID_ERR_CLOSED');
  });
});
