// The coordination primitives over RESP (CP.* commands): locks and permits belong to the
// connection (its own CP session), so one client cannot release another's, and a client that
// goes away releases what it held. Driven with redis-cli, ioredis and node-redis, on one process
// and across two members of a 3-member cluster; the counter test has a negative control.
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrid, type Grid } from '../../dist/index.js';
import { cli, respCluster } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const io = (port: number) => new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
/** The error text of a rejected call, or 'resolved: <value>'. */
const failure = (p: Promise<unknown>) => p.then((v) => `resolved: ${String(v)}`, (e: Error) => e.message);

/**
 * `clients` connections each add 1 to a plain RESP key `rounds` times by GET then SET (a
 * read-modify-write a second writer breaks), inside CP.LOCK / CP.UNLOCK when `locked`. Returns the
 * final count and the tokens seen inside the sections, in order.
 */
async function countWith(ports: number[], key: string, clients: number, rounds: number, locked: boolean): Promise<{ count: number; tokens: number[] }> {
  const tokens: number[] = [];
  const conns = Array.from({ length: clients }, (_, i) => io(ports[i % ports.length]));
  try {
    await conns[0].set(key, '0');
    await Promise.all(conns.map(async (r) => {
      for (let i = 0; i < rounds; i++) {
        if (locked) tokens.push((await r.call('CP.LOCK', `${key}:lock`)) as number);
        const v = Number(await r.get(key));
        await sleep(Math.random() * 2);
        await r.set(key, String(v + 1));
        if (locked) await r.call('CP.UNLOCK', `${key}:lock`);
      }
    }));
    return { count: Number(await conns[0].get(key)), tokens };
  } finally {
    for (const r of conns) r.disconnect();
  }
}

