// INFO keyspace counts what a Redis client sees: `keys` and `expires` of the RESP map, over the
// whole grid. `expires` comes from per-(partition, map) counters the store keeps beside its entry
// counts; a property test holds them to a brute-force count of the map's entries with an expiry,
// through every write path (in-place rewrite, a new record for a new size, delete, ttl changes).
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { createGrid } from '../../dist/index.js';
import { Rand } from '../../src/raft/rand.js';
import { Raw, req, respCluster } from './helpers.js';

const io = (port: number) => new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** keys and expires of `INFO keyspace` (0, 0 when the section is empty). */
async function keyspace(r: Redis): Promise<{ keys: number; expires: number }> {
  const info = (await r.info('keyspace')) as string;
  const m = /db0:keys=(\d+),expires=(\d+),avg_ttl=\d+/.exec(info);
  return m === null ? { keys: 0, expires: 0 } : { keys: Number(m[1]), expires: Number(m[2]) };
}

type Counted = { expiring(): Promise<number> };

describe('the store counts entries with an expiry per map', () => {
  it('equals a brute-force count of entries with a ttl after every batch of random writes, over 6 seeds and two maps', async () => {
    const g = await createGrid({ workers: 1, memory: '32MB', partitions: 31 });
    try {
      const maps = [g.map('a'), g.map('b')];
      for (let seed = 1; seed <= 6; seed++) {
        const rnd = new Rand(seed);
        const rand = (): number => rnd.float();
        // model: key → has a ttl, per map
        const model = [new Map<string, boolean>(), new Map<string, boolean>()];
        for (const m of maps) await m.clear();
        for (let batch = 0; batch < 20; batch++) {
          for (let i = 0; i < 50; i++) {
            const w = rand() < 0.5 ? 0 : 1;
            const m = maps[w];
            const key = `k${Math.floor(rand() * 60)}`;
            const r = rand();
            // sizes from 1 to ~600 bytes: same-size overwrites rewrite in place, others make a new record
            const value = 'v'.repeat(1 + Math.floor(rand() * (rand() < 0.5 ? 3 : 600)));
            if (r < 0.35) {
              await m.set(key, value, { ttl: 600_000 });
              model[w].set(key, true);
            } else if (r < 0.65) {
              await m.set(key, value);
              model[w].set(key, false);
            } else if (r < 0.8) {
              await m.delete(key);
              model[w].delete(key);
            } else if (r < 0.9) {
              if (await m.setIfAbsent(key, value, { ttl: 600_000 })) model[w].set(key, true);
            } else {
              const withTtl = rand() < 0.5;
              m.setSync(key, value, withTtl ? { ttl: 600_000 } : undefined);
              model[w].set(key, withTtl);
            }
          }
          for (let w = 0; w < 2; w++) {
            const want = [...model[w].values()].filter(Boolean).length;
            // the brute force: every entry of the map, its ttl read back
            let brute = 0;
            for await (const [k] of maps[w].entries()) if ((await maps[w].ttl(k)) !== undefined) brute++;
            expect(brute, `seed ${seed} batch ${batch} map ${w}: brute force vs model`).toBe(want);
            expect(await (maps[w] as unknown as Counted).expiring(), `seed ${seed} batch ${batch} map ${w}`).toBe(want);
          }
        }
      }
    } finally {
      await g.close();
    }
  });

  it('drops entries whose time passed once they are reclaimed', async () => {
    const g = await createGrid({ workers: 1, memory: '16MB', expiryInterval: 20 });
    try {
      const m = g.map('short');
      for (let i = 0; i < 20; i++) await m.set(`k${i}`, 'v', { ttl: i < 10 ? 30 : 600_000 });
      expect(await (m as unknown as Counted).expiring()).toBe(20);
      let n = 20;
      for (let t = 0; t < 100 && n > 10; t++) {
        await sleep(20);
        n = await (m as unknown as Counted).expiring();
      }
      expect(n).toBe(10);
      expect(await m.size()).toBe(10);
    } finally {
      await g.close();
    }
  });
});

