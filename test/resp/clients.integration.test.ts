// ioredis and node-redis (RESP2 and RESP3) use the endpoint unchanged; INCR from many
// connections is atomic; a 3-member cluster serves RESP for keys whose primary is elsewhere.
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NEED } from '../../dist/map.js';
import { createGrid, type Grid } from '../../dist/index.js';
import { startGridMember, type GridProcess } from '../fixtures/grid-process.js';
import { cli } from './helpers.js';

let grid: Grid;
let port: number;

beforeAll(async () => {
  grid = await createGrid({ workers: 2, memory: '64MB', resp: { port: 0 } });
  port = grid.resp!.port;
});
afterAll(async () => {
  await grid?.close();
});

describe('Redis client libraries', () => {
  it('ioredis: connects (ready check), pipelines, and reads what the map API wrote', async () => {
    const r = new Redis({ port, host: '127.0.0.1', connectionName: 'io', lazyConnect: true, maxRetriesPerRequest: 0 });
    await r.connect();
    try {
      expect(await r.set('io:a', 'x', 'EX', 100)).toBe('OK');
      expect(await r.get('io:a')).toBe('x');
      expect(await r.client('GETNAME')).toBe('io');
      const p = r.pipeline();
      for (let i = 0; i < 500; i++) p.incr('io:n');
      const res = await p.exec();
      expect(res!.map(([, v]) => v)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
      await grid.map('default').set('io:lib', 'from the map API');
      expect(await r.get('io:lib')).toBe('from the map API');
      expect(await r.mget('io:a', 'nope')).toEqual(['x', null]);
      expect(await r.getBuffer('io:a')).toEqual(Buffer.from('x'));
      await r.set(Buffer.from([0xff, 0x00, 0xfe]), Buffer.from([1, 2, 3]));
      expect(await r.getBuffer(Buffer.from([0xff, 0x00, 0xfe]))).toEqual(Buffer.from([1, 2, 3]));
      await expect(r.call('NOSUCH')).rejects.toThrow("ERR unknown command 'NOSUCH', with args beginning with: ");
    } finally {
      r.disconnect();
    }
  });

  it('node-redis over RESP2 and RESP3', async () => {
    for (const RESP of [2, 3] as const) {
      const c = createClient({ url: `redis://127.0.0.1:${port}`, RESP });
      c.on('error', () => undefined);
      await c.connect();
      try {
        expect(await c.set(`nr${RESP}:a`, 'v', { EX: 100 })).toBe('OK');
        expect(await c.get(`nr${RESP}:a`)).toBe('v');
        expect(await c.get(`nr${RESP}:none`)).toBe(null);
        expect(await c.incrBy(`nr${RESP}:n`, 5)).toBe(5);
        expect(await c.incrByFloat(`nr${RESP}:f`, 1.5)).toBe(RESP === 2 ? '1.5' : '1.5');
        expect(await c.exists(`nr${RESP}:a`)).toBe(1);
        expect(await c.ttl(`nr${RESP}:a`)).toBeGreaterThan(90);
        expect(await c.mGet([`nr${RESP}:a`, 'none'])).toEqual(['v', null]);
        const info = await c.info('keyspace');
        expect(String(info)).toContain('db0:keys=');
      } finally {
        await c.quit();
      }
    }
  });

  it('MULTI/EXEC (not supported) runs none of the commands a client queued: ioredis and node-redis get EXECABORT, and nothing was written', async () => {
    // a rate limiter: MULTI INCR EXPIRE EXEC. MULTI and EXEC used to be unknown commands, so the
    // INCR and EXPIRE between them ran while the client was told the transaction failed
    const r = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    const n = createClient({ url: `redis://127.0.0.1:${port}` });
    n.on('error', () => undefined);
    await n.connect();
    try {
      for (let i = 0; i < 3; i++) await expect(r.multi().incr('tx:rl').expire('tx:rl', 60).exec()).rejects.toThrow(/^EXECABORT/);
      await expect(n.multi().incr('tx:rl').set('tx:other', 'v').exec()).rejects.toThrow(/EXECABORT|MULTI is not supported/);
      expect(await r.exists('tx:rl', 'tx:other')).toBe(0);
      // the connections are usable as before, outside a transaction
      expect(await r.incr('tx:after')).toBe(1);
      expect(await n.incr('tx:after')).toBe(2);
      // redis-cli, one command at a time: MULTI is refused, what follows too until DISCARD (or EXEC)
      // (redis-cli prints an empty line after an error, and for GET's nil)
      const out = (await cli(port, [], 'MULTI\nSET tx:cli v\nDISCARD\nGET tx:cli\nEXEC\nDISCARD\nWATCH tx:cli\nUNWATCH\n')).split('\n').filter((l) => l !== '');
      expect(out).toEqual([
        expect.stringMatching(/^ERR MULTI is not supported/), expect.stringMatching(/^ERR not run: .*MULTI/), 'OK',
        'ERR EXEC without MULTI', 'ERR DISCARD without MULTI', expect.stringMatching(/^ERR WATCH is not supported/), 'OK',
      ]);
      expect(await r.exists('tx:cli')).toBe(0);
    } finally {
      r.disconnect();
      await n.quit();
    }
  });

  it('INCR from 20 connections at once loses no increment (atomic per key)', async () => {
    const clients = Array.from({ length: 20 }, () => new Redis({ port, host: '127.0.0.1' }));
    try {
      await Promise.all(clients.map(async (c) => {
        const p = c.pipeline();
        for (let i = 0; i < 250; i++) p.incr('race:n').append('race:s', 'x');
        await p.exec();
      }));
      expect(await clients[0].get('race:n')).toBe('5000');
      expect(await clients[0].strlen('race:s')).toBe(5000);
    } finally {
      for (const c of clients) c.disconnect();
    }
  });
});

describe('RESP on a member of a 3-member cluster', () => {
  const SECRET = 'resp-cluster-test-secret-0123456789';
  let a: GridProcess;
  let b: GridProcess;
  let m: Grid;

  beforeAll(async () => {
    a = await startGridMember({ backups: 1 }, SECRET);
    b = await startGridMember({ seeds: [a.url], backups: 1 }, SECRET);
    m = await createGrid({ workers: 1, memory: '64MB', cluster: { port: 0, seeds: [a.url], secret: SECRET, backups: 1 }, resp: { port: 0 } });
    // wait until this member holds primaries and so do the others (the table settled)
    for (let i = 0; i < 100; i++) {
      const s = m.stats();
      if ((s.members ?? []).filter((x) => !x.lite && x.primaries > 0).length === 3 && s.cluster!.migrating === 0) break;
      await new Promise((r) => setTimeout(r, 200));
    }
  }, 90_000);

  afterAll(async () => {
    await m?.close();
    for (const p of [a, b]) p?.proc.kill('SIGKILL');
  });

  it('runs a pipeline of single-key commands on different keys at once, yet in order per key and replies in order', async () => {
    const r = new Redis({ port: m.resp!.port, host: '127.0.0.1' });
    try {
      const keys = Array.from({ length: 40 }, (_, i) => `po:${i}`);
      const pl = r.pipeline();
      const expected: unknown[] = [];
      // per key: SET, GET, INCR x3 with a GET between, APPEND, GET; keys interleaved so that
      // commands on other keys sit between the commands of each key
      for (const k of keys) {
        pl.set(k, '10');
        expected.push('OK');
      }
      for (const k of keys) {
        pl.get(k);
        expected.push('10');
      }
      for (let round = 1; round <= 3; round++) {
        for (const k of keys) {
          pl.incr(k);
          expected.push(10 + round);
          pl.get(k);
          expected.push(String(10 + round));
        }
      }
      for (const k of keys) {
        pl.append(k, 'x');
        expected.push(3);
        pl.get(k);
        expected.push('13x');
      }
      const overlapped = async () => Number(/shardgrid_overlapped_commands:(\d+)/.exec(await r.info('stats'))![1]);
      const before = await overlapped();
      const got = await pl.exec();
      expect(got!.map(([err, v]) => err ?? v)).toEqual(expected);
      // commands did overlap (keys whose primary is another member wait for it): without the
      // overlap this pipeline runs one round trip at a time
      expect((await overlapped()) - before).toBeGreaterThan(0);
      expect(await r.del(...keys)).toBe(keys.length); // the next test counts the map's keys
    } finally {
      r.disconnect();
    }
  });

  it('reads the keys this member serves straight from its memory and the rest from their primaries, as the library does', async () => {
    const lib = m.map('default');
    for (let i = 0; i < 200; i++) await lib.set(`gs:${i}`, `w${i}`);
    // count which path each RESP GET took (RoutedMap.getServed: a value, or NEED for the routed get)
    const rm = lib as unknown as { getServed: (k: string) => unknown };
    const own = rm.getServed;
    let served = 0;
    let routed = 0;
    rm.getServed = function (this: unknown, k: string) {
      const v = own.call(this, k);
      if (v === NEED) routed++;
      else served++;
      return v;
    };
    const r = new Redis({ port: m.resp!.port, host: '127.0.0.1' });
    try {
      const pl = r.pipeline();
      for (let i = 0; i < 200; i++) pl.get(`gs:${i}`);
      pl.get('gs:absent');
      const got = (await pl.exec())!.map(([err, v]) => err ?? v);
      expect(got).toEqual([...Array.from({ length: 200 }, (_, i) => `w${i}`), null]);
      // a RESP write, then reads of it through both paths
      for (let i = 0; i < 200; i += 7) expect(await r.set(`gs:${i}`, `x${i}`)).toBe('OK');
      for (let i = 0; i < 200; i++) expect(await r.get(`gs:${i}`)).toBe(i % 7 === 0 ? `x${i}` : `w${i}`);
    } finally {
      delete (rm as { getServed?: unknown }).getServed; // the prototype's again
      r.disconnect();
    }
    // 3 members with primaries: about a third of the keys are served here
    expect(served).toBeGreaterThan(30);
    expect(routed).toBeGreaterThan(30);
    for (let i = 0; i < 200; i++) await lib.delete(`gs:${i}`); // the next test counts the keyspace
  }, 60_000);

  it('serves keys whose primary is on another member, and INCR stays exact', async () => {
    const s = m.stats();
    expect((s.members ?? []).filter((x) => !x.lite && x.primaries > 0).length).toBe(3);
    const p = m.resp!.port;
    const args = ['MSET'];
    for (let i = 0; i < 100; i++) args.push(`ck:${i}`, `v${i}`);
    expect(await cli(p, args)).toBe('OK');
    const got = (await cli(p, ['MGET', ...Array.from({ length: 100 }, (_, i) => `ck:${i}`)])).split('\n');
    expect(got).toEqual(Array.from({ length: 100 }, (_, i) => `v${i}`));
    expect(await cli(p, ['DBSIZE'])).toBe('100');
    const r = new Redis({ port: p, host: '127.0.0.1' });
    try {
      const keys = Array.from({ length: 30 }, (_, i) => `cn:${i}`);
      await Promise.all([0, 1, 2, 3].map(async () => {
        const pl = r.pipeline();
        for (let j = 0; j < 10; j++) for (const k of keys) pl.incr(k);
        await pl.exec();
      }));
      expect(await r.mget(...keys)).toEqual(keys.map(() => '40'));
      expect(await r.set('ck:0', 'new', 'XX', 'GET')).toBe('v0');
      expect(await r.getdel('ck:0')).toBe('new');
      expect(await r.exists('ck:0')).toBe(0);
      // SCAN walks every partition through the members that own them
      const seen = new Set<string>();
      let cursor = '0';
      do {
        const [next, page] = await r.scan(cursor, 'MATCH', 'ck:*', 'COUNT', 50);
        for (const k of page) seen.add(k);
        cursor = next;
      } while (cursor !== '0');
      expect(seen.size).toBe(99);
    } finally {
      r.disconnect();
    }
    // the map API of the member sees what RESP wrote
    expect(String(await m.map('default').get('ck:5'))).toBe('v5');
  }, 60_000);
});
