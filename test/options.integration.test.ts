// Options of writes and maps (issue 15): a number means { ttl }; unknown options and bad ttls are
// typed errors in every option-taking write; a map's options are registered by name for the
// whole grid, every thread included, and a conflicting second registration is refused.
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttachError, attachGrid, createGrid, InvalidArgumentError, InvalidOptionError, TooManyMapsError } from '../dist/index.js';
import type { Grid } from '../dist/index.js';

describe('options of writes', () => {
  let grid: Grid;
  beforeAll(async () => {
    grid = await createGrid({ workers: 1, partitions: 16, memory: '16MB' });
  });
  afterAll(async () => {
    await grid.close();
  });

  it('a number as the options of set, setSync, setIfAbsent and setMany is the ttl in ms', async () => {
    const m = grid.map('n');
    await m.set('a', 1, 60_000);
    m.setSync('b', 1, 60_000);
    expect(await m.setIfAbsent('c', 1, 60_000)).toBe(true);
    await m.setMany([['d', 1], ['e', 2]], 60_000);
    for (const k of ['a', 'b', 'c', 'd', 'e']) {
      const t = await m.ttl(k);
      expect(t, k).toBeGreaterThan(50_000);
      expect(t, k).toBeLessThanOrEqual(60_000);
    }
    await m.set('f', 1, 0); // 0: no expiry
    expect(await m.ttl('f')).toBeUndefined();
  });

  const writes: Array<[string, (m: ReturnType<Grid['map']>, o: unknown) => Promise<unknown>]> = [
    ['set', (m, o) => m.set('k', 'v', o as never)],
    ['setSync', async (m, o) => m.setSync('k', 'v', o as never)],
    ['setIfAbsent', (m, o) => m.setIfAbsent('k2', 'v', o as never)],
    ['setMany', (m, o) => m.setMany([['k3', 'v']], o as never)],
  ];
  const bad: Array<[string, unknown, RegExp]> = [
    ['a misspelt option', { tll: 1000 }, /options\.tll is not a known option/],
    ['a negative ttl', { ttl: -1 }, /options\.ttl must be a finite number/],
    ['a NaN ttl', { ttl: Number.NaN }, /options\.ttl/],
    ['an infinite ttl', { ttl: Infinity }, /options\.ttl/],
    ['a string ttl', { ttl: '1000' }, /options\.ttl/],
    ['a negative number', -5, /^ttl must be a finite number/],
    ['null', null, /options must be \{ ttl \} or a number/],
    ['a string', '1000', /options must be/],
    ['an array', [1000], /options must be/],
  ];
  for (const [method, write] of writes) {
    for (const [what, options, message] of bad) {
      it(`${method} with ${what} throws GRID_ERR_INVALID_ARGUMENT naming the option and writes nothing`, async () => {
        const m = grid.map('bad');
        await m.clear();
        const e = await write(m, options).catch((x: unknown) => x);
        expect(e).toBeInstanceOf(InvalidArgumentError);
        expect((e as InvalidArgumentError).code).toBe('GRID_ERR_INVALID_ARGUMENT');
        expect((e as Error).message).toMatch(message);
        expect(await m.size()).toBe(0);
      });
    }
  }
});