describe('CP.* on a single-process grid', () => {
  let grid: Grid;
  let port: number;
  beforeAll(async () => {
    grid = await createGrid({ workers: 1, memory: '32MB', resp: { port: 0 } });
    port = grid.resp!.port;
  });
  afterAll(async () => {
    await grid?.close();
  });

  it('redis-cli: every CP command on one connection, with its replies and errors', async () => {
    const script = [
      'CP.LOCK a PX 60000', 'CP.LOCK a WAIT 20', 'CP.ISLOCKED a', 'CP.UNLOCK a', 'CP.UNLOCK a', 'CP.ISLOCKED a',
      'CP.INCRBY n 5', 'CP.INCRBY n -2', 'CP.GETLONG n', 'CP.CASLONG n 3 10', 'CP.CASLONG n 3 11', 'CP.SETLONG n 7', 'CP.GETLONG n',
      'CP.GETREF r', 'CP.SETREF r hello', 'CP.GETREF r', 'CP.CASREF r 1 world', 'CP.CASREF r 1 again', 'CP.GETREF r',
      'CP.ACQUIRE s 2 PERMITS 3', 'CP.PERMITS s', 'CP.ACQUIRE s 2 WAIT 10', 'CP.RELEASE s', 'CP.PERMITS s', 'CP.RELEASE s 2',
      'CP.LOCK a WAIT -1', 'CP.LOCK a PX 0', 'CP.LOCK a FOO 1', 'CP.INCRBY n x', 'CP.ACQUIRE nosuch', 'CP.GETLONG r', 'CP.ACQUIRE s 4',
      'CP.ACQUIRE s 0', 'CP.ACQUIRE s 99999999999999999999', 'CP.RELEASE s -1', 'CP.ACQUIRE s x', 'CP.ACQUIRE s x WAIT 10', 'CP.RELEASE s x',
    ].join('\n');
    const out = (await cli(port, [], `${script}\n`)).split('\n').filter((l) => l !== '');
    expect(out).toEqual([
      '1', '', '1', 'OK', "ERR GRID_ERR_LOCK_NOT_HELD: lock 'a' is not held by this session", '0',
      '5', '3', '3', '1', '0', 'OK', '7',
      '', '0', 'OK', 'hello', '1', '1', '0', 'world', '2',
      '1', '1', '0', 'OK', '2', "ERR GRID_ERR_PERMITS_NOT_HELD: this session holds 1 permit of semaphore 's', cannot release 2",
      'ERR timeout is negative', "ERR invalid expire time in 'cp.lock' command", 'ERR syntax error', 'ERR value is not an integer or out of range',
      // it said "give options.permits", which a RESP client cannot
      "ERR GRID_ERR_INVALID_ARGUMENT: semaphore 'nosuch' does not exist yet: the call that creates it gives its number of permits (options.permits; PERMITS n in CP.ACQUIRE over RESP)",
      "ERR GRID_ERR_CP_KIND: 'r' is already an atomicRef (asked for an atomicLong)",
      "ERR GRID_ERR_INVALID_ARGUMENT: semaphore 's' has 3 permits in all: 4 can never be granted",
      // Redis's text for a count that must be positive (it was "permits must be an integer >= 1", and a syntax error past an int64)
      'ERR value is out of range, must be positive', 'ERR value is out of range, must be positive', 'ERR value is out of range, must be positive',
      // what stands where the count goes and is no option name is the count, as SPOP k x answers (it was a syntax error)
      'ERR value is out of range, must be positive', 'ERR value is out of range, must be positive', 'ERR value is out of range, must be positive',
    ].filter((l) => l !== ''));
    // the library sees what RESP did, and the connection's permit went back when it closed
    expect(await grid.cp.atomicLong('n').get()).toBe(7n);
    expect(Buffer.from((await grid.cp.atomicRef('r').get()) as Uint8Array).toString()).toBe('world');
    expect(await grid.cp.semaphore('s').availablePermits()).toBe(3);
    expect(await grid.cp.lock('a').isLocked()).toBe(false);
  });

  it('names are binary safe: names that are not UTF-8 are distinct primitives (they were all U+FFFD, one lock), UTF-8 names are the library\'s', async () => {
    const a = io(port);
    const b = io(port);
    try {
      const [ff, fe, x80, c3] = [[0xff], [0xfe], [0x80], [0xc3]].map((x) => Buffer.from(x));
      expect(await a.call('CP.LOCK', ff)).toBeGreaterThan(0);
      // another name: not held, so granted at once
      expect(await b.call('CP.LOCK', fe, 'WAIT', '200')).toBeGreaterThan(0);
      expect(await b.call('CP.ISLOCKED', x80)).toBe(0);
      // unlocking a name it does not hold does not release the one it holds
      expect(await failure(a.call('CP.UNLOCK', c3))).toMatch(/^ERR GRID_ERR_LOCK_NOT_HELD/);
      expect(await b.call('CP.ISLOCKED', ff)).toBe(1);
      expect(await a.call('CP.INCRBY', Buffer.from([0xf0]), '5')).toBe(5);
      expect(await a.call('CP.GETLONG', Buffer.from([0xf1]))).toBe(0);
      // a UTF-8 name is the name the library uses
      expect(await a.call('CP.LOCK', 'verrou-é')).toBeGreaterThan(0);
      expect(await grid.cp.lock('verrou-é').isLocked()).toBe(true);
    } finally {
      a.disconnect();
      b.disconnect();
    }
  });

  it('ioredis: a lock belongs to its connection; a blocked CP.LOCK is granted when the holder disconnects, and INFO counts it as blocked', async () => {
    const a = io(port);
    const b = io(port);
    try {
      const t1 = (await a.call('CP.LOCK', 'conn')) as number;
      expect(await b.call('CP.LOCK', 'conn', 'WAIT', '30')).toBe(null);
      expect(await failure(b.call('CP.UNLOCK', 'conn'))).toMatch(/^ERR GRID_ERR_LOCK_NOT_HELD/);
      const granted = b.call('CP.LOCK', 'conn');
      await sleep(50);
      expect(await a.info('clients')).toMatch(/blocked_clients:1\r\n/);
      a.disconnect();
      expect(await granted).toBe(t1 + 1);
      expect(await b.info('clients')).toMatch(/blocked_clients:0\r\n/);
      expect(await b.call('CP.UNLOCK', 'conn')).toBe('OK');
      expect(await b.call('CP.ISLOCKED', 'conn')).toBe(0);
    } finally {
      a.disconnect();
      b.disconnect();
    }
  });

  it('ioredis: a lease ends a hold (the next waiter gets a larger token, the late unlock fails), and permits follow their connection', async () => {
    const a = io(port);
    const b = io(port);
    try {
      const t1 = (await a.call('CP.LOCK', 'lease', 'PX', '100')) as number;
      const start = Date.now();
      const t2 = (await b.call('CP.LOCK', 'lease')) as number;
      expect(Date.now() - start).toBeGreaterThanOrEqual(50);
      expect(t2).toBeGreaterThan(t1);
      expect(await failure(a.call('CP.UNLOCK', 'lease'))).toMatch(/^ERR GRID_ERR_LOCK_NOT_HELD/);
      expect(await b.call('CP.UNLOCK', 'lease')).toBe('OK');

      expect(await a.call('CP.ACQUIRE', 'slots', '2', 'PERMITS', '3')).toBe(1);
      expect(await b.call('CP.ACQUIRE', 'slots', '2', 'WAIT', '20')).toBe(0);
      expect(await failure(b.call('CP.RELEASE', 'slots'))).toMatch(/^ERR GRID_ERR_PERMITS_NOT_HELD/);
      const waiting = b.call('CP.ACQUIRE', 'slots', '2');
      await sleep(30);
      a.disconnect();
      expect(await waiting).toBe(1);
      expect(await b.call('CP.PERMITS', 'slots')).toBe(1);
    } finally {
      a.disconnect();
      b.disconnect();
    }
    // b's permits went back when it disconnected
    for (let i = 0; i < 50 && (await grid.cp.semaphore('slots').availablePermits()) !== 3; i++) await sleep(10);
    expect(await grid.cp.semaphore('slots').availablePermits()).toBe(3);
  });

  it('8 connections × 25 locked GET/SET increments lose none, with tokens increasing; the same loop without CP.LOCK loses updates (negative control)', async () => {
    const unlocked = await countWith([port], 'ctr:plain', 8, 25, false);
    console.log(`without CP.LOCK: ${unlocked.count} of 200 increments survived`);
    expect(unlocked.count).toBeLessThan(200);
    const locked = await countWith([port], 'ctr:locked', 8, 25, true);
    expect(locked.count).toBe(200);
    for (let i = 1; i < locked.tokens.length; i++) expect(locked.tokens[i]).toBeGreaterThan(locked.tokens[i - 1]);
  });

  it('2,000 CP.* commands with random arguments: each gets a reply or an ERR, the connection and the server keep working', async () => {
    const words = ['PX', 'WAIT', 'PERMITS', 'px', 'wait', '0', '-1', '1', '7', '9223372036854775807', '-9223372036854775808', '99999999999999999999', 'x', '', '1.5', 'nan'];
    // names by kind, so most commands are well-formed; one in ten takes a name of another kind,
    // an over-long one or a non-ASCII one
    const family: Record<string, string> = {
      'CP.LOCK': 'fl', 'CP.UNLOCK': 'fl', 'CP.ISLOCKED': 'fl', 'CP.GETLONG': 'fn', 'CP.SETLONG': 'fn', 'CP.INCRBY': 'fn', 'CP.CASLONG': 'fn',
      'CP.GETREF': 'fr', 'CP.SETREF': 'fr', 'CP.CASREF': 'fr', 'CP.ACQUIRE': 'fs', 'CP.RELEASE': 'fs', 'CP.PERMITS': 'fs',
    };
    const odd = ['fl1', 'fn1', 'fr1', 'fs1', 'x'.repeat(300), '\u00e9'];
    const cmds = Object.keys(family);
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const r = io(port);
    try {
      let errors = 0;
      for (let i = 0; i < 2000; i++) {
        const cmd = cmds[rnd(cmds.length)];
        const args = [rnd(10) === 0 ? odd[rnd(odd.length)] : `${family[cmd]}${rnd(2)}`];
        // mostly small integers where numbers go, sometimes anything
        for (let k = rnd(4); k > 0; k--) args.push(rnd(3) === 0 ? words[rnd(words.length)] : String(rnd(4)));
        if (cmd === 'CP.ACQUIRE' && rnd(2) === 0) args.push('PERMITS', '3');
        // never wait forever: a blocking form gets a WAIT of 0 (the random ones may add their own)
        if (cmd === 'CP.LOCK' || cmd === 'CP.ACQUIRE') args.push('WAIT', '0');
        try {
          const v = await r.call(cmd, ...args);
          expect(v === null || typeof v === 'number' || typeof v === 'string' || Array.isArray(v)).toBe(true);
        } catch (e) {
          errors++;
          expect((e as Error).message).toMatch(/^(ERR|WRONGTYPE) /);
        }
      }
      console.log(`random CP.* commands: ${errors} of 2000 answered with an error`);
      expect(errors).toBeGreaterThan(0); // the error paths ran
      expect(errors).toBeLessThan(1500); // and so did the others
      expect(await r.ping()).toBe('PONG');
      expect(await r.call('CP.INCRBY', 'after-fuzz', '1')).toBe(1);
    } finally {
      r.disconnect();
    }
    expect(await cli(port, ['PING'])).toBe('PONG');
  });

  it('node-redis: CP.INCRBY from 10 connections is exact and never returns a value twice', async () => {
    const cs = await Promise.all(Array.from({ length: 10 }, async () => {
      const c = createClient({ url: `redis://127.0.0.1:${port}` });
      c.on('error', () => undefined);
      await c.connect();
      return c;
    }));
    try {
      const seen = await Promise.all(cs.map(async (c) => {
        const got: number[] = [];
        for (let i = 0; i < 50; i++) got.push((await c.sendCommand(['CP.INCRBY', 'nr-seq', '1'])) as number);
        return got;
      }));
      const all = seen.flat().sort((x, y) => x - y);
      expect(all).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    } finally {
      for (const c of cs) await c.quit();
    }
  });
});

