// Waits that end, processes that exit, and names and values that cannot be told apart (found by
// trying grid.cp as a user):
// - a wait whose keep-alive timer fired at the moment of its own timeout let the process exit
//   with code 13 in the middle of a lock() (2 to 5 runs in 6 of a lease wait);
// - grid.close() left this thread's own pending lock() and acquire() pending for good, and the
//   process never exited; in a cluster a cut wait kept the process alive ~10 s;
// - names and atomicRef strings with a lone surrogate were one primitive / came back changed, a
//   function was stored as an unset ref, and a Symbol name threw a TypeError.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrid, type Grid } from '../../dist/index.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/cp-liveness.mjs', import.meta.url));

/** Runs the fixture: its JSON line, exit code, and how long the process lived after its last close(). */
function run(mode: string, boundMs: number): Promise<{ out: Record<string, unknown>; code: number | null; exitLagMs: number }> {
  return new Promise((resolve, reject) => {
    const cp = spawn(process.execPath, [FIXTURE, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    cp.stdout.on('data', (d) => (text += d));
    const t = setTimeout(() => cp.kill('SIGKILL'), boundMs);
    cp.once('error', reject);
    cp.once('exit', (code) => {
      clearTimeout(t);
      const line = text.trim().split('\n').pop() ?? '{}';
      const out = line.startsWith('{') ? (JSON.parse(line) as Record<string, unknown>) : {};
      resolve({ out, code, exitLagMs: typeof out.closedAt === 'number' ? Date.now() - out.closedAt : -1 });
    });
  });
}

describe('waits end and processes exit', () => {
  it('20 waits ended by a lease, a tryLock timeout and an acquire timeout, 3 processes: each runs to the end and exits 0', { timeout: 120_000 }, async () => {
    for (let i = 0; i < 3; i++) {
      const r = await run('waits', 60_000);
      expect(r.code).toBe(0);
      expect(r.out.ended).toBe(20);
    }
  });

  it('grid.close() ends this thread\'s pending lock() and acquire() with GRID_ERR_CLOSED, later calls of its handles fail, and the process exits', { timeout: 60_000 }, async () => {
    const r = await run('close', 30_000);
    expect(r.code).toBe(0);
    expect(r.out.waits).toEqual(['GRID_ERR_CLOSED', 'GRID_ERR_CLOSED']);
    expect(r.out.after).toBe('GRID_ERR_CLOSED');
    // handles taken before close() fail after it, atomics too (they went on working)
    expect(r.out.atomics).toEqual(['GRID_ERR_CLOSED', 'GRID_ERR_CLOSED', 'GRID_ERR_CLOSED']);
    // a generous bound for "it exits by itself"; it used to never exit
    expect(r.exitLagMs).toBeLessThan(5000);
  });

  it('in a cluster, a lock() cut by close() does not keep the process alive', { timeout: 90_000 }, async () => {
    const r = await run('cluster', 60_000);
    expect(r.code).toBe(0);
    expect(r.out.wait).toBe('GRID_ERR_CLOSED');
    // it lived ~9.7 s after the last close (the attempt's timer); a generous bound below that
    expect(r.exitLagMs).toBeLessThan(5000);
  });
});

describe('names and values grid.cp cannot tell apart', () => {
  let grid: Grid;
  beforeAll(async () => {
    grid = await createGrid({ workers: 1, memory: '16MB' });
  });
  afterAll(async () => {
    await grid?.close();
  });

  it('a name with a lone surrogate, or not a string, is GRID_ERR_INVALID_ARGUMENT for every kind', () => {
    for (const name of ['\uD800', 'x\uDE00', Symbol('s'), 42]) {
      for (const make of [(n: string) => grid.cp.lock(n), (n: string) => grid.cp.atomicLong(n), (n: string) => grid.cp.atomicRef(n), (n: string) => grid.cp.semaphore(n, { permits: 1 })]) {
        expect(() => make(name as string)).toThrow(expect.objectContaining({ code: 'GRID_ERR_INVALID_ARGUMENT' }));
      }
    }
    expect(grid.cp.atomicLong('\uFFFD')).toBeDefined(); // the replacement character itself is a name like any other
  });

  it('leaseMs has the cluster\'s bound in one process too (one year)', async () => {
    const l = grid.cp.lock('lease-bound');
    await expect(l.tryLock({ leaseMs: 365 * 24 * 3600_000 + 1 })).rejects.toMatchObject({ code: 'GRID_ERR_INVALID_ARGUMENT' });
    expect(await l.tryLock({ leaseMs: 365 * 24 * 3600_000 })).toBeGreaterThan(0);
    await l.unlock();
  });

  it('a closed session opens no sub-session (its sub-sessions used to work)', async () => {
    const s = grid.cp.session();
    await s.close();
    expect(() => s.session()).toThrow(expect.objectContaining({ code: 'GRID_ERR_CP_SESSION' }));
  });

  it('an atomicRef refuses a lone surrogate anywhere and a function (GRID_ERR_UNENCODABLE_VALUE); it keeps what it had', async () => {
    const ref = grid.cp.atomicRef<unknown>('r');
    await ref.set({ name: 'kept' });
    for (const v of ['ab\uD83D', { name: 'ab\uD83D' }, [{ ['k\uDC00']: 1 }], () => 1]) {
      await expect(ref.set(v)).rejects.toMatchObject({ code: 'GRID_ERR_UNENCODABLE_VALUE' });
    }
    expect(await ref.get()).toEqual({ name: 'kept' });
    expect(await ref.compareAndSet({ name: 'kept' }, '😀')).toBe(true);
    expect(await ref.get()).toBe('😀');
  });
});
