// Prometheus metrics: /metrics during a RESP load is valid text whose counters move, and the
// grid's metrics register on an application's own prom-client Registry.
import { get as httpGet } from 'node:http';
import { connect, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { Counter, Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrid, type Grid } from '../../dist/index.js';
import { startGridMember } from '../fixtures/grid-process.js';
import { Raw, req } from './helpers.js';

interface Sample { name: string; labels: Record<string, string>; value: number }

/** A strict parser of the Prometheus text format (0.0.4): throws on any line it does not understand. */
function parseProm(text: string): Sample[] {
  const out: Sample[] = [];
  const typed = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta !== null) {
      if (meta[1] === 'TYPE') {
        expect(['counter', 'gauge', 'histogram', 'summary', 'untyped']).toContain(meta[3]);
        typed.add(meta[2]);
      }
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$/.exec(line);
    if (m === null) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[2] !== undefined && m[2] !== '') {
      for (const part of m[2].match(/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"/g) ?? []) {
        const eq = part.indexOf('=');
        labels[part.slice(0, eq)] = part.slice(eq + 2, -1);
      }
    }
    const base = m[1].replace(/_(bucket|sum|count)$/, '');
    if (!typed.has(m[1]) && !typed.has(base)) throw new Error(`sample before its # TYPE: ${line}`);
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

const value = (s: Sample[], name: string, labels: Record<string, string> = {}): number =>
  s.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v)).reduce((a, x) => a + x.value, 0);

function scrape(port: number): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    }).on('error', reject);
  });
}

let grid: Grid;

beforeAll(async () => {
  grid = await createGrid({ workers: 1, memory: '64MB', resp: { port: 0 }, metrics: { port: 0 } });
});
afterAll(async () => {
  await grid?.close();
});