describe('CP sessions of RESP connections are bounded (options.resp.maxCpSessions)', () => {
  it('a connection past the bound gets GRID_ERR_CP_CAPACITY for CP.LOCK, while counters still work; a disconnect frees its place', async () => {
    const g = await createGrid({ workers: 1, memory: '16MB', resp: { port: 0, maxCpSessions: 1 } });
    const x = io(g.resp!.port);
    const y = io(g.resp!.port);
    try {
      expect(await x.call('CP.LOCK', 'bounded')).toBe(1);
      expect(await failure(y.call('CP.LOCK', 'other'))).toMatch(/^ERR GRID_ERR_CP_CAPACITY: .*options\.resp\.maxCpSessions/);
      expect(await failure(y.call('CP.ACQUIRE', 'sem', 'PERMITS', '1'))).toMatch(/^ERR GRID_ERR_CP_CAPACITY/);
      expect(await y.call('CP.INCRBY', 'free', '1')).toBe(1); // no session needed
      x.disconnect();
      for (let i = 0; i < 50 && (await g.cp.lock('bounded').isLocked()); i++) await sleep(10);
      expect(await y.call('CP.LOCK', 'bounded')).toBe(2);
    } finally {
      x.disconnect();
      y.disconnect();
      await g.close();
    }
  });
});

