// setSync / deleteSync (issue 12): synchronous writes of keys held in this process, with the
// contract of getSync — typed errors as set() and delete(), a bounded synchronous wait for a busy
// partition, and GRID_ERR_UNSUPPORTED in a cluster, where every write is routed and replicated.
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrid, GridClosedError, InvalidArgumentError, KeyTooLargeError, ValueTooLargeError } from '../dist/index.js';
import type { Grid } from '../dist/index.js';

const OPS = new URL('./fixtures/worker-ops.mjs', import.meta.url);
const HOLD = new URL('./fixtures/hold-lock.mjs', import.meta.url);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('setSync and deleteSync', () => {
  let grid: Grid;
  beforeAll(async () => {
    grid = await createGrid({ workers: 2, memory: '32MB' });
  });
  afterAll(async () => {
    await grid.close();
  });

  it('setSync stores at once: getSync, get and another map object of the same name see the value', async () => {
    const m = grid.map<unknown>('sync-basic');
    expect(m.setSync('a', 'one')).toBeUndefined();
    expect(m.getSync('a')).toBe('one');
    expect(await m.get('a')).toBe('one');
    m.setSync('n', 42);
    m.setSync('o', { deep: [1, 2, 3] });
    m.setSync('b', new Uint8Array([1, 2, 3]));
    expect(m.getSync('n')).toBe(42);
    expect(m.getSync('o')).toEqual({ deep: [1, 2, 3] });
    expect(new Uint8Array(m.getSync('b') as Uint8Array)).toEqual(new Uint8Array([1, 2, 3]));
    expect(await m.size()).toBe(4);
  });

  it('a memoized value is replaced by the next setSync of the key, and gone after deleteSync', () => {
    const m = grid.map<string>('sync-memo');
    m.setSync('k', 'v1');
    expect(m.getSync('k')).toBe('v1');
    expect(m.getSync('k')).toBe('v1'); // memoized now
    m.setSync('k', 'v2'); // same size: rewritten in place, only the version moves
    expect(m.getSync('k')).toBe('v2');
    m.setSync('k', 'a longer value than before');
    expect(m.getSync('k')).toBe('a longer value than before');
    expect(m.deleteSync('k')).toBe(true);
    expect(m.getSync('k')).toBeUndefined();
    expect(m.deleteSync('k')).toBe(false);
  });

  it('setSync applies a ttl (option, then the map default) and deleteSync reports an expired key as absent', async () => {
    const m = grid.map<string>('sync-ttl');
    m.setSync('short', 'x', { ttl: 40 });
    m.setSync('forever', 'y');
    const left = await m.ttl('short');
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(40);
    expect(await m.ttl('forever')).toBeUndefined();
    const d = grid.map<string>('sync-ttl', { ttl: 60_000 });
    d.setSync('dflt', 'z');
    expect(await d.ttl('dflt')).toBeGreaterThan(50_000);
    await sleep(80);
    expect(m.getSync('short')).toBeUndefined();
    m.setSync('short2', 'x', { ttl: 30 });
    await sleep(60);
    expect(m.deleteSync('short2')).toBe(false);
  });

  it('refuses bad keys, values and ttls with the same typed errors as set(), writing nothing', async () => {
    const m = grid.map<unknown>('sync-bad');
    expect(() => m.setSync(7 as unknown as string, 'v')).toThrow(InvalidArgumentError);
    expect(() => m.setSync('k', undefined)).toThrow(InvalidArgumentError);
    expect(() => m.setSync('k', 'v', { ttl: -1 })).toThrow(InvalidArgumentError);
    expect(() => m.setSync('x'.repeat(100_000), 'v')).toThrow(KeyTooLargeError);
    expect(() => m.setSync('k', 'v'.repeat(64 * 1024 * 1024))).toThrow(ValueTooLargeError);
    expect(() => m.deleteSync(null as unknown as string)).toThrow(InvalidArgumentError);
    expect(await m.size()).toBe(0);
  });

  it('from a worker thread: setSync and deleteSync there are seen by the main thread', async () => {
    const w = new Worker(OPS, { workerData: { handle: grid.handle, job: 'syncWrites', args: { map: 'sync-worker', n: 500 } } });
    const result = await new Promise<unknown>((resolve, reject) => {
      w.on('message', (m) => 'result' in m && resolve(m.result));
      w.once('error', reject);
    });
    expect(result).toEqual({ set: 500, deleted: 250 });
    const m = grid.map<string>('sync-worker');
    for (let i = 0; i < 500; i++) expect(m.getSync(`w${i}`)).toBe(i % 2 === 0 ? undefined : `v${i}`);
  });

  it('waits out another thread holding the partition, and gives up with GRID_ERR_LOCK_TIMEOUT on one that never lets go', async () => {
    const m = grid.map<string>('sync-held');
    const hold = async (key: string, holdMs: number, write: () => unknown) => {
      const flag = new SharedArrayBuffer(8);
      const w = new Worker(HOLD, { workerData: { handle: grid.handle, key, mapId: m.id, holdMs, flag } });
      const exited = new Promise<number>((r) => w.once('exit', r));
      if (Atomics.wait(new Int32Array(flag), 0, 0, 10_000) === 'timed-out') throw new Error('holder never started');
      let out: unknown;
      try {
        out = write();
      } catch (err) {
        out = err;
      }
      expect(await exited).toBe(0);
      return out;
    };
    m.setSync('short', 'before');
    expect(await hold('short', 60, () => m.setSync('short', 'after'))).toBeUndefined();
    expect(m.getSync('short')).toBe('after');
    expect(await hold('short', 60, () => m.deleteSync('short'))).toBe(true);
    m.setSync('long', 'kept');
    const err = (await hold('long', 1500, () => m.setSync('long', 'lost'))) as { code?: string };
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe('GRID_ERR_LOCK_TIMEOUT');
    expect(m.getSync('long')).toBe('kept');
    const err2 = (await hold('long', 1500, () => m.deleteSync('long'))) as { code?: string };
    expect(err2.code).toBe('GRID_ERR_LOCK_TIMEOUT');
    expect(m.getSync('long')).toBe('kept');
  });

  it('a closed grid refuses both with GRID_ERR_CLOSED', async () => {
    const g = await createGrid({ workers: 1, memory: '16MB' });
    const m = g.map<string>('c');
    m.setSync('k', 'v');
    await g.close();
    expect(() => m.setSync('k', 'w')).toThrow(GridClosedError);
    expect(() => m.deleteSync('k')).toThrow(GridClosedError);
  });
});

describe('setSync and deleteSync in a cluster member', () => {
  it('throw GRID_ERR_UNSUPPORTED, even for a key whose primary is this member, and write nothing', { timeout: 60_000 }, async () => {
    const g = await createGrid({ workers: 1, memory: '32MB', cluster: { host: '127.0.0.1', port: 0, secret: 'sync-writes-test-secret-0123456789' } });
    try {
      const m = g.map<string>('routed');
      await m.set('k', 'v');
      expect(m.getSync('k')).toBe('v'); // the only member: every primary is here
      let err: { code?: string } | undefined;
      try {
        m.setSync('k', 'w');
      } catch (e) {
        err = e as { code?: string };
      }
      expect(err?.code).toBe('GRID_ERR_UNSUPPORTED');
      err = undefined;
      try {
        m.deleteSync('k');
      } catch (e) {
        err = e as { code?: string };
      }
      expect(err?.code).toBe('GRID_ERR_UNSUPPORTED');
      expect(await m.get('k')).toBe('v');
    } finally {
      await g.close();
    }
  });
});