describe('metrics', () => {
  it('/metrics is valid Prometheus text during a load, and its counters move with the load', async () => {
    const mport = grid.metrics.address!.port;
    const r = new Redis({ port: grid.resp!.port, host: '127.0.0.1' });
    let running = true;
    const load = (async () => {
      let i = 0;
      while (running) {
        const p = r.pipeline();
        for (let j = 0; j < 200; j++, i++) p.set(`k${i % 1000}`, 'v').get(`k${(i * 7) % 1500}`);
        await p.exec();
      }
    })();
    try {
      await new Promise((res) => setTimeout(res, 300));
      const a = await scrape(mport);
      expect(a.status).toBe(200);
      expect(a.type).toContain('text/plain');
      const s1 = parseProm(a.body);
      await new Promise((res) => setTimeout(res, 500));
      const s2 = parseProm((await scrape(mport)).body);
      for (const [name, labels] of [
        ['shardgrid_resp_commands_total', { command: 'set' }],
        ['shardgrid_resp_commands_total', { command: 'get' }],
        ['shardgrid_map_operations_total', { map: 'default', kind: 'get' }],
        ['shardgrid_map_operations_total', { map: 'default', kind: 'set' }],
        ['shardgrid_hits_total', {}],
        ['shardgrid_misses_total', {}],
      ] as const) {
        expect(value(s2, name, labels), `${name} ${JSON.stringify(labels)}`).toBeGreaterThan(value(s1, name, labels));
      }
      expect(value(s2, 'shardgrid_resp_connections')).toBe(1);
      expect(value(s2, 'shardgrid_resp_blocked_clients')).toBe(0);
      expect(value(s2, 'shardgrid_entries')).toBeGreaterThan(0);
      expect(value(s2, 'shardgrid_bytes_limit')).toBe(grid.stats().bytesLimit);
      expect(value(s2, 'shardgrid_bytes_used')).toBeGreaterThan(0);
      for (const name of ['shardgrid_evictions_total', 'shardgrid_expirations_total', 'shardgrid_partition_table_version', 'shardgrid_migrations_in_flight']) {
        expect(s2.some((x) => x.name === name), name).toBe(true);
      }
      expect((await scrape(mport).then(() => new Promise<number>((res) => httpGet({ host: '127.0.0.1', port: mport, path: '/other' }, (x) => res(x.statusCode ?? 0)))))).toBe(404);
    } finally {
      running = false;
      await load;
      r.disconnect();
    }
  });

  it('shardgrid_resp_errors_total and INFO total_error_replies count every error reply, as Redis does; a success counts none', async () => {
    const mport = grid.metrics.address!.port;
    const c = await Raw.open(grid.resp!.port);
    const q = await Raw.open(grid.resp!.port); // asks INFO (its replies are no errors)
    let seen = 0;
    let qSeen = 0;
    const reply = async (r: Raw, at: number): Promise<string> => (await r.until((t) => t.length > at && t.endsWith('\r\n'))).slice(at);
    const infoErrors = async (): Promise<number> => {
      q.send(req('INFO', 'stats'));
      const text = await q.until((t) => /total_error_replies:\d+\r\n[\s\S]*\r\n$/.test(t.slice(qSeen)));
      const n = Number(/total_error_replies:(\d+)/.exec(text.slice(qSeen))![1]);
      qSeen = text.length;
      return n;
    };
    const metric = async (): Promise<number> => value(parseProm((await scrape(mport)).body), 'shardgrid_resp_errors_total');
    /** Sends one request; its reply and how much each error count moved. */
    const run = async (...args: string[]): Promise<{ reply: string; moved: number[] }> => {
      const [m0, i0] = [await metric(), await infoErrors()];
      c.send(req(...args));
      const r = await reply(c, seen);
      seen += r.length;
      return { reply: r, moved: [(await metric()) - m0, (await infoErrors()) - i0] };
    };
    try {
      expect((await run('SET', 'm-err', 'abc')).reply).toBe('+OK\r\n');
      // errors of every kind: the value (INCR), syntax, option values, arity, unknown names, AUTH, HELLO
      for (const args of [['INCR', 'm-err'], ['INCRBYFLOAT', 'm-err', '1'], ['SET', 'm-err', 'v', 'NX', 'XX'], ['SET', 'm-err', 'v', 'EX', '0'], ['EXPIRE', 'm-err', 'x'],
        ['SELECT', '1'], ['SCAN', 'x'], ['CLIENT', 'FOO'], ['PING', 'a', 'b'], ['HELLO', '9'], ['AUTH', 'x'], ['MSET', 'a', 'b', 'c'], ['GET'], ['NO-SUCH-COMMAND']]) {
        const r = await run(...args);
        expect(r.reply, args.join(' ')).toMatch(/^-/);
        expect(r.moved, args.join(' ')).toEqual([1, 1]);
      }
      for (const args of [['GET', 'm-err'], ['INCRBY', 'm-err-n', '2'], ['PING']]) {
        const r = await run(...args);
        expect(r.reply, args.join(' ')).not.toMatch(/^-/);
        expect(r.moved, args.join(' ')).toEqual([0, 0]);
      }
    } finally {
      c.end();
      q.end();
    }
  });

  it('CONFIG RESETSTAT starts INFO\'s stats from zero, as in Redis (it answered OK and reset nothing); Prometheus counters keep counting', async () => {
    const mport = grid.metrics.address!.port;
    const r = new Redis({ port: grid.resp!.port, host: '127.0.0.1' });
    const stats = async (): Promise<Record<string, number>> =>
      Object.fromEntries(String(await r.info('stats')).split('\r\n').filter((l) => l.includes(':')).map((l) => [l.slice(0, l.indexOf(':')), Number(l.slice(l.indexOf(':') + 1))]));
    try {
      await r.set('rs:a', '1');
      for (let i = 0; i < 5; i++) await r.get('rs:a');
      await r.get('rs:none');
      await r.call('NO-SUCH').catch(() => undefined);
      const before = await stats();
      expect(before.keyspace_hits).toBeGreaterThanOrEqual(5);
      expect(before.total_error_replies).toBeGreaterThanOrEqual(1);
      const hits0 = value(parseProm((await scrape(mport)).body), 'shardgrid_hits_total');
      expect(await r.config('RESETSTAT')).toBe('OK');
      const after = await stats();
      expect([after.keyspace_hits, after.keyspace_misses, after.total_error_replies, after.expired_keys, after.evicted_keys, after.rejected_connections, after.total_connections_received]).toEqual([0, 0, 0, 0, 0, 0, 0]);
      expect(after.total_commands_processed).toBeLessThanOrEqual(2); // CONFIG RESETSTAT and INFO at most
      await r.get('rs:a');
      await r.get('rs:none');
      const later = await stats();
      expect([later.keyspace_hits, later.keyspace_misses]).toEqual([1, 1]);
      // the Prometheus counters are not reset (counters only go up)
      expect(value(parseProm((await scrape(mport)).body), 'shardgrid_hits_total')).toBeGreaterThanOrEqual(hits0 + 1);
    } finally {
      r.disconnect();
    }
  });

  it('shardgrid_resp_blocked_clients counts connections waiting in CP.LOCK', async () => {
    const mport = grid.metrics.address!.port;
    const a = new Redis({ port: grid.resp!.port, host: '127.0.0.1' });
    const b = new Redis({ port: grid.resp!.port, host: '127.0.0.1' });
    try {
      await a.call('CP.LOCK', 'm-blocked');
      const waiting = b.call('CP.LOCK', 'm-blocked');
      let seen = 0;
      for (let i = 0; i < 50 && seen !== 1; i++) {
        seen = value(parseProm((await scrape(mport)).body), 'shardgrid_resp_blocked_clients');
        if (seen !== 1) await new Promise((res) => setTimeout(res, 20));
      }
      expect(seen).toBe(1);
      a.disconnect(); // its lock goes to b
      await waiting;
      expect(value(parseProm((await scrape(mport)).body), 'shardgrid_resp_blocked_clients')).toBe(0);
    } finally {
      a.disconnect();
      b.disconnect();
    }
  });

  it("a cluster member's replication outcomes, copies' acknowledgements and remote round trips move with a load", async () => {
    const secret = 'metrics-cluster-test-secret-0123456789ab';
    const other = await startGridMember({ backups: 1 }, secret);
    const member = await createGrid({ workers: 1, memory: '32MB', cluster: { host: '127.0.0.1', port: 0, seeds: [other.url], secret, backups: 1 } });
    try {
      for (let t = 0; t < 240 && member.stats().cluster!.migrating + (member.stats().members!.filter((x) => x.primaries > 0).length === 2 ? 0 : 1) > 0; t++) await new Promise((r) => setTimeout(r, 250));
      const reg = new Registry();
      member.metrics.register(reg);
      const s1 = parseProm(await reg.metrics());
      const m = member.map<string>('load');
      // writes on both primaries: local ones replicate to the other member (rep), remote ones are FAST sets and gets
      for (let i = 0; i < 400; i++) await m.set(`k${i}`, 'v');
      for (let i = 0; i < 400; i++) expect(await m.get(`k${i}`)).toBe('v');
      const s2 = parseProm(await reg.metrics());
      const lat = 'shardgrid_remote_request_duration_seconds';
      for (const [name, labels] of [
        ['shardgrid_replicated_writes_total', { outcome: 'acknowledged' }],
        ['shardgrid_replication_acks_total', {}],
        [`${lat}_count`, { kind: 'rep' }],
        [`${lat}_count`, { kind: 'set' }],
        [`${lat}_count`, { kind: 'get' }],
      ] as const) {
        expect(value(s2, name, labels), `${name} ${JSON.stringify(labels)}`).toBeGreaterThan(value(s1, name, labels));
      }
      // a histogram's buckets are cumulative and end at its count
      for (const kind of ['rep', 'set', 'get']) {
        const buckets = s2.filter((x) => x.name === `${lat}_bucket` && x.labels.kind === kind);
        expect(buckets.length).toBeGreaterThan(10);
        for (let i = 1; i < buckets.length; i++) expect(buckets[i].value).toBeGreaterThanOrEqual(buckets[i - 1].value);
        expect(buckets.at(-1)!.labels.le).toBe('+Inf');
        expect(buckets.at(-1)!.value).toBe(value(s2, `${lat}_count`, { kind }));
        expect(value(s2, `${lat}_sum`, { kind })).toBeGreaterThan(0);
      }
      expect(value(s2, 'shardgrid_replicated_writes_total', { outcome: 'failed' })).toBe(0);
      expect(value(s2, 'shardgrid_unsettled_keys')).toBe(0); // every write settled
      expect(s2.some((x) => x.name === 'shardgrid_lock_waits_total')).toBe(true);
    } finally {
      await member.close();
      other.proc.kill('SIGKILL');
    }
  }, 120_000);

  it('the /metrics server holds at most maxConnections (32) sockets, however many idle ones a client opens; a scrape works again once they go', async () => {
    const port = grid.metrics.address!.port;
    const server = (grid.metrics as unknown as { server: { getConnections(cb: (e: unknown, n: number) => void): void } }).server;
    const held = () => new Promise<number>((r) => server.getConnections((_e, n) => r(n)));
    const N = 100;
    let closedByServer = 0;
    const socks = await Promise.all(Array.from({ length: N }, () => new Promise<Socket>((resolve) => {
      const s = connect(port, '127.0.0.1', () => resolve(s));
      s.on('error', () => undefined);
      s.on('close', () => closedByServer++);
    })));
    try {
      // every socket was accepted by the kernel; the server keeps at most 32 (those of earlier
      // scrapes still in keep-alive included) and closes the rest as it accepts them
      const end = Date.now() + 5000;
      while (closedByServer < N - 32 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      console.log(`/metrics: ${N} idle sockets opened, ${closedByServer} closed by the server, ${await held()} held`);
      expect(closedByServer).toBeGreaterThanOrEqual(N - 32);
      expect(await held()).toBeLessThanOrEqual(32);
    } finally {
      for (const s of socks) s.destroy();
    }
    let r: { status: number } | undefined;
    for (let i = 0; i < 50 && r === undefined; i++) r = await scrape(port).catch(() => new Promise<undefined>((ok) => setTimeout(ok, 20)));
    expect(r?.status).toBe(200);
  });

  it('a client scraping in a loop gets 429 beyond 100 scrapes at once and 50 a second (each costs the main thread a collection), and is served again a second later', async () => {
    const port = grid.metrics.address!.port;
    const t0 = performance.now();
    const codes: number[] = [];
    for (let i = 0; i < 300; i++) codes.push((await scrape(port)).status);
    const secs = (performance.now() - t0) / 1000;
    const served = codes.filter((c) => c === 200).length;
    console.log(`/metrics: 300 scrapes in ${secs.toFixed(2)} s, ${served} served, ${codes.length - served} refused`);
    expect(codes.every((c) => c === 200 || c === 429)).toBe(true);
    expect(served).toBeLessThanOrEqual(100 + Math.ceil(50 * secs)); // the burst, then 50 a second
    if (secs < 3) expect(codes).toContain(429);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await scrape(port)).status).toBe(200);
  });

  it('registers on an application\'s own prom-client Registry, next to its own metrics', async () => {
    const registry = new Registry();
    const g = await createGrid({ workers: 1, memory: '32MB', metrics: { registry } });
    try {
      await g.map('app').set('a', 1);
      await g.map('app').get('a');
      const s = parseProm(await registry.metrics());
      expect(value(s, 'shardgrid_map_operations_total', { map: 'app', kind: 'set' })).toBe(1);
      expect(value(s, 'shardgrid_map_operations_total', { map: 'app', kind: 'get' })).toBe(1);
      expect(value(s, 'shardgrid_hits_total')).toBe(1);
      const other = new Registry();
      g.metrics.register(other);
      g.metrics.register(other); // idempotent
      expect(parseProm(await other.metrics()).some((x) => x.name === 'shardgrid_entries')).toBe(true);
      await expect(createGrid({ workers: 1, memory: '32MB', metrics: { registry: {} } })).rejects.toMatchObject({ code: 'GRID_ERR_INVALID_OPTION' });
    } finally {
      await g.close();
    }
  });

  it("close() takes the grid's metrics off the application's registry, so a new grid can register there; a live grid's names get a typed error", async () => {
    const registry = new Registry();
    const own = new Counter({ name: 'app_requests_total', help: 'the application\'s own', registers: [registry] });
    own.inc();
    const g1 = await createGrid({ workers: 1, memory: '32MB', metrics: { registry } });
    await g1.map('app').set('a', 1);
    expect(value(parseProm(await registry.metrics()), 'shardgrid_entries')).toBe(1);
    // a second grid on the same registry while the first is up: a typed refusal naming the option,
    // and nothing of it left registered (the first grid's metrics are still its own)
    await expect(createGrid({ workers: 1, memory: '32MB', metrics: { registry } })).rejects.toMatchObject({ code: 'GRID_ERR_INVALID_OPTION', data: { option: 'options.metrics.registry' } });
    const g3 = await createGrid({ workers: 1, memory: '32MB' });
    try {
      expect(() => g3.metrics.register(registry)).toThrow(expect.objectContaining({ code: 'GRID_ERR_INVALID_ARGUMENT' }));
    } finally {
      await g3.close();
    }
    expect(value(parseProm(await registry.metrics()), 'shardgrid_entries')).toBe(1);
    await g1.close();
    // a closed grid reports nothing any more; the application's own metrics stay
    const after = parseProm(await registry.metrics());
    expect(after.filter((x) => x.name.startsWith('shardgrid_'))).toEqual([]);
    expect(value(after, 'app_requests_total')).toBe(1);
    // a closed grid registers nowhere (its metrics would stay there for good), whether or not
    // its metrics were used before it closed
    expect(() => g1.metrics.register(new Registry())).toThrow(expect.objectContaining({ code: 'GRID_ERR_CLOSED' }));
    const g4 = await createGrid({ workers: 1, memory: '32MB' });
    await g4.close();
    expect(() => g4.metrics.register(new Registry())).toThrow(expect.objectContaining({ code: 'GRID_ERR_CLOSED' }));
    // and the grid that replaces it registers there as the first did
    const g2 = await createGrid({ workers: 1, memory: '32MB', metrics: { registry } });
    try {
      await g2.map('app').set('b', 2);
      await g2.map('app').set('c', 3);
      expect(value(parseProm(await registry.metrics()), 'shardgrid_entries')).toBe(2);
    } finally {
      await g2.close();
    }
  });
});
