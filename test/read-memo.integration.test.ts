// The per-thread read memo (src/map.ts fromMemo/remember): a repeated get may return the value
// decoded by an earlier get, but only while the entry's slot, offset, version and expiry are
// unchanged. These tests try to make it serve a stale value: same-thread writes of every kind,
// expiry, eviction, and another thread publishing new versions while this thread reads.
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrid } from '../dist/index.js';
import type { Grid, GridMap } from '../dist/index.js';
import { P_LOCK, P_SEQ } from '../dist/storage/layout.js';
import type { ShardStore } from '../dist/storage/store.js';
import { tryLock, unlock } from '../dist/sync/mutex.js';

const OPS = new URL('./fixtures/worker-ops.mjs', import.meta.url);
const HOLD = new URL('./fixtures/hold-lock.mjs', import.meta.url);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Partition of `key` in map `m`, and a way to read and force its seqlock value (P_SEQ). */
function seqlockOf<V>(m: GridMap<V>, key: string) {
  const st = (m as unknown as { store: ShardStore }).store;
  st.setKey(key, m.id);
  const p = st.kpart;
  const li = st.lockIndex(p);
  const at = li + (P_SEQ - P_LOCK);
  return {
    p,
    read: () => Atomics.load(st.ci, at),
    async set(v: number) {
      // a virtual node may hold the lock for a moment (expiry, eviction)
      while (!tryLock(st.ci, li)) await sleep(1);
      Atomics.store(st.ci, at, v);
      unlock(st.ci, li);
    },
  };
}