describe("a map's options, registered by name for the whole grid", () => {
  let grid: Grid;
  beforeAll(async () => {
    grid = await createGrid({ workers: 1, partitions: 16, memory: '16MB' });
  });
  afterAll(async () => {
    await grid.close();
  });

  it('a second handle of the name, in this thread or in an attached worker, gets the default ttl; a conflicting one is refused', async () => {
    const worker = new Worker(new URL('./fixtures/map-options-worker.mjs', import.meta.url), { workerData: { handle: grid.handle } });
    const msgs: unknown[] = [];
    const next = () => new Promise<unknown>((resolve, reject) => {
      if (msgs.length > 0) return resolve(msgs.shift());
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await next(); // the worker opened 'late' by name before any options were registered
    const users = grid.map('users', { ttl: 60_000 });
    grid.map('late', { ttl: 30_000 });
    expect(grid.map('users')).toBe(users);
    expect(grid.map('users', { ttl: 60_000 })).toBe(users); // the same options: fine
    expect(() => grid.map('users', { ttl: 1_000 })).toThrow(InvalidOptionError);
    expect(() => grid.map('users', { cacheValues: false })).toThrow(/registered with \{ ttl: 60000, cacheValues: true \}/);
    worker.postMessage('go');
    const r = (await next()) as { usersTtl: number; lateTtl: number; defaultTtl: number; conflict: string };
    expect(r.defaultTtl).toBe(60_000);
    expect(r.usersTtl).toBeGreaterThan(50_000);
    expect(r.usersTtl).toBeLessThanOrEqual(60_000);
    expect(r.lateTtl).toBeGreaterThan(20_000); // a handle opened before the registration follows it
    expect(r.lateTtl).toBeLessThanOrEqual(30_000);
    expect(r.conflict).toBe('GRID_ERR_INVALID_OPTION');
    const mine = await users.ttl('from-worker');
    expect(mine).toBeGreaterThan(0);
  });

  it('a map opened without options has no default ttl until some thread registers one', async () => {
    const m = grid.map('plain');
    await m.set('a', 1);
    expect(await m.ttl('a')).toBeUndefined();
    expect(m.defaultTtl).toBe(0);
    grid.map('plain', { ttl: 10_000 });
    await m.set('b', 1);
    expect(await m.ttl('b')).toBeGreaterThan(0);
  });
});

describe('a refused grid.map call takes none of the maxMaps slots', () => {
  it('invalid options, options conflicting with the registered ones and a handle with no forward channel leave every slot to maps that open', async () => {
    const grid = await createGrid({ workers: 1, partitions: 16, memory: '16MB', maxMaps: 3 });
    try {
      const invalid = [{ tll: 1000 }, { ttl: -1 }, { ttl: '1000' }, { cacheValues: 'no' }, 'ttl', null];
      for (const [i, o] of invalid.entries()) expect(() => grid.map(`typo${i}`, o as never), JSON.stringify(o)).toThrow(InvalidOptionError);
      grid.map('sessions', { ttl: 1000 });
      for (let i = 0; i < 4; i++) expect(() => grid.map('sessions', { ttl: 2000 })).toThrow(InvalidOptionError);
      // an attached thread of a cluster member whose handle names no forward channel (made by an older shardgrid)
      const old = await attachGrid({ ...grid.handle, clustered: true, forward: undefined });
      for (let i = 0; i < 4; i++) expect(() => old.map(`forwarded${i}`)).toThrow(AttachError);
      await old.close();
      grid.map('pages');
      grid.map('users', { ttl: 5000 });
      expect(() => grid.map('one-too-many')).toThrow(TooManyMapsError);
      expect(grid.map('sessions').defaultTtl).toBe(1000);
      expect(() => grid.map('typo0'), 'a name refused before was not registered').toThrow(TooManyMapsError);
    } finally {
      await grid.close();
    }
  });
});

describe('a memory budget too small for the partitions', () => {
  it('is refused with an estimate of the budget that is enough (and not much more)', async () => {
    const cases = [
      { workers: 1, memory: '8MB', maxMaps: 4096 }, // the map counters leave no page at all
      { workers: 1, memory: '4MB', partitions: 1024 },
      { workers: 2, memory: '6MB', maxMaps: 2048 },
    ];
    for (const c of cases) {
      const err = await createGrid(c).then(async (g) => {
        await g.close();
        return undefined;
      }, (e: unknown) => e as InvalidOptionError);
      expect(err, JSON.stringify(c)).toBeInstanceOf(InvalidOptionError);
      const m = /about (\d+)MB/.exec(err!.message);
      expect(m, err!.message).not.toBeNull();
      const mb = Number(m![1]);
      // the estimate is enough ...
      const g = await createGrid({ ...c, memory: `${mb}MB` });
      await g.map('m').set('k', 'v');
      await g.close();
      // ... and within a few MB of the budget asked for (it once said 4368MB where 11MB would do)
      expect(mb, err!.message).toBeLessThan(4 * (Number.parseInt(c.memory) + 8));
    }
  });
});

describe('the largest memory budget', () => {
  // The heap is one growable SharedArrayBuffer addressed by unsigned 32-bit offsets, and Node 20
  // grows one to 4 GiB at most. '5GB' to '32GB' used to pass validation (the message said
  // "from 4MB to 32GB") and then createGrid threw V8's RangeError "Invalid array buffer max
  // length", with no code.
  it('a budget over 4GB is refused with GRID_ERR_INVALID_OPTION naming options.memory; 4GB opens', async () => {
    const got: Record<string, string> = { '5GB': "'5GB' = 5368709120 bytes", '32GB': "'32GB' = 34359738368 bytes", [4 * 1024 ** 3 + 1]: '4294967297 bytes' };
    for (const memory of ['5GB', '32GB', 4 * 1024 ** 3 + 1]) {
      const err = await createGrid({ workers: 1, memory }).then(async (g) => {
        await g.close();
        return undefined;
      }, (e: unknown) => e);
      expect(err, String(memory)).toBeInstanceOf(InvalidOptionError);
      expect((err as InvalidOptionError).message).toBe(`options.memory must be from 4MB to 4GB (got ${got[memory]})`);
    }
    const g = await createGrid({ workers: 1, memory: '4GB' });
    try {
      expect(g.stats().bytesLimit).toBe(4 * 1024 ** 3);
      await g.map('m').set('k', 'v');
      expect(await g.map('m').get('k')).toBe('v');
    } finally {
      await g.close();
    }
  });
});
