// Keys the library wrote, touched through RESP: commands that change only the time to live
// (EXPIRE, PEXPIREAT, PERSIST, GETEX) leave the value and its type as they are (an object stays an
// object for the library), INCR* of a number the library stored keeps it a number, and memoized
// readers see the new expiry. On one process and through a member of a 3-member cluster.
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { createGrid, type Grid } from '../../dist/index.js';
import { Raw, req, respCluster } from './helpers.js';

const io = (port: number) => new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Byte arrays read back as Buffers (a Uint8Array): compare their bytes. */
const norm = (x: unknown): unknown => (x instanceof Uint8Array ? [...x] : x);
const VALUES: Array<[string, unknown]> = [['obj', { a: 1, list: [1, 2] }], ['str', 'hello'], ['num', 7], ['flt', 1.5], ['bytes', new Uint8Array([1, 2, 3])]];

async function ttlCommandsKeepValues(g: Grid, r: Redis): Promise<void> {
  const m = g.map('default');
  for (const [k, v] of VALUES) await m.set(k, v);
  for (const [k] of VALUES) expect(await r.expire(k, 100)).toBe(1);
  for (const [k, v] of VALUES) {
    expect(norm(await m.get(k)), `${k} after EXPIRE`).toEqual(norm(v));
    expect(await m.ttl(k)).toBeGreaterThan(90_000);
  }
  for (const [k] of VALUES) expect(await r.persist(k)).toBe(1);
  for (const [k, v] of VALUES) {
    expect(norm(await m.get(k)), `${k} after PERSIST`).toEqual(norm(v));
    expect(await m.ttl(k)).toBeUndefined();
  }
  for (const [k] of VALUES) await r.getex(k, 'PX', 200_000);
  for (const [k] of VALUES) await r.call('PEXPIREAT', k, String(Date.now() + 300_000));
  for (const [k, v] of VALUES) {
    expect(norm(await m.get(k)), `${k} after GETEX and PEXPIREAT`).toEqual(norm(v));
    expect(await m.ttl(k)).toBeGreaterThan(200_000);
  }
  // INCR* of a library number: still a number
  expect(await r.incr('num')).toBe(8);
  expect(await r.incrby('num', 10)).toBe(18);
  expect(await r.decr('num')).toBe(17);
  expect(await m.get('num')).toBe(17);
  expect(await r.incrbyfloat('flt', '0.25')).toBe('1.75');
  expect(await m.get('flt')).toBe(1.75);
  // past what a double holds exactly: the exact text, as bytes (a rounded number would change it)
  await m.set('big', 2 ** 53);
  expect(await r.incr('big')).toBe(2 ** 53 + 1);
  expect(Buffer.from((await m.get('big')) as Uint8Array).toString()).toBe('9007199254740993');
  // an EXPIRE in the past deletes, as Redis does
  expect(await r.call('EXPIREAT', 'obj', '1')).toBe(1);
  expect(await m.get('obj')).toBeUndefined();
}

describe('library values touched through RESP, one process', () => {
  it('EXPIRE, PERSIST, GETEX and PEXPIREAT keep values and types; INCR* keeps numbers numbers', async () => {
    const g = await createGrid({ workers: 1, memory: '16MB', resp: { port: 0 } });
    const r = io(g.resp!.port);
    try {
      await ttlCommandsKeepValues(g, r);
    } finally {
      r.disconnect();
      await g.close();
    }
  });

  it('a value memoized by getSync expires at the time an EXPIRE over RESP gave it', async () => {
    const g = await createGrid({ workers: 1, memory: '16MB', resp: { port: 0 } });
    const r = io(g.resp!.port);
    try {
      const m = g.map('default');
      await m.set('memo', { big: 'x'.repeat(200) });
      for (let i = 0; i < 3; i++) expect(m.getSync('memo')).toEqual({ big: 'x'.repeat(200) }); // memoized now
      expect(await r.pexpire('memo', 50)).toBe(1);
      expect(m.getSync('memo')).toEqual({ big: 'x'.repeat(200) });
      await sleep(80);
      expect(m.getSync('memo')).toBeUndefined();
    } finally {
      r.disconnect();
      await g.close();
    }
  });
});