describe('INFO keyspace on a single-process grid', () => {
  it('counts the RESP map only, and follows EX, EXPIRE, PERSIST, SET without KEEPTTL, a new value size and DEL', async () => {
    const g = await createGrid({ workers: 1, memory: '16MB', resp: { port: 0 } });
    const r = io(g.resp!.port);
    try {
      // entries with a ttl in another map are not the RESP client's keys
      for (let i = 0; i < 5; i++) await g.map('other').set(`o${i}`, 'v', { ttl: 600_000 });
      await r.set('a', '1');
      await r.set('b', '2', 'EX', 100);
      await r.set('c', '3', 'PX', 100_000);
      expect(await keyspace(r)).toEqual({ keys: 3, expires: 2 });
      await r.expire('a', 100);
      expect(await keyspace(r)).toEqual({ keys: 3, expires: 3 });
      await r.persist('b');
      expect(await keyspace(r)).toEqual({ keys: 3, expires: 2 });
      await r.set('c', '4'); // SET without KEEPTTL clears the ttl
      expect(await keyspace(r)).toEqual({ keys: 3, expires: 1 });
      await r.set('a', 'x'.repeat(2000), 'EX', 100); // a new size: a new record replaces the old one
      expect(await keyspace(r)).toEqual({ keys: 3, expires: 1 });
      await r.set('c', '5', 'KEEPTTL');
      expect(await keyspace(r)).toEqual({ keys: 3, expires: 1 });
      await r.del('a');
      expect(await keyspace(r)).toEqual({ keys: 2, expires: 0 });
    } finally {
      r.disconnect();
      await g.close();
    }
  });

  it("avg_ttl is the mean time left of a sample of the RESP map's keys with an expiry (it was always 0)", async () => {
    const g = await createGrid({ workers: 1, memory: '16MB', resp: { port: 0 } });
    const r = io(g.resp!.port);
    const avgTtl = async () => Number(/avg_ttl=(\d+)/.exec((await r.info('keyspace')) as string)?.[1] ?? -1);
    try {
      // keys without an expiry, and another map's with a short one, are not in the average
      for (let i = 0; i < 5; i++) await g.map('other').set(`o${i}`, 'v', { ttl: 5_000 });
      for (let i = 0; i < 50; i++) await r.set(`plain${i}`, 'v');
      for (let i = 0; i < 50; i++) await r.set(`t${i}`, 'v', 'EX', 1000);
      let avg = await avgTtl();
      expect(avg).toBeGreaterThan(990_000);
      expect(avg).toBeLessThanOrEqual(1_000_000);
      // half at 1000 s and half at 3000 s: a mean of the two, whichever keys the sample took
      for (let i = 0; i < 50; i++) await r.set(`u${i}`, 'v', 'EX', 3000);
      avg = await avgTtl();
      expect(avg).toBeGreaterThan(1_000_000);
      expect(avg).toBeLessThan(3_000_000);
      for (let i = 0; i < 50; i++) await r.persist(`t${i}`);
      avg = await avgTtl();
      expect(avg).toBeGreaterThan(2_990_000);
      for (let i = 0; i < 50; i++) await r.persist(`u${i}`);
      expect(await avgTtl()).toBe(0);
    } finally {
      r.disconnect();
      await g.close();
    }
  });
});

describe('keyspace_hits and keyspace_misses', () => {
  it('count the reads of GET, MGET, GETEX, GETDEL, SET … GET, EXISTS, TYPE, TTL and PTTL, hit or miss, as Redis does', async () => {
    const g = await createGrid({ workers: 1, memory: '16MB', resp: { port: 0 } });
    const r = io(g.resp!.port);
    const stats = async () => {
      const info = (await r.info('stats')) as string;
      return { hits: Number(/keyspace_hits:(\d+)/.exec(info)![1]), misses: Number(/keyspace_misses:(\d+)/.exec(info)![1]) };
    };
    try {
      await r.set('h', '1');
      let before = await stats();
      const step = async (run: () => Promise<unknown>, hits: number, misses: number) => {
        await run();
        const now = await stats();
        expect({ hits: now.hits - before.hits, misses: now.misses - before.misses }).toEqual({ hits, misses });
        before = now;
      };
      await step(() => r.get('h'), 1, 0);
      await step(() => r.get('nope'), 0, 1);
      await step(() => r.mget('h', 'nope', 'h'), 2, 1);
      await step(() => r.getex('h', 'EX', 100), 1, 0);
      await step(() => r.getex('nope', 'PERSIST'), 0, 1);
      await step(() => r.call('SET', 'h', '2', 'GET'), 1, 0);
      await step(() => r.call('SET', 'fresh', '1', 'GET'), 0, 1);
      await step(() => r.getdel('h'), 1, 0);
      await step(() => r.getdel('h'), 0, 1);
      // lookups Redis counts too; writes that only look a key up to change it (INCR, APPEND) are not reads
      await r.set('e', '5', 'EX', 100);
      before = await stats();
      await step(() => r.exists('e', 'nope', 'e'), 2, 1);
      await step(() => r.type('e'), 1, 0);
      await step(() => r.ttl('e'), 1, 0);
      await step(() => r.pttl('fresh'), 1, 0); // no expiry: found by the has()
      await step(() => r.pttl('nope'), 0, 1);
      await step(() => r.incr('e'), 0, 0);
      await step(() => r.append('e', 'x'), 0, 0);
    } finally {
      r.disconnect();
      await g.close();
    }
  });
});