describe('CP names named over RESP are bounded (options.resp.maxCpNames)', () => {
  it('past the bound a new name gets GRID_ERR_CP_CAPACITY on every connection; counted names keep working, refused names are not counted, and the application keeps the rest of the name table', async () => {
    const g = await createGrid({ workers: 1, memory: '16MB', cp: { primitives: 8 }, resp: { port: 0, maxCpNames: 3 } });
    const x = io(g.resp!.port);
    const y = io(g.resp!.port);
    try {
      expect(await x.call('CP.INCRBY', 'n1', '5')).toBe(5);
      expect(await x.call('CP.SETREF', 'r1', 'v')).toBe('OK');
      // names the CP layer refuses are not counted against the bound
      expect(await failure(x.call('CP.INCRBY', '', '1'))).toMatch(/^ERR GRID_ERR_INVALID_ARGUMENT/);
      expect(await failure(x.call('CP.INCRBY', 'x'.repeat(300), '1'))).toMatch(/^ERR GRID_ERR_INVALID_ARGUMENT/);
      expect(await y.call('CP.LOCK', 'l1')).toBe(1);
      expect(await failure(x.call('CP.INCRBY', 'n2', '1'))).toMatch(/^ERR GRID_ERR_CP_CAPACITY: .*options\.resp\.maxCpNames/);
      expect(await failure(y.call('CP.ISLOCKED', 'l2'))).toMatch(/^ERR GRID_ERR_CP_CAPACITY/);
      expect(await failure(y.call('CP.ACQUIRE', 's1', 'PERMITS', '2'))).toMatch(/^ERR GRID_ERR_CP_CAPACITY/);
      expect(await x.call('CP.INCRBY', 'n1', '1')).toBe(6);
      expect(await y.call('CP.UNLOCK', 'l1')).toBe('OK');
      // a name the application made first counts once it is named over RESP, like any other
      await g.cp.atomicLong('app0').set(7n);
      expect(await failure(x.call('CP.GETLONG', 'app0'))).toMatch(/^ERR GRID_ERR_CP_CAPACITY/);
      // 8 names in all, 3 taken over RESP (and app0): the application makes the other 4
      for (let i = 1; i <= 4; i++) expect(await g.cp.atomicLong(`app${i}`).incrementAndGet()).toBe(1n);
    } finally {
      x.disconnect();
      y.disconnect();
      await g.close();
    }
  });

  it('control: with the bound above the name table, one RESP client leaves the application no name', async () => {
    const g = await createGrid({ workers: 1, memory: '16MB', cp: { primitives: 4 }, resp: { port: 0, maxCpNames: 100 } });
    const x = io(g.resp!.port);
    try {
      for (let i = 0; i < 4; i++) expect(await x.call('CP.INCRBY', `n${i}`, '1')).toBe(1);
      expect(await failure(x.call('CP.INCRBY', 'n4', '1'))).toMatch(/^ERR GRID_ERR_CP_CAPACITY/);
      expect(() => g.cp.atomicLong('app')).toThrow(expect.objectContaining({ code: 'GRID_ERR_CP_CAPACITY' }));
    } finally {
      x.disconnect();
      await g.close();
    }
  });
});