describe('per-thread read memo', () => {
  let grid: Grid;
  beforeAll(async () => {
    grid = await createGrid({ workers: 2, memory: '32MB' });
  });
  afterAll(async () => {
    await grid.close();
  });

  it('returns the same decoded object while the entry is unchanged, a fresh one after any write', async () => {
    const m = grid.map<{ n: number; s: string }>('memo-id');
    await m.set('k', { n: 1, s: 'abc' });
    const a = m.getSync('k');
    expect(a).toEqual({ n: 1, s: 'abc' });
    expect(m.getSync('k')).toBe(a);
    expect(await m.get('k')).toBe(a);
    // Same encoded size, so the store overwrites the record in place: only the version differs.
    await m.set('k', { n: 2, s: 'abd' });
    const b = m.getSync('k');
    expect(b).toEqual({ n: 2, s: 'abd' });
    expect(b).not.toBe(a);
    // Writing the identical value still bumps the version: a new object comes back.
    await m.set('k', { n: 2, s: 'abd' });
    expect(m.getSync('k')).not.toBe(b);
    expect(m.getSync('k')).toEqual({ n: 2, s: 'abd' });
  });

  it('with cacheValues: false every get decodes a new object', async () => {
    const m = grid.map<{ n: number }>('memo-off', { cacheValues: false });
    await m.set('k', { n: 1 });
    const a = m.getSync('k');
    const b = m.getSync('k');
    expect(a).toEqual({ n: 1 });
    expect(b).toEqual({ n: 1 });
    expect(b).not.toBe(a);
  });

  it('never serves a memoized value after delete, clear, compareAndSet, increment, setMany or expiry', async () => {
    const m = grid.map<unknown>('memo-writes');
    await m.set('d', 'gone soon');
    expect(m.getSync('d')).toBe('gone soon');
    expect(await m.delete('d')).toBe(true);
    expect(m.getSync('d')).toBeUndefined();

    await m.set('c', 'before');
    expect(m.getSync('c')).toBe('before');
    await m.clear();
    expect(m.getSync('c')).toBeUndefined();

    await m.set('cas', 'aaaa');
    expect(m.getSync('cas')).toBe('aaaa');
    expect(await m.compareAndSet('cas', 'aaaa', 'bbbb')).toBe(true);
    expect(m.getSync('cas')).toBe('bbbb');

    await m.set('n', 41);
    expect(m.getSync('n')).toBe(41);
    expect(await m.increment('n', 1)).toBe(42);
    expect(m.getSync('n')).toBe(42);

    await m.set('many', 'one');
    expect(m.getSync('many')).toBe('one');
    await m.setMany([['many', 'two'], ['other', 'x']]);
    expect(m.getSync('many')).toBe('two');

    await m.set('t', { short: true }, { ttl: 40 });
    expect(m.getSync('t')).toEqual({ short: true });
    await sleep(80);
    expect(m.getSync('t')).toBeUndefined();
    expect(await m.get('t')).toBeUndefined();
  });

  it('a key deleted and a different key written into the freed record is not confused with it', async () => {
    const m = grid.map<string>('memo-reuse');
    for (let round = 0; round < 200; round++) {
      await m.set('a', `value-a-${round % 10}`);
      expect(m.getSync('a')).toBe(`value-a-${round % 10}`);
      await m.delete('a');
      // Same sizes: the allocator hands the freed record straight back out.
      await m.set('b', `value-b-${round % 10}`);
      expect(m.getSync('a')).toBeUndefined();
      expect(m.getSync('b')).toBe(`value-b-${round % 10}`);
      await m.delete('b');
    }
  });

  it('reads stay lock-free once the partition seqlock has wrapped to negative values', async () => {
    // P_SEQ is an Int32 that Atomics.add wraps after 2^31 writes to a partition. A negative even
    // value is a quiet partition, not a writer: a read that took it for one fell back to the lock
    // every time (visible here as P_SEQ moving: a read under the lock runs beginWrite/endWrite).
    const m = grid.map<string>('seq-wrap');
    const seq = seqlockOf(m, 'w');
    await m.set('w', 'before');
    await seq.set(0x7ffffffe);
    await m.set('w', 'after'); // 0x7ffffffe + 2 wraps to -2^31
    const wrapped = seq.read();
    expect(wrapped).toBeLessThan(0);
    expect(m.getSync('w')).toBe('after');
    expect(m.getSync('w')).toBe('after');
    expect(await m.get('w')).toBe('after');
    expect(await m.has('w')).toBe(true);
    expect(await m.ttl('w')).toBeUndefined();
    expect(seq.read()).toBe(wrapped);
  });

  it('a memo checked by the partition seqlock alone is not fooled by negative or wrapping seqlock values', async () => {
    // A memo is served without looking at the record while P_SEQ still holds the value it was
    // validated at. P_SEQ is an Int32 that Atomics.add wraps to negative values after 2^31
    // writes, so a "never validated" marker such as -2 could equal a real P_SEQ; check memos
    // created at -4 (a write then lands on -2) and across the 2^31 wrap.
    const m = grid.map<string>('memo-seq');
    const seq = seqlockOf(m, 'w');
    // Another key of the same partition: its writes move P_SEQ but must not drop 'w''s memo value.
    let other = '';
    for (let i = 0; other === ''; i++) if (seqlockOf(m, `o${i}`).p === seq.p) other = `o${i}`;
    for (const start of [-4, 0x7ffffffc, -6]) {
      await m.delete('w');
      await m.set('w', `a${start}`);
      await seq.set(start);
      expect(m.getSync('w')).toBe(`a${start}`); // memo (re)made by this read, at seq start
      await m.set('w', `b${start}`); // start + 2: -2 for start -4
      expect(m.getSync('w')).toBe(`b${start}`);
      expect(m.getSync('w')).toBe(`b${start}`);
      await m.set(other, 'x'); // start + 4: wraps to -2^31 for 0x7ffffffc
      if (start > 0) expect(seq.read()).toBeLessThan(0);
      expect(m.getSync('w')).toBe(`b${start}`);
      expect(m.getSync('w')).toBe(`b${start}`);
      await m.set('w', `c${start}`);
      expect(m.getSync('w')).toBe(`c${start}`);
      expect(m.getSync('w')).toBe(`c${start}`);
    }
  });

  it('bounds itself: 40,000 distinct keys read once leave the map correct and the memo capped', async () => {
    const m = grid.map<string>('memo-many');
    const batch: Array<[string, string]> = [];
    for (let i = 0; i < 40_000; i++) batch.push([`k${i}`, `v${i}`]);
    await m.setMany(batch);
    for (let i = 0; i < 40_000; i++) expect(m.getSync(`k${i}`)).toBe(`v${i}`);
    const memo = (m as unknown as { memos: Map<string, unknown> }).memos;
    expect(memo.size).toBeGreaterThan(0);
    expect(memo.size).toBeLessThanOrEqual(16_384);
    // The oldest memos were dropped, the values are still right.
    for (let i = 0; i < 40_000; i += 997) expect(m.getSync(`k${i}`)).toBe(`v${i}`);
  });

  it('once full, admits a key only on a second read and keeps what is read again; a key dropped and made again is held', async () => {
    // (Until issue 12 this test checked FIFO eviction through a queue of keys; the memo is now
    // src/memo.ts: CLOCK eviction with doorkeeper admission, unit-tested in test/memo.test.ts.)
    const m = grid.map<string>('memo-queue');
    const internals = m as unknown as { memos: { size: number; has(k: string): boolean } };
    const FULL = 16_384;
    const batch: Array<[string, string]> = [];
    for (let i = 0; i < FULL; i++) batch.push([`a${i}`, `v${i}`]);
    await m.setMany(batch);
    for (let i = 0; i < FULL; i++) expect(m.getSync(`a${i}`)).toBe(`v${i}`);
    expect(internals.memos.size).toBe(FULL);
    // a0 is deleted (its memo goes with the miss) and then made again: there is room for it
    await m.delete('a0');
    expect(m.getSync('a0')).toBeUndefined();
    expect(internals.memos.has('a0')).toBe(false);
    await m.set('a0', 'again');
    expect(m.getSync('a0')).toBe('again');
    expect(internals.memos.size).toBe(FULL);
    // full: a key read once is not admitted (a scan must not churn the memo) ...
    await m.set('b0', 'b');
    expect(m.getSync('b0')).toBe('b');
    expect(internals.memos.has('b0')).toBe(false);
    // ... a key read again soon is, in place of one not read since the CLOCK hand passed
    for (let i = 1; i < 100; i++) m.getSync(`a${i}`); // read again: these survive the next eviction
    expect(m.getSync('b0')).toBe('b');
    expect(internals.memos.has('b0')).toBe(true);
    expect(internals.memos.size).toBe(FULL);
    for (let i = 1; i < 100; i++) expect(internals.memos.has(`a${i}`)).toBe(true);
    // Drop and remake one key many times while the memo stays full: it stays bounded and right.
    for (let round = 0; round < FULL + FULL / 4; round++) {
      await m.delete('churn');
      expect(m.getSync('churn')).toBeUndefined();
      await m.set('churn', `c${round}`);
      expect(m.getSync('churn')).toBe(`c${round}`);
    }
    expect(internals.memos.size).toBeLessThanOrEqual(FULL);
    // Whatever is memoized is still right.
    for (let i = 1; i < FULL; i += 499) expect(m.getSync(`a${i}`)).toBe(`v${i}`);
    expect(m.getSync('a0')).toBe('again');
  });

  it('stays within its byte bound under values of mixed sizes', async () => {
    const m = grid.map<string>('memo-bytes');
    const memos = (m as unknown as { memos: Map<string, { value: unknown }> }).memos;
    const LIMIT = 16 * 1024 * 1024;
    const sizes = [100, 3_000, 20_000, 60_000, 700];
    const held = () => {
      let bytes = 0;
      for (const [k, memo] of memos) bytes += k.length + Buffer.byteLength(memo.value as string);
      return bytes;
    };
    let most = 0;
    // ~60 MB of distinct values through a 32 MB grid: each key is written, then read twice (a
    // memo may admit a large value only on its second read).
    for (let i = 0; i < 720; i++) {
      const key = `mixed-${i}`;
      const value = String(i % 10).repeat(sizes[i % sizes.length]);
      await m.set(key, value);
      expect(m.getSync(key)).toBe(value);
      expect(m.getSync(key)).toBe(value);
      if (i % 40 === 39) {
        const bytes = held();
        expect(bytes).toBeLessThanOrEqual(LIMIT);
        most = Math.max(most, bytes);
      }
    }
    // the bound was reached (so it was what kept the memo in check), never passed
    expect(most).toBeGreaterThan(LIMIT / 2);
    for (let i = 700; i < 720; i++) expect(m.getSync(`mixed-${i}`)).toBe(String(i % 10).repeat(sizes[i % sizes.length]));
  });

  it('memoizes a value over 1 KB from its second read, and not while a scan larger than the memo goes round', async () => {
    const big = await createGrid({ workers: 1, memory: '64MB' });
    try {
      const m = big.map<{ i: number; pad: string }>('memo-large');
      const memos = (m as unknown as { memos: Map<string, unknown> }).memos;
      const obj = (i: number, n: number) => ({ i, pad: 'x'.repeat(n) });
      // small: memoized at once
      await m.set('small', obj(0, 100));
      const s1 = m.getSync('small');
      expect(m.getSync('small')).toBe(s1);
      // large: the first read decodes and only notes the key; the second is memoized
      await m.set('large', obj(1, 2000));
      const l1 = m.getSync('large');
      const l2 = m.getSync('large');
      expect(l2).toEqual(obj(1, 2000));
      expect(l2).not.toBe(l1);
      expect(m.getSync('large')).toBe(l2);
      // an update of a memoized large value stays memoized (no second-read wait)
      await m.set('large', obj(2, 2000));
      const l3 = m.getSync('large');
      expect(l3).toEqual(obj(2, 2000));
      expect(m.getSync('large')).toBe(l3);
      // 5,000 × 4 KB = ~20 MB read round-robin, twice: more than the memo's 16 MiB, so no value
      // of the scan is admitted (each would be dropped before it is read again)
      const N = 5_000;
      const batch: Array<[string, { i: number; pad: string }]> = [];
      for (let i = 0; i < N; i++) batch.push([`scan-${i}`, obj(i, 4000)]);
      await m.setMany(batch);
      const before = memos.size;
      for (let round = 0; round < 2; round++) {
        for (let i = 0; i < N; i++) expect(m.getSync(`scan-${i}`)?.i).toBe(i);
      }
      expect(memos.size).toBe(before);
      // a few of them read again and again are memoized
      for (let r = 0; r < 3; r++) for (let i = 0; i < 10; i++) m.getSync(`scan-${i}`);
      expect(memos.size).toBe(before + 10);
      expect(m.getSync('scan-3')).toBe(m.getSync('scan-3'));
    } finally {
      await big.close();
    }
  });

  it('getSync waits out a writer holding the partition, and gives up with a typed error on one that never lets go', async () => {
    const m = grid.map<string>('memo-held');
    const hold = async (key: string, holdMs: number, read: () => unknown) => {
      const flag = new SharedArrayBuffer(8);
      const w = new Worker(HOLD, { workerData: { handle: grid.handle, key, mapId: m.id, holdMs, flag } });
      const exited = new Promise<number>((r) => w.once('exit', r));
      // Block until the worker holds the lock (seqlock odd), then read from this thread.
      if (Atomics.wait(new Int32Array(flag), 0, 0, 5000) === 'timed-out') throw new Error('holder never started');
      let out: unknown;
      try {
        out = read();
      } catch (err) {
        out = err;
      }
      expect(await exited).toBe(0);
      return out;
    };
    await m.set('held-short', 'short-value');
    // Not memoized yet, so the read has to go to shared memory while the lock is held for 60 ms.
    expect(await hold('held-short', 60, () => m.getSync('held-short'))).toBe('short-value');
    await m.set('held-long', 'long-value');
    const err = (await hold('held-long', 1500, () => m.getSync('held-long'))) as { code?: string };
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe('GRID_ERR_LOCK_TIMEOUT');
    // Nothing lost, and the memo now fills as usual.
    expect(m.getSync('held-long')).toBe('long-value');
    expect(m.getSync('held-short')).toBe('short-value');
  });

  it.each(['object', 'string', 'number'])(
    'never returns a %s older than one another thread has already published',
    async (kind) => {
      const m = grid.map<unknown>('memo-race');
      const key = `race-${kind}`;
      const until = new SharedArrayBuffer(8);
      const flag = new Int32Array(until);
      const count = 20_000;
      const num = (v: unknown): number =>
        typeof v === 'number' ? v : typeof v === 'string' ? Number(v.slice(1)) : (v as { i: number }).i;
      const worker = new Worker(OPS, { workerData: { handle: grid.handle, job: 'publish', args: { map: 'memo-race', key, count, kind, until } } });
      // Done once the worker has exited (it closes its attached grid after its result), so the
      // grid's own close in afterAll never races a worker still detaching.
      const done = new Promise<void>((resolve, reject) => {
        let result = false;
        worker.on('message', (msg) => {
          if ('result' in msg) result = true;
        });
        worker.once('error', reject);
        worker.once('exit', (code) => (result ? resolve() : reject(new Error(`publisher exited with ${code} before its result`))));
      });
      let reads = 0;
      let stale = 0;
      let last = 0;
      let backwards = 0;
      let finished = false;
      void done.then(() => (finished = true));
      while (!finished || Atomics.load(flag, 1) < count) {
        const published = Atomics.load(flag, 1);
        const v = m.getSync(key);
        if (published > 0) {
          const n = num(v);
          if (!(n >= published)) stale++;
          if (n < last) backwards++;
          last = n;
        }
        reads++;
        // Let the worker's messages in now and then without losing read pressure.
        if ((reads & 4095) === 0) await new Promise((r) => setImmediate(r));
      }
      await done;
      expect(num(m.getSync(key))).toBe(count);
      expect(stale).toBe(0);
      expect(backwards).toBe(0);
      expect(reads).toBeGreaterThan(1000);
    },
    60_000,
  );
});