describe('INFO keyspace on members of a 3-member cluster', () => {
  const c = respCluster('resp-keyspace-cluster-secret-0123456789', true);

  it('every member reports the whole grid: copies on backups are not counted twice', async () => {
    const clients = [io(c.m.resp!.port), io(c.a.respPort!), io(c.b.respPort!)];
    try {
      for (let i = 0; i < 40; i++) {
        if (i % 4 === 0) await clients[i % 3].set(`k${i}`, 'v', 'EX', 1000);
        else await clients[i % 3].set(`k${i}`, 'v');
      }
      for (const r of clients) expect(await keyspace(r)).toEqual({ keys: 40, expires: 10 });
      await clients[1].persist('k0');
      await clients[2].expire('k1', 1000);
      await clients[0].del('k4');
      for (const r of clients) expect(await keyspace(r)).toEqual({ keys: 39, expires: 9 });
    } finally {
      for (const r of clients) r.disconnect();
    }
  });

  it("answers the round-three differences as redis-server 7.0.15 does for keys whose primary is another member: INCRBYFLOAT's infinite increment reaches the primary, and reads the value first", async () => {
    // an infinite increment was refused before it was routed ("would produce NaN or Infinity" for a value that is not a float);
    // it now travels to the key's primary as the update's argument
    const keys = Array.from({ length: 12 }, (_, i) => `rt${i}`);
    const r = c.m.cluster!.replicas;
    expect(keys.filter((k) => !r.isPrimary(r.records.partitionOf(k))).length).toBeGreaterThan(0);
    const x = await Raw.open(c.m.resp!.port);
    const long = 'L'.repeat(5000); // over maxKeyBytes (4096)
    x.send(Buffer.concat([
      ...keys.flatMap((k) => [req('SET', k, 'abc', 'NX', 'NX'), req('INCRBYFLOAT', k, 'inf'), req('INCRBYFLOAT', `${k}n`, 'inf'), req('INCRBYFLOAT', `${k}n`, '1e-5000'), req('GETEX', `${k}n`, 'EX', '0'), req('GETEX', k, 'EX', 'x')]),
      req('SET', long, 'v', 'XX'), req('PING'),
    ]));
    const text = await x.until((t) => t.endsWith('+PONG\r\n'));
    x.end();
    const each = ['+OK', '-ERR value is not a valid float', '-ERR increment would produce NaN or Infinity', '-ERR value is not a valid float', '$-1', '-ERR value is not an integer or out of range'];
    expect(text).toBe(`${[...keys.flatMap(() => each), '$-1', '+PONG'].join('\r\n')}\r\n`);
  });

  it('keyspace_hits and keyspace_misses count GET and MGET of keys other members serve (they were counted nowhere)', async () => {
    const r = io(c.m.resp!.port);
    try {
      const counts = async () => {
        const info = (await r.info('stats')) as string;
        return { hits: Number(/keyspace_hits:(\d+)/.exec(info)![1]), misses: Number(/keyspace_misses:(\d+)/.exec(info)![1]) };
      };
      for (let i = 0; i < 30; i++) await r.set(`h${i}`, 'v');
      const before = await counts();
      for (let i = 0; i < 30; i++) {
        await r.get(`h${i}`);
        await r.get(`missing${i}`);
      }
      await r.mget('h0', 'h1', 'missing-a', 'missing-b');
      const after = await counts();
      // with 3 members about two thirds of these keys are served by another member
      expect(after.hits - before.hits).toBe(32);
      expect(after.misses - before.misses).toBe(32);
      // the library's figures of the member are the same counters
      expect(c.m.stats().hits).toBeGreaterThanOrEqual(32);
    } finally {
      r.disconnect();
    }
  });
});
