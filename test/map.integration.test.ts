import { spawn } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrid, GridClosedError, KeyTooLargeError, ValueTooLargeError, UnencodableValueError, InvalidArgumentError, WrongTypeError, InvalidOptionError, UnsupportedError } from '../dist/index.js';
import type { Grid } from '../dist/index.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('map operations on one process', () => {
  let grid: Grid;
  beforeAll(async () => {
    grid = await createGrid({ workers: 2, memory: '32MB' });
  });
  afterAll(async () => {
    await grid.close();
  });

  it('set then get returns each value type as stored', async () => {
    const m = grid.map<unknown>('types');
    const bytes = Buffer.from([0, 1, 2, 255]);
    const values: Array<[string, unknown]> = [
      ['s', 'hello'],
      ['empty', ''],
      ['unicode', 'zażółć gęślą jaźń 🚀'],
      ['n', 42.5],
      ['neg', -0.25],
      ['big', Number.MAX_SAFE_INTEGER],
      ['b', bytes],
      ['obj', { name: 'Ada', tags: ['x', 'y'], nested: { n: 1 } }],
      ['arr', [1, 'two', null, true]],
      ['null', null],
      ['bool', false],
    ];
    for (const [k, v] of values) await m.set(k, v);
    for (const [k, v] of values) expect(await m.get(k)).toEqual(v);
    expect(Buffer.isBuffer(await m.get('b'))).toBe(true);
    expect(await m.get('absent')).toBeUndefined();
  });

  it('overwrites replace the value and keep one entry', async () => {
    const m = grid.map<string>('overwrite');
    await m.set('k', 'a');
    await m.set('k', 'b'.repeat(1000));
    await m.set('k', 'c');
    expect(await m.get('k')).toBe('c');
    expect(await m.size()).toBe(1);
  });

  it('same-size overwrites (rewritten in place) change type, value and expiry', async () => {
    const m = grid.map<unknown>('in-place');
    await m.set('k', 'abcdefgh'); // 8 bytes, as a number
    expect(await m.get('k')).toBe('abcdefgh');
    await m.set('k', 42.5);
    expect(await m.get('k')).toBe(42.5);
    await m.set('k', 'zyxwvuts', { ttl: 60_000 });
    expect(await m.get('k')).toBe('zyxwvuts');
    expect(await m.ttl('k')).toBeGreaterThan(50_000);
    await m.set('k', 'no-ttl!!');
    expect(await m.ttl('k')).toBeUndefined();
    await m.set('k', 'short', { ttl: 30 });
    await sleep(60);
    expect(await m.get('k')).toBeUndefined();
    expect(await m.has('k')).toBe(false);
  });

  it('has and delete report presence', async () => {
    const m = grid.map<string>('hasdel');
    await m.set('x', '1');
    expect(await m.has('x')).toBe(true);
    expect(await m.delete('x')).toBe(true);
    expect(await m.has('x')).toBe(false);
    expect(await m.delete('x')).toBe(false);
    expect(await m.get('x')).toBeUndefined();
  });

  it('getMany returns values in key order with undefined for misses', async () => {
    const m = grid.map<number>('many');
    await m.setMany([['a', 1], ['b', 2], ['c', 3]]);
    expect(await m.getMany(['c', 'zz', 'a', 'b'])).toEqual([3, undefined, 1, 2]);
  });

  it('setMany stores nothing when one entry is invalid', async () => {
    const m = grid.map<string>('many-bad');
    await expect(m.setMany([['ok', 'v'], ['bad', undefined as unknown as string]])).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await m.has('ok')).toBe(false);
  });

  it('setMany stores every value type and key kind, the last of duplicate keys winning', async () => {
    const m = grid.map<unknown>('many-kinds');
    const bytes = new Uint8Array([9, 8, 7]);
    const obj = { a: 1, list: [1, 2] };
    const entries: Array<[string, unknown]> = [];
    for (let i = 0; i < 2000; i++) {
      const kind = i % 5;
      const key = kind === 4 ? `ключ-${i}-🔑` : `k${i}`; // every fifth key not ASCII
      entries.push([key, kind === 0 ? `s${i}` : kind === 1 ? i : kind === 2 ? { ...obj, i } : kind === 3 ? bytes : `ü${i}`]);
    }
    // duplicates, spread through the batch: the last one is the value
    entries.push(['k0', 'first'], ['ключ-4-🔑', 1], ['k0', 'second'], ['ключ-4-🔑', 2], ['k1', { last: true }]);
    await m.setMany(entries);
    bytes[0] = 0; // a byte value is copied when it is stored
    obj.a = 2; // and an object encoded
    expect(await m.size()).toBe(2000);
    expect(await m.get('k0')).toBe('second');
    expect(await m.get('ключ-4-🔑')).toBe(2);
    expect(await m.get('k1')).toEqual({ last: true });
    for (let i = 2; i < 2000; i++) {
      const [key, value] = entries[i];
      if (key === 'ключ-4-🔑') continue;
      const got = await m.get(key);
      if (value instanceof Uint8Array) expect([...(got as Uint8Array)]).toEqual([9, 8, 7]);
      else if (typeof value === 'object') expect(got).toEqual({ a: 1, list: [1, 2], i });
      else expect(got).toBe(value);
    }
  });

  it('setMany waits for a partition another thread holds, and writes what it validated', async () => {
    const m = grid.map<string>('many-held');
    const flag = new SharedArrayBuffer(8);
    const f = new Int32Array(flag);
    // holds the lock of 'held''s partition until told (flag[1]), at most 10 s
    const w = new Worker(new URL('./fixtures/hold-lock.mjs', import.meta.url), { workerData: { handle: grid.handle, key: 'held', mapId: m.id, holdMs: 10_000, flag } });
    const exited = new Promise<number>((r) => w.once('exit', r));
    if (Atomics.wait(f, 0, 0, 5000) === 'timed-out') throw new Error('holder never started');
    const entries: Array<[string, string]> = [];
    for (let i = 0; i < 300; i++) entries.push([`h${i}`, `v${i}`]);
    entries.push(['held', 'written']);
    let settled = false;
    const done = m.setMany(entries).finally(() => (settled = true));
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false); // suspended on the held lock
    for (const e of entries) e[1] = 'changed'; // changes nothing now: validated and kept
    Atomics.store(f, 1, 1);
    Atomics.notify(f, 1);
    await done;
    expect(await exited).toBe(0);
    expect(await m.get('held')).toBe('written');
    for (let i = 0; i < 300; i++) expect(await m.get(`h${i}`)).toBe(`v${i}`);
  });

  it('setIfAbsent stores only when the key is absent', async () => {
    const m = grid.map<string>('ifabsent');
    expect(await m.setIfAbsent('k', 'first')).toBe(true);
    expect(await m.setIfAbsent('k', 'second')).toBe(false);
    expect(await m.get('k')).toBe('first');
  });

  it('compareAndSet swaps only when the current value matches', async () => {
    const m = grid.map<unknown>('cas');
    expect(await m.compareAndSet('k', undefined, { v: 1 })).toBe(true);
    expect(await m.compareAndSet('k', { v: 2 }, { v: 3 })).toBe(false);
    expect(await m.get('k')).toEqual({ v: 1 });
    expect(await m.compareAndSet('k', { v: 1 }, 'str')).toBe(true);
    expect(await m.compareAndSet('k', 'str', 7)).toBe(true);
    expect(await m.compareAndSet('k', 8, 9)).toBe(false);
    expect(await m.compareAndSet('k', 7, 9)).toBe(true);
    expect(await m.get('k')).toBe(9);
    expect(await m.compareAndSet('k', undefined, 1)).toBe(false);
  });

  it('increment creates the key at 0 and adds atomically', async () => {
    const m = grid.map<unknown>('incr');
    expect(await m.increment('hits')).toBe(1);
    expect(await m.increment('hits', 5)).toBe(6);
    expect(await m.increment('hits', -2.5)).toBe(3.5);
    expect(await m.get('hits')).toBe(3.5);
    await m.set('str', 'abc');
    await expect(m.increment('str')).rejects.toBeInstanceOf(WrongTypeError);
    await expect(m.increment('hits', Number.NaN)).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  // A delta given as the string '1' (a query parameter, say) was refused with "delta must be a
  // finite number (got 1)": the message printed it as the number it is not.
  it('increment with a delta that is not a number says what it got', async () => {
    const m = grid.map<unknown>('incr-bad');
    const cases: Array<[unknown, string]> = [['1', "got the string '1'"], [1n, 'got the bigint 1n'], [null, 'got null'], [Number.NaN, 'got NaN'], [Infinity, 'got Infinity'], [{}, 'got an object']];
    for (const [delta, said] of cases) {
      await expect(m.increment('k', delta as number)).rejects.toThrow(`delta must be a finite number (${said})`);
    }
    expect(await m.has('k')).toBe(false);
  });

  it('an increment past the largest double is refused and leaves the value (it stored Infinity)', async () => {
    const m = grid.map<number>('incr-inf');
    await m.set('k', 1.7e308);
    await expect(m.increment('k', 1e308)).rejects.toThrow(expect.objectContaining({ code: 'GRID_ERR_INVALID_ARGUMENT', message: expect.stringContaining('would make it Infinity') }));
    expect(await m.get('k')).toBe(1.7e308);
    await m.set('n', -1.7e308);
    await expect(m.increment('n', -1e308)).rejects.toThrow(expect.objectContaining({ code: 'GRID_ERR_INVALID_ARGUMENT' }));
    expect(await m.get('n')).toBe(-1.7e308);
    expect(await m.increment('k', -0.7e308)).toBe(1e308);
  });

  it('named maps are separate namespaces over the same partitions', async () => {
    const a = grid.map<string>('ns-a');
    const b = grid.map<string>('ns-b');
    await a.set('k', 'in a');
    await b.set('k', 'in b');
    expect(await a.get('k')).toBe('in a');
    expect(await b.get('k')).toBe('in b');
    await a.delete('k');
    expect(await b.get('k')).toBe('in b');
    expect(await a.size()).toBe(0);
    expect(await b.size()).toBe(1);
  });

  it('size counts entries of the map across all partitions and clear empties only that map', async () => {
    const m = grid.map<number>('sized');
    const other = grid.map<number>('sized-other');
    for (let i = 0; i < 5000; i++) await m.set(`k${i}`, i);
    await other.set('keep', 1);
    expect(await m.size()).toBe(5000);
    await m.clear();
    expect(await m.size()).toBe(0);
    expect(await m.get('k1')).toBeUndefined();
    expect(await other.get('keep')).toBe(1);
  });

  it('entries() yields every entry exactly once', async () => {
    const m = grid.map<number>('iter');
    for (let i = 0; i < 3000; i++) await m.set(`k${i}`, i);
    const seen = new Map<string, number>();
    for await (const [k, v] of m.entries()) {
      expect(seen.has(k)).toBe(false);
      seen.set(k, v);
    }
    expect(seen.size).toBe(3000);
    for (let i = 0; i < 3000; i++) expect(seen.get(`k${i}`)).toBe(i);
  });

  it('ttl reports the remaining time, and undefined without expiry or key', async () => {
    const m = grid.map<string>('ttl');
    await m.set('t', 'v', { ttl: 10_000 });
    await m.set('forever', 'v');
    const left = (await m.ttl('t'))!;
    expect(left).toBeGreaterThan(9_000);
    expect(left).toBeLessThanOrEqual(10_000);
    expect(await m.ttl('forever')).toBeUndefined();
    expect(await m.ttl('absent')).toBeUndefined();
  });

  it('an expired entry is never returned', async () => {
    const m = grid.map<string>('expire');
    await m.set('short', 'v', { ttl: 30 });
    expect(await m.get('short')).toBe('v');
    await sleep(60);
    expect(await m.get('short')).toBeUndefined();
    expect(await m.has('short')).toBe(false);
    expect(await m.ttl('short')).toBeUndefined();
    expect(await m.setIfAbsent('short', 'again')).toBe(true);
  });

  it('a per-map default ttl applies when set gives none, and ttl: 0 overrides it', async () => {
    const m = grid.map<string>('default-ttl', { ttl: 40 });
    await m.set('a', 'v');
    await m.set('b', 'v', { ttl: 0 });
    await sleep(80);
    expect(await m.get('a')).toBeUndefined();
    expect(await m.get('b')).toBe('v');
  });

  it('virtual nodes expire entries nobody reads (active expiry)', async () => {
    const m = grid.map<string>('active-expiry');
    const before = grid.stats().expirations;
    for (let i = 0; i < 2000; i++) await m.set(`e${i}`, 'v', { ttl: 20 });
    const deadline = Date.now() + 10_000;
    while ((await m.size()) > 0 && Date.now() < deadline) await sleep(50);
    expect(await m.size()).toBe(0);
    expect(grid.stats().expirations - before).toBeGreaterThanOrEqual(2000);
  });

  it('rejects keys over maxKeyBytes and values over maxValueBytes with typed errors and stores nothing', async () => {
    const g = await createGrid({ workers: 1, memory: '16MB', maxKeyBytes: 64, maxValueBytes: 1024 });
    try {
      const m = g.map<unknown>('limits');
      const e1 = await m.set('k'.repeat(65), 'v').catch((e) => e);
      expect(e1).toBeInstanceOf(KeyTooLargeError);
      expect(e1.code).toBe('GRID_ERR_KEY_TOO_LARGE');
      const e2 = await m.set('k', 'v'.repeat(1025)).catch((e) => e);
      expect(e2).toBeInstanceOf(ValueTooLargeError);
      expect(e2.code).toBe('GRID_ERR_VALUE_TOO_LARGE');
      await expect(m.set('k', { big: 'x'.repeat(2000) })).rejects.toBeInstanceOf(ValueTooLargeError);
      await expect(m.get('é'.repeat(33))).rejects.toBeInstanceOf(KeyTooLargeError);
      expect(await m.size()).toBe(0);
      await m.set('k'.repeat(64), 'v'.repeat(1024));
      expect(await m.get('k'.repeat(64))).toBe('v'.repeat(1024));
    } finally {
      await g.close();
    }
  });

  it('rejects unencodable values and bad arguments with typed errors, leaving the entry unchanged', async () => {
    const m = grid.map<unknown>('bad-values');
    await m.set('k', 'original');
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    for (const bad of [() => 1, Symbol('s'), circular, { s: Symbol('nested') }]) {
      const e = await m.set('k', bad).catch((x) => x);
      expect(e).toBeInstanceOf(UnencodableValueError);
      expect(e.code).toBe('GRID_ERR_UNENCODABLE_VALUE');
    }
    // a bigint beyond 64 bits used to be refused too; msgpackr's moreTypes stores it
    await m.set('big', -(10n ** 30n));
    expect(await m.get('big')).toBe(-(10n ** 30n));
    await expect(m.set('k', undefined)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(m.set(42 as unknown as string, 'v')).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(m.set('k', 'v', { ttl: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(m.getMany('nope' as unknown as string[])).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await m.get('k')).toBe('original');
  });

  it('rejects bad and unknown options naming the option', async () => {
    await expect(createGrid({ workers: 0 })).rejects.toThrow(/options\.workers/);
    await expect(createGrid({ memory: 'lots' })).rejects.toThrow(/options\.memory/);
    await expect(createGrid({ memory: '4MB', partitions: 4000 })).rejects.toThrow(/options\.memory/);
    await expect(createGrid({ bogus: 1 } as never)).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(createGrid({ bogus: 1 } as never)).rejects.toThrow(/options\.bogus/);
    await expect(createGrid({ cluster: { port: 70000 } })).rejects.toThrow(/options\.cluster\.port/);
    await expect(createGrid({ workers: 1, cluster: {} })).rejects.toThrow(/options\.cluster\.secret/);
    expect(() => grid.map('x', { ttl: -5 })).toThrow(InvalidOptionError);
  });

  it('stats report entries, memory, hits, misses and per-partition figures', async () => {
    const m = grid.map<string>('stats');
    const s0 = grid.stats();
    await m.set('a', 'v');
    await m.get('a');
    await m.get('missing');
    const s = grid.stats();
    expect(s.hits - s0.hits).toBe(1);
    expect(s.misses - s0.misses).toBe(1);
    expect(s.entries).toBe(s.partitions.reduce((a, p) => a + p.entries, 0));
    expect(s.partitions).toHaveLength(271);
    expect(s.bytesUsed).toBeGreaterThan(0);
    expect(s.bytesUsed).toBeLessThanOrEqual(s.bytesLimit);
    expect(s.bytesLimit).toBe(32 * 1024 * 1024);
    expect(s.workers).toHaveLength(2);
    expect(s.workers.reduce((a, w) => a + w.partitions, 0)).toBe(271);
  });
});

describe('closing', () => {
  it('close() stops the grid and later calls fail with GRID_ERR_CLOSED', async () => {
    const g = await createGrid({ workers: 2, memory: '16MB' });
    const m = g.map<string>('c');
    await m.set('k', 'v');
    await g.close();
    await g.close(); // idempotent
    const e = await m.get('k').catch((x) => x);
    expect(e).toBeInstanceOf(GridClosedError);
    expect(e.code).toBe('GRID_ERR_CLOSED');
    await expect(m.set('k', 'v')).rejects.toBeInstanceOf(GridClosedError);
    expect(() => g.map('other')).toThrow(GridClosedError);
  });

  it('the process exits on its own after close(), with no handle left open', async () => {
    const script = `
      const { createGrid } = await import(${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)});
      const g = await createGrid({ workers: 2, memory: '16MB' });
      const m = g.map('x');
      await m.set('a', 'b', { ttl: 60000 });
      if (await m.get('a') !== 'b') process.exit(2);
      await g.close();
      console.log('closed');`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const [code, signal] = await new Promise<[number | null, string | null]>((r) => child.once('exit', (c, sig) => r([c, sig])));
    clearTimeout(killer);
    expect(signal).toBeNull(); // not killed: it exited by itself
    expect(code).toBe(0);
    expect(out.trim()).toBe('closed');
  });
});