describe('a RESP map with a default ttl (grid.map(name, { ttl }))', () => {
  it('every RESP write that makes a value without an expiry gives it the default, as SET and the library do; INCR and APPEND of a value keep its expiry', async () => {
    const g = await createGrid({ workers: 1, memory: '16MB', resp: { port: 0, map: 'sessions' } });
    const r = io(g.resp!.port);
    try {
      g.map('sessions', { ttl: 60_000 });
      const fresh: Array<[string, ...Array<string | number>]> = [
        ['SET', 'set', 'v'], ['SET', 'set-get', 'v', 'GET'], ['SET', 'set-nx-get', 'v', 'NX', 'GET'], ['SET', 'set-keepttl', 'v', 'KEEPTTL'],
        ['SETNX', 'setnx', 'v'], ['MSET', 'mset', 'v'], ['APPEND', 'append', 'v'], ['INCR', 'incr'], ['INCRBY', 'incrby', 5], ['DECR', 'decr'], ['INCRBYFLOAT', 'incrbyfloat', '1.5'],
      ];
      for (const [cmd, ...args] of fresh) {
        await r.call(cmd, ...args);
        const t = await r.pttl(String(args[0]));
        expect(t, `${cmd} ${args.join(' ')}`).toBeGreaterThan(50_000);
        expect(t, `${cmd} ${args.join(' ')}`).toBeLessThanOrEqual(60_000);
      }
      // a value rewritten without an expiry takes the default again (SET XX as SET, as the library's set)
      await r.set('xx', 'v', 'EX', 500);
      await r.set('xx', 'w', 'XX');
      expect(await r.ttl('xx')).toBeGreaterThan(50);
      expect(await r.ttl('xx')).toBeLessThanOrEqual(60);
      // an explicit expiry wins; INCR, APPEND and SET KEEPTTL of an existing value keep its expiry; PERSIST is kept too
      await r.set('kept', '1', 'EX', 500);
      await r.incr('kept');
      await r.append('kept', '0');
      await r.set('kept', '7', 'KEEPTTL');
      expect(await r.ttl('kept')).toBeGreaterThan(490);
      await r.persist('kept');
      await r.incr('kept');
      await r.append('kept', '1');
      expect(await r.ttl('kept')).toBe(-1);
    } finally {
      r.disconnect();
      await g.close();
    }
  });
});

describe('a fractional ttl the library was given, through RESP', () => {
  it('PTTL and TTL reply integers (PTTL replied :33326.33…, which ioredis read as 332978333251953150)', async () => {
    const g = await createGrid({ workers: 1, memory: '16MB', resp: { port: 0 } });
    const r = io(g.resp!.port);
    const raw = await Raw.open(g.resp!.port);
    try {
      await g.map('default').set('third', 'v', { ttl: 100_000 / 3 }); // 33333.33… ms
      const pttl = await r.pttl('third');
      expect(Number.isSafeInteger(pttl)).toBe(true);
      expect(pttl).toBeGreaterThan(30_000);
      expect(pttl).toBeLessThanOrEqual(33_334);
      expect(await r.ttl('third')).toBe(33);
      raw.send(Buffer.concat([req('PTTL', 'third'), req('TTL', 'third')]));
      expect(await raw.lines(2)).toMatch(/^:\d+\r\n:33\r\n$/);
    } finally {
      raw.end();
      r.disconnect();
      await g.close();
    }
  });
});

describe('keys the library made that start with U+FFFF, through RESP', () => {
  it('SCAN returns their UTF-8, GET and DEL of it reach them and no other key; a RESP key of that text is the library\'s', async () => {
    const g = await createGrid({ workers: 1, memory: '16MB', resp: { port: 0 } });
    const r = io(g.resp!.port);
    try {
      const m = g.map('default');
      await m.set('\uffffabc', 'marked');
      await m.set('abc', 'plain');
      const [, found] = await r.scanBuffer('0', 'COUNT', '1000');
      expect(found.map((b) => b.toString('hex')).sort()).toEqual([Buffer.from('abc'), Buffer.from('\uffffabc', 'utf8')].map((b) => b.toString('hex')).sort());
      expect(await r.get(Buffer.from('\uffffabc', 'utf8'))).toBe('marked');
      expect(await r.get('abc')).toBe('plain');
      await r.set(Buffer.from('\uffffxyz', 'utf8'), 'from-resp');
      expect(Buffer.from((await m.get('\uffffxyz')) as Uint8Array).toString()).toBe('from-resp');
      // a SCAN-then-DEL loop deletes the keys it was shown, not others
      for (const k of found) expect(await r.del(k)).toBe(1);
      expect(await m.get('\uffffabc')).toBeUndefined();
      expect(await m.get('abc')).toBeUndefined();
      expect(await r.dbsize()).toBe(1);
    } finally {
      r.disconnect();
      await g.close();
    }
  });
});

describe('library values touched through RESP, a member of a 3-member cluster', () => {
  const c = respCluster('resp-library-values-secret-0123456789');

  it('the same, with keys whose primaries are on other members', async () => {
    const r = io(c.m.resp!.port);
    try {
      await ttlCommandsKeepValues(c.m, r);
    } finally {
      r.disconnect();
    }
  });
});
