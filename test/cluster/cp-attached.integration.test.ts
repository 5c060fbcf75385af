// grid.cp from threads attached to a cluster member (issue 13): each attached thread is a CP client
// of its own — its own session through the member's main thread — so a lock it holds is its own
// (the member's main thread cannot take it, nor release it), atomicLong increments from several
// threads and the member add up exactly, and a thread that dies holding a lock loses it when its
// session's TTL passes (the member's own session keeps heartbeating).
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrid, type Grid } from '../../dist/index.js';

const SECRET = 'cp-attached-test-secret-0123456789abcdef';
const DIST = new URL('../../dist/index.js', import.meta.url).href;

/** Runs `body` (an async function's source, given `grid` and `post`) in a worker attached to the member. */
function inWorker(grid: Grid, body: string, onMessage?: (m: unknown) => void): { done: Promise<unknown>; worker: Worker } {
  const worker = new Worker(
    `const { workerData, parentPort } = require('node:worker_threads');
     import(workerData.url).then(async ({ attachGrid }) => {
       const grid = await attachGrid(workerData.handle);
       const post = (m) => parentPort.postMessage(m);
       const r = await (async () => { ${body} })();
       post({ result: r });
       await grid.close();
     }).catch((e) => parentPort.postMessage({ error: String(e && e.code || e) }));`,
    { eval: true, workerData: { handle: grid.handle, url: DIST } },
  );
  const done = new Promise((resolve, reject) => {
    worker.on('message', (m: { result?: unknown; error?: string }) => {
      if (m !== null && typeof m === 'object' && 'result' in m) resolve(m.result);
      else if (m !== null && typeof m === 'object' && 'error' in m) reject(new Error(m.error));
      else onMessage?.(m);
    });
    worker.once('error', reject);
  });
  return { done, worker };
}

describe('grid.cp in threads attached to a cluster member', () => {
  let grid: Grid;
  beforeAll(async () => {
    grid = await createGrid({ workers: 1, memory: '16MB', cp: { sessionTtlMs: 1500 }, cluster: { host: '127.0.0.1', port: 0, seeds: [], secret: SECRET } });
  }, 60_000);
  afterAll(async () => {
    await grid?.close();
  });

  it("a lock taken in an attached thread is that thread's: the member cannot take it until the thread unlocks", async () => {
    let release: () => void = () => undefined;
    const go = new Promise<void>((r) => (release = r));
    const w = inWorker(
      grid,
      `const l = grid.cp.lock('a');
       const token = await l.lock();
       post({ token });
       await new Promise((r) => require('node:worker_threads').parentPort.once('message', r));
       await l.unlock();
       return token;`,
      () => release(),
    );
    await go;
    const main = grid.cp.lock('a');
    expect(await main.tryLock()).toBeUndefined(); // held by the worker's session
    expect(await main.isLocked()).toBe(true);
    await expect(main.unlock()).rejects.toMatchObject({ code: 'GRID_ERR_LOCK_NOT_HELD' }); // not the member's to release
    w.worker.postMessage('unlock');
    const wtoken = (await w.done) as number;
    const t = await main.tryLock({ timeoutMs: 5000 });
    expect(t).toBeGreaterThan(wtoken); // fencing tokens keep increasing across clients
    await main.unlock();
  }, 60_000);

  it('grid.cp.session() in an attached thread: two sessions of the thread exclude each other, and close() passes the lock on', async () => {
    const w = inWorker(
      grid,
      `const a = grid.cp.session();
       const b = grid.cp.session();
       const t1 = await a.lock('sa').lock();
       const tried = await b.lock('sa').tryLock();
       let unlockCode;
       try { await b.lock('sa').unlock(); } catch (e) { unlockCode = e.code; }
       const waiting = b.lock('sa').lock();
       await new Promise((r) => setTimeout(r, 100));
       await a.close();
       const t2 = await waiting;
       let afterClose;
       try { await a.lock('sa').tryLock(); } catch (e) { afterClose = e.code; }
       await b.lock('sa').unlock();
       await b.close();
       return { t1, tried: tried ?? null, unlockCode, t2, afterClose };`,
    );
    const r = (await w.done) as { t1: number; tried: number | null; unlockCode: string; t2: number; afterClose: string };
    expect(r.tried).toBe(null);
    expect(r.unlockCode).toBe('GRID_ERR_LOCK_NOT_HELD');
    expect(r.t2).toBeGreaterThan(r.t1);
    expect(r.afterClose).toBe('GRID_ERR_CP_SESSION');
    expect(await grid.cp.lock('sa').isLocked()).toBe(false);
  }, 60_000);

  it('atomicLong: 2 attached threads × 200 and the member × 200 incrementAndGet give exactly 600, every value distinct', async () => {
    const body = `const n = grid.cp.atomicLong('count'); const seen = []; for (let i = 0; i < 200; i++) seen.push(String(await n.incrementAndGet())); return seen;`;
    const a = inWorker(grid, body);
    const b = inWorker(grid, body);
    const n = grid.cp.atomicLong('count');
    const mine: string[] = [];
    for (let i = 0; i < 200; i++) mine.push(String(await n.incrementAndGet()));
    const all = [...((await a.done) as string[]), ...((await b.done) as string[]), ...mine];
    expect(new Set(all).size).toBe(600);
    expect(await n.get()).toBe(600n);
  }, 60_000);

  it("a thread terminated while holding a lock loses it once its session's TTL passes", async () => {
    let locked: () => void = () => undefined;
    const got = new Promise<void>((r) => (locked = r));
    const w = inWorker(grid, `await grid.cp.lock('dead').lock(); post('locked'); await new Promise(() => undefined);`, () => locked());
    w.done.catch(() => undefined);
    await got;
    const main = grid.cp.lock('dead');
    expect(await main.tryLock()).toBeUndefined();
    await w.worker.terminate();
    const t0 = Date.now();
    const t = await main.tryLock({ timeoutMs: 10_000 });
    expect(t).toBeGreaterThan(0);
    const waited = Date.now() - t0;
    expect(waited).toBeLessThan(9_000);
    console.log(`lock of a terminated attached thread released after ${waited} ms (session TTL 1500 ms)`);
    await main.unlock();
  }, 60_000);
});