describe('CP.* on members of a 3-member cluster', () => {
  const c = respCluster('resp-cp-cluster-secret-0123456789ab', true);

  it('a lock taken through one member excludes a connection of another member, and passes to it when the holder disconnects', async () => {
    const x = io(c.m.resp!.port);
    const y = io(c.a.respPort!);
    try {
      const t1 = (await x.call('CP.LOCK', 'cl', 'PX', '60000')) as number;
      expect(await y.call('CP.LOCK', 'cl', 'WAIT', '100')).toBe(null);
      expect(await failure(y.call('CP.UNLOCK', 'cl'))).toMatch(/^ERR GRID_ERR_LOCK_NOT_HELD/);
      const granted = y.call('CP.LOCK', 'cl');
      await sleep(100);
      x.disconnect(); // its session closes on the Raft log: the lock goes to y long before the lease
      const t2 = (await granted) as number;
      expect(t2).toBeGreaterThan(t1);
      expect(await y.call('CP.UNLOCK', 'cl')).toBe('OK');
      expect(await c.m.cp.lock('cl').isLocked()).toBe(false);
    } finally {
      x.disconnect();
      y.disconnect();
    }
  });

  it('locked GET/SET increments from connections of two members lose none; CP.INCRBY, refs and permits work through the log', async () => {
    const ports = [c.m.resp!.port, c.a.respPort!];
    const locked = await countWith(ports, 'cctr', 6, 10, true);
    expect(locked.count).toBe(60);
    for (let i = 1; i < locked.tokens.length; i++) expect(locked.tokens[i]).toBeGreaterThan(locked.tokens[i - 1]);
    const x = io(ports[0]);
    const y = io(ports[1]);
    try {
      const got = await Promise.all([...Array(20)].map((_, i) => (i % 2 === 0 ? x : y).call('CP.INCRBY', 'cseq', '1')));
      expect((got as number[]).sort((p, q) => p - q)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      expect(await x.call('CP.SETREF', 'cref', 'v1')).toBe('OK');
      expect(await y.call('CP.GETREF', 'cref')).toEqual(['v1', 1]);
      expect(await y.call('CP.CASREF', 'cref', '1', 'v2')).toBe(1);
      expect(await x.call('CP.CASREF', 'cref', '1', 'v3')).toBe(0);
      expect(await x.call('CP.ACQUIRE', 'csem', '1', 'PERMITS', '1')).toBe(1);
      expect(await y.call('CP.ACQUIRE', 'csem', '1', 'PERMITS', '1', 'WAIT', '50')).toBe(0);
      expect(await x.call('CP.RELEASE', 'csem')).toBe('OK');
      expect(await y.call('CP.PERMITS', 'csem')).toBe(1);
      // the state machine's refusals read as one process's do (it said "releasing 2 permit(s), this member holds 0":
      // the holder is the connection's session, not the member)
      expect(await failure(y.call('CP.RELEASE', 'csem', '2'))).toBe("ERR GRID_ERR_PERMITS_NOT_HELD: this session holds 0 permits of semaphore 'csem', cannot release 2");
      expect(await failure(y.call('CP.RELEASE', 'cnosuch'))).toBe(
        "ERR GRID_ERR_INVALID_ARGUMENT: semaphore 'cnosuch' does not exist yet: the call that creates it gives its number of permits (options.permits; PERMITS n in CP.ACQUIRE over RESP)",
      );
    } finally {
      x.disconnect();
      y.disconnect();
    }
  });
});
