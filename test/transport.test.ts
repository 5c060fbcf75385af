import { randomBytes } from 'node:crypto';
import { connect as tcpConnect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Packr } from 'msgpackr';
import { Transport } from '../dist/transport/index.js';
import type { TransportOptions } from '../dist/transport/index.js';
import { F_BATCH, encodeHello, packr, unpackr } from '../dist/transport/wire.js';
import { rawAuthed as rawAuthedTo, rawClient } from './fixtures/raw-peer.js';
import {
  AuthenticationError,
  GridClosedError,
  GridError,
  InternalError,
  InvalidArgumentError,
  MemberLeftError,
  MemberUnreachableError,
  ProtocolError,
  RetryableGridError,
  TimeoutError,
  UnencodableValueError,
  UnsupportedError,
  ValueTooLargeError,
} from '../dist/errors.js';

const SECRET = 'transport-test-secret';
type Logged = { level: string; message: string; err: unknown };

async function member(memberId: string, extra: Partial<TransportOptions> = {}): Promise<Transport & { logged: Logged[] }> {
  const logged: Logged[] = [];
  const t = await Transport.listen({
    host: '127.0.0.1',
    port: 0,
    secret: SECRET,
    memberId,
    log: (level, message, err) => logged.push({ level, message, err }),
    ...extra,
  });
  return Object.assign(t, { logged });
}

const tick = () => new Promise((r) => setImmediate(r));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
function stats(t: Transport): { framesOut: number; framesIn: number; messagesOut: number; messagesIn: number; blocked: number } {
  return { ...(t as unknown as { _stats: never })._stats };
}
function linkCount(t: Transport): number {
  return (t as unknown as { all: Set<unknown> }).all.size;
}

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe('requests and replies', () => {
  let a: Awaited<ReturnType<typeof member>>;
  let b: Awaited<ReturnType<typeof member>>;

  beforeAll(async () => {
    a = await member('a');
    b = await member('b');
    b.handle('echo', (body, from) => ({ body, from }));
    b.handle('double', (n: number) => n * 2);
    b.handle('later', async (n: number) => {
      await sleep(5);
      return n + 1;
    });
    b.handle('invalid', () => {
      throw new InvalidArgumentError('bad key', { key: 'k1' });
    });
    b.handle('left', async () => {
      throw new MemberLeftError('gone', { member: 'z' });
    });
    b.handle('bug', () => {
      throw new TypeError('x is not a function');
    });
    b.handle('never', () => new Promise(() => {}));
    a.handle('double', (n: number) => n * 2);
    expect(await a.connect(b.url)).toBe('b');
  });

  afterAll(async () => {
    await Promise.all([a.close(), b.close()]);
  });

  it('round-trips a request and tells the handler who sent it; the dialled side can request back', { timeout: 10_000 }, async () => {
    expect(await a.request('b', 'echo', { k: [1, 'two', null] })).toEqual({ body: { k: [1, 'two', null] }, from: 'a' });
    expect(b.urlOf('a')).toBe(a.url);
    expect(b.peers()).toEqual(['a']);
    expect(await b.request('a', 'double', 21)).toBe(42);
    expect(await a.request('b', 'later', 1)).toBe(2);
  });

  it('coalesces requests issued in one tick into one frame each way', { timeout: 10_000 }, async () => {
    const sa = stats(a);
    const sb = stats(b);
    const n = 500;
    const replies = await Promise.all(Array.from({ length: n }, (_, i) => a.request<number>('b', 'double', i)));
    expect(replies).toEqual(Array.from({ length: n }, (_, i) => i * 2));
    const da = stats(a);
    const db = stats(b);
    expect(da.framesOut - sa.framesOut).toBe(1);
    expect(da.messagesOut - sa.messagesOut).toBe(n);
    expect(db.framesIn - sb.framesIn).toBe(1);
    expect(db.framesOut - sb.framesOut).toBe(1); // synchronous handlers: all replies in one frame
    expect(da.framesIn - sa.framesIn).toBe(1);
  });

  it('answers many concurrent requests in several rounds correctly', { timeout: 10_000 }, async () => {
    for (let round = 0; round < 50; round++) {
      const got = await Promise.all(Array.from({ length: 64 }, (_, i) => a.request('b', 'echo', round * 64 + i)));
      got.forEach((g, i) => expect((g as { body: number }).body).toBe(round * 64 + i));
    }
  });

  it('rebuilds errors thrown by handlers as the same GridError class', { timeout: 10_000 }, async () => {
    const e1 = await a.request('b', 'invalid', null).catch((e) => e);
    expect(e1).toBeInstanceOf(InvalidArgumentError);
    expect(e1.code).toBe('GRID_ERR_INVALID_ARGUMENT');
    expect(e1.message).toBe('bad key');
    expect(e1.data).toEqual({ key: 'k1' });
    const e2 = await a.request('b', 'left', null).catch((e) => e);
    expect(e2).toBeInstanceOf(MemberLeftError);
    expect(e2).toBeInstanceOf(RetryableGridError);
    const e3 = await a.request('b', 'bug', null).catch((e) => e);
    expect(e3).toBeInstanceOf(InternalError);
    expect(e3.message).toContain('x is not a function');
    expect(b.logged.some((l) => l.level === 'error' && l.err instanceof TypeError)).toBe(true);
  });

  // a peer's error text reached log lines and `shardgrid status` as it was sent: 1 MB, newlines, terminal escapes
  it('rebuilds a peer\'s error with its message escaped and cut to 1000 characters, and an unknown code escaped', { timeout: 10_000 }, async () => {
    const hostile = '\u001b[2J\r\nfake line ';
    b.handle('hostile', () => {
      throw new InvalidArgumentError(hostile + 'A'.repeat(1 << 20), { key: 'k1' });
    });
    const e = await a.request('b', 'hostile', null).catch((x) => x);
    expect(e).toBeInstanceOf(InvalidArgumentError);
    expect(e.data).toEqual({ key: 'k1' });
    expect(e.message.length).toBeLessThan(1100);
    expect(e.message).not.toMatch(/[\u0000-\u001f]/);
    expect(e.message.startsWith('\\x1b[2J\\x0d\\x0afake line AAA')).toBe(true);
    b.handle('hostile-code', () => {
      throw Object.assign(new InvalidArgumentError('x'), { code: `GRID_ERR_${'\u001b'.repeat(3)}${'Z'.repeat(500)}` });
    });
    const e2 = await a.request('b', 'hostile-code', null).catch((x) => x);
    expect(e2).toBeInstanceOf(InternalError);
    expect(String(e2.data.code).length).toBeLessThan(120);
    expect(e2.data.code).not.toMatch(/[\u0000-\u001f]/);
  });

  it('answers a request of an unknown type with an error reply and keeps the connection', { timeout: 10_000 }, async () => {
    const e = await a.request('b', 'no-such-type', 1).catch((x) => x);
    expect(e).toBeInstanceOf(UnsupportedError);
    expect(a.isConnected('b')).toBe(true);
    expect(await a.request('b', 'double', 2)).toBe(4);
  });

  it('rejects with TimeoutError after timeoutMs and with MemberUnreachableError when not connected', { timeout: 10_000 }, async () => {
    const e = await a.request('b', 'never', null, 50).catch((x) => x);
    expect(e).toBeInstanceOf(TimeoutError);
    const u = await a.request('nobody', 'double', 1).catch((x) => x);
    expect(u).toBeInstanceOf(MemberUnreachableError);
  });

  it('a connect that joins a dial already under way gives up after its own timeoutMs, not the first caller\'s', { timeout: 20_000 }, async () => {
    // a peer that accepts the TCP connection and never answers: a SIGSTOPped member (the kernel
    // still accepts). A graceful leave told such a member with a 500 ms bound but joined a dial
    // begun with 5 s: closing a grid took 5 s while another member was paused
    const { createServer } = await import('node:net');
    const sockets: import('node:net').Socket[] = [];
    const mute = createServer((sock) => sockets.push(sock));
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
    const url = `ws://127.0.0.1:${(mute.address() as { port: number }).port}`;
    try {
      let firstSettled = false;
      const first = a.connect(url, 3000).finally(() => {
        firstSettled = true;
      });
      first.catch(() => undefined);
      const second = await a.connect(url, 100).catch((x) => x);
      expect(second).toBeInstanceOf(TimeoutError);
      expect(firstSettled).toBe(false);
      await first.catch(() => undefined);
    } finally {
      for (const sock of sockets) sock.destroy();
      await new Promise((r) => mute.close(r));
    }
  });

  it('a connect that joins a dial which times out first, at the other caller\'s shorter timeoutMs, dials again within its own', { timeout: 20_000 }, async () => {
    // a membership probe dials with 150 ms: a request whose connect joined such a dial failed with
    // "connect to ... timed out after 150 ms" on a loaded machine (evict-failover.integration).
    // Here a proxy holds its first connection mute and forwards the next ones to member c
    const { createServer, connect: tcp } = await import('node:net');
    const sockets: import('node:net').Socket[] = [];
    let target = 0;
    const proxy = createServer((sock) => {
      sockets.push(sock);
      sock.on('error', () => undefined);
      if (sockets.length === 1) return;
      const up = tcp(target, '127.0.0.1');
      up.on('error', () => undefined);
      sockets.push(up);
      sock.pipe(up);
      up.pipe(sock);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const c = await member('c-proxied', { advertise: `127.0.0.1:${(proxy.address() as { port: number }).port}` });
    target = c.boundPort;
    c.handle('double', (n: number) => n * 2);
    try {
      const first = a.connect(c.url, 100);
      first.catch(() => undefined);
      const second = a.connect(c.url, 10_000);
      expect(await first.catch((x) => x)).toBeInstanceOf(TimeoutError);
      expect(await second).toBe('c-proxied');
      expect(await a.request('c-proxied', 'double', 21)).toBe(42);
    } finally {
      for (const sock of sockets) sock.destroy();
      await c.close();
      await new Promise((r) => proxy.close(r));
    }
  });

  it('flushTo writes what is queued for one member at once, in order with what follows in the turn; nothing for others or when nothing is queued', { timeout: 10_000 }, async () => {
    const seen: unknown[] = [];
    b.handle('note2', (body) => {
      seen.push(body);
    });
    const s0 = stats(a);
    a.notify('b', 'note2', 1);
    expect(stats(a).framesOut).toBe(s0.framesOut); // queued until the end of the turn
    a.flushTo('nobody');
    a.flushTo('b');
    expect(stats(a).framesOut).toBe(s0.framesOut + 1); // written in the call
    a.flushTo('b'); // nothing queued: no frame
    expect(stats(a).framesOut).toBe(s0.framesOut + 1);
    a.notify('b', 'note2', 2); // after the early write: goes at the end of the turn, after it
    expect(await a.request('b', 'double', 4)).toBe(8);
    await until(() => seen.length === 2, 2000, 'notifications');
    expect(seen).toEqual([1, 2]);
    expect(stats(a).framesOut).toBe(s0.framesOut + 2);
  });

  it('delivers notifications in order with requests, and drops them when not connected', { timeout: 10_000 }, async () => {
    const seen: unknown[] = [];
    b.handle('note', (body) => {
      seen.push(body);
    });
    a.notify('b', 'note', 1);
    const r = a.request('b', 'double', 5);
    a.notify('b', 'note', 2);
    a.notify('nobody', 'note', 3);
    expect(await r).toBe(10);
    await until(() => seen.length === 2, 2000, 'notifications');
    expect(seen).toEqual([1, 2]);
  });

  it('fails only the messages that cannot be encoded and sends the rest of their batch', { timeout: 10_000 }, async () => {
    b.handle('symbol', () => Symbol('not encodable'));
    const [ok1, bad, ok2, badReply] = await Promise.allSettled([
      a.request('b', 'double', 1),
      a.request('b', 'double', Symbol('x')),
      a.request('b', 'double', 2),
      a.request('b', 'symbol', null),
    ]);
    expect(ok1).toEqual({ status: 'fulfilled', value: 2 });
    expect(ok2).toEqual({ status: 'fulfilled', value: 4 });
    expect((bad as PromiseRejectedResult).reason).toBeInstanceOf(UnencodableValueError);
    expect((badReply as PromiseRejectedResult).reason).toBeInstanceOf(UnencodableValueError);
    expect(a.isConnected('b')).toBe(true);
  });

  it('splits a batch larger than maxPayload into several frames, and refuses one message larger than maxPayload', { timeout: 15_000 }, async () => {
    const small = await member('small-a', { maxPayload: 1 << 20 });
    const smallB = await member('small-b', { maxPayload: 1 << 20 });
    try {
      smallB.handle('len', (buf: Uint8Array) => buf.length);
      await small.connect(smallB.url);
      const s0 = stats(small);
      const lens = await Promise.all(Array.from({ length: 10 }, () => small.request('small-b', 'len', Buffer.alloc(300 * 1024, 7))));
      expect(lens).toEqual(Array(10).fill(300 * 1024));
      expect(stats(small).framesOut - s0.framesOut).toBeGreaterThanOrEqual(3);
      const big = await small.request('small-b', 'len', Buffer.alloc(2 << 20)).catch((x) => x);
      expect(big).toBeInstanceOf(ValueTooLargeError);
      expect(await small.request('small-b', 'len', Buffer.alloc(10))).toBe(10);
    } finally {
      await Promise.all([small.close(), smallB.close()]);
    }
  });

  it('holds frames while the socket is over maxBuffered and delivers every request in order', { timeout: 20_000 }, async () => {
    const x = await member('bp-x', { maxBuffered: 256 * 1024 });
    const y = await member('bp-y');
    try {
      const order: number[] = [];
      y.handle('put', (body: { i: number; data: Uint8Array }) => {
        order.push(body.i);
        return body.data.length;
      });
      await x.connect(y.url);
      // the receiver stops reading: the TCP window fills and frames pile up in the sender
      const socketOf = (t: Transport, peer: string) =>
        (t as unknown as { links: Map<string, { ws: { _socket: import('node:net').Socket; bufferedAmount: number } }> }).links.get(peer)!.ws;
      socketOf(y, 'bp-x')._socket.pause();
      const all: Promise<unknown>[] = [];
      let maxBuffered = 0;
      for (let i = 0; i < 200; i++) {
        all.push(x.request('bp-y', 'put', { i, data: Buffer.alloc(128 * 1024, i) }, 15_000));
        if (i % 4 === 3) {
          await sleep(1); // several flushes, each adding to the socket buffer
          maxBuffered = Math.max(maxBuffered, socketOf(x, 'bp-y').bufferedAmount);
        }
      }
      expect(stats(x).blocked).toBeGreaterThan(0);
      // held back in the queue, not in the socket: at most the bound plus one frame (4 x 128 KiB)
      expect(maxBuffered).toBeLessThan(256 * 1024 + 4 * 129 * 1024);
      socketOf(y, 'bp-x')._socket.resume();
      const lens = await Promise.all(all);
      expect(lens).toEqual(Array(200).fill(128 * 1024));
      expect(order).toEqual(Array.from({ length: 200 }, (_, i) => i));
      expect(stats(x).blocked).toBeGreaterThan(0);
    } finally {
      await Promise.all([x.close(), y.close()]);
    }
  });
});

describe('connections', () => {
  it('keeps exactly one connection when both members dial each other at once', { timeout: 20_000 }, async () => {
    for (let i = 0; i < 10; i++) {
      const p = await member(`p${i}`);
      const q = await member(`q${i}`);
      const ev: string[] = [];
      for (const t of [p, q]) {
        t.on('connected', (id: string) => ev.push(`${t.memberId} connected ${id}`));
        t.on('disconnected', (id: string) => ev.push(`${t.memberId} disconnected ${id}`));
        t.handle('who', (_b, from) => `${t.memberId} hears ${from}`);
      }
      const [fromP, fromQ] = await Promise.all([p.connect(q.url), q.connect(p.url)]);
      expect([fromP, fromQ]).toEqual([`q${i}`, `p${i}`]);
      await sleep(50); // let any losing connection finish closing
      expect(p.peers()).toEqual([`q${i}`]);
      expect(q.peers()).toEqual([`p${i}`]);
      expect(linkCount(p)).toBe(1);
      expect(linkCount(q)).toBe(1);
      expect(ev.filter((e) => e.includes('disconnected'))).toEqual([]);
      // the survivor is the connection dialled by the smaller memberId (p < q)
      const links = (t: Transport) => (t as unknown as { links: Map<string, { outbound: boolean }> }).links;
      expect(links(p).get(`q${i}`)!.outbound).toBe(true);
      expect(links(q).get(`p${i}`)!.outbound).toBe(false);
      expect(await p.request(`q${i}`, 'who', null)).toBe(`q${i} hears p${i}`);
      expect(await q.request(`p${i}`, 'who', null)).toBe(`p${i} hears q${i}`);
      // concurrent connect() calls share one dial
      expect(await Promise.all([p.connect(q.url), p.connect(q.url)])).toEqual([`q${i}`, `q${i}`]);
      await Promise.all([p.close(), q.close()]);
    }
  });

  it('refuses a member with the wrong secret: the dialler rejects and both sides log AuthenticationError', { timeout: 10_000 }, async () => {
    const good = await member('good');
    const bad = await member('bad', { secret: 'wrong-secret' });
    try {
      const e = await bad.connect(good.url, 2000).catch((x) => x);
      expect(e).toBeInstanceOf(AuthenticationError);
      expect(e.code).toBe('GRID_ERR_AUTH');
      await until(() => good.logged.some((l) => l.err instanceof AuthenticationError), 2000, 'server log');
      expect(bad.logged.some((l) => l.err instanceof AuthenticationError)).toBe(true);
      expect(good.peers()).toEqual([]);
      expect(bad.peers()).toEqual([]);
      // and the other way round
      const e2 = await good.connect(bad.url, 2000).catch((x) => x);
      expect(e2).toBeInstanceOf(AuthenticationError);
    } finally {
      await Promise.all([good.close(), bad.close()]);
    }
  });

  it('refuses bad options and a port in use with InvalidArgumentError', { timeout: 10_000 }, async () => {
    const base = { host: '127.0.0.1', port: 0, secret: SECRET, memberId: 'opt' };
    expect(await Transport.listen({ ...base, secret: '' }).catch((x) => x)).toBeInstanceOf(InvalidArgumentError);
    expect(await Transport.listen({ ...base, memberId: '' }).catch((x) => x)).toBeInstanceOf(InvalidArgumentError);
    expect(await Transport.listen({ ...base, port: 70000 }).catch((x) => x)).toBeInstanceOf(InvalidArgumentError);
    expect(await Transport.listen({ ...base, maxPayload: -1 }).catch((x) => x)).toBeInstanceOf(InvalidArgumentError);
    const t = await member('holder');
    try {
      const e = await Transport.listen({ ...base, port: Number(new URL(t.url).port) }).catch((x) => x);
      expect(e).toBeInstanceOf(InvalidArgumentError);
      expect(e.data.cause).toBe('EADDRINUSE');
    } finally {
      await t.close();
    }
  });

  it('rejects connect() to a closed port with MemberUnreachableError', { timeout: 10_000 }, async () => {
    const t = await member('lonely');
    const gone = await member('gone');
    const url = gone.url;
    await gone.close();
    try {
      expect(await t.connect(url, 2000).catch((x) => x)).toBeInstanceOf(MemberUnreachableError);
    } finally {
      await t.close();
    }
  });

  it('closes a link whose peer answers nothing, not even a ping, while a replicated write waits (unresponsiveMs), and only then', { timeout: 20_000 }, async () => {
    // requestTimeout 10 s: anything that fails within a few seconds failed by the liveness check
    const a = await member('waiter', { unresponsiveMs: 400, requestTimeout: 10_000 });
    const b = await member('stuck', { requestTimeout: 10_000 });
    let stalled = true;
    b.handle('grid.rep', () => (stalled ? new Promise(() => {}) : true));
    b.handle('grid.op', () => new Promise(() => {}));
    try {
      await a.connect(b.url);
      // 1. a slow non-replication request alone is never cut: it waits for its own timeout
      const slow = a.request('stuck', 'grid.op', null, 1500).catch((x) => x);
      await sleep(1200);
      expect(a.isConnected('stuck')).toBe(true);
      expect(await slow).toBeInstanceOf(TimeoutError);
      // 2. a replicated write the peer does not answer for 4x unresponsiveMs, while the peer reads
      //    its socket (it answers the liveness pings): slow, not gone, so the link stays
      const rep = a.request('stuck', 'grid.rep', null).catch((x) => x);
      await sleep(1600);
      expect(a.isConnected('stuck')).toBe(true);
      // 3. the peer stops reading its socket (a blackhole, a stopped process): no reply, no pong;
      //    the link closes and the write fails as unreachable, long before its 10 s timeout
      const sock = (b as unknown as { links: Map<string, { ws: { _socket: { pause(): void; resume(): void } } }> }).links.get('waiter')!.ws._socket;
      sock.pause();
      const t1 = performance.now();
      const err = await rep;
      const took = performance.now() - t1;
      sock.resume();
      expect(err).toBeInstanceOf(MemberUnreachableError);
      expect(String((err as Error).message)).toMatch(/answered nothing/);
      console.log(`unresponsive link closed ${Math.round(took)} ms after the peer stopped reading (unresponsiveMs 400)`);
      // the link is dialled again and works
      stalled = false;
      await until(() => !a.isConnected('stuck'), 5000, 'the old link to close');
      await a.connect(b.url);
      expect(await a.request('stuck', 'grid.rep', null)).toBe(true);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('close() rejects pending requests with GridClosedError, and the peer sees the disconnect', { timeout: 10_000 }, async () => {
    const a = await member('closer');
    const b = await member('closee');
    b.handle('never', () => new Promise(() => {}));
    await a.connect(b.url);
    const gone = new Promise((r) => b.once('disconnected', r));
    const pending = [a.request('closee', 'never', null), a.request('closee', 'never', null)];
    await tick();
    const closing = a.close();
    for (const p of pending) expect(await p.catch((x) => x)).toBeInstanceOf(GridClosedError);
    await closing;
    expect(await gone).toBe('closer');
    expect(await a.request('closee', 'never', null).catch((x) => x)).toBeInstanceOf(GridClosedError);
    expect(await a.connect(b.url).catch((x) => x)).toBeInstanceOf(GridClosedError);
    await b.close();
  });
});

describe('hostile input', () => {
  let server: Awaited<ReturnType<typeof member>>;
  let peer: Awaited<ReturnType<typeof member>>;
  const protocolErrors: GridError[] = [];

  beforeAll(async () => {
    server = await member('server', { maxPayload: 64 * 1024 });
    peer = await member('peer', { maxPayload: 64 * 1024 });
    server.handle('double', (n: number) => n * 2);
    server.on('protocol-error', (err: GridError) => protocolErrors.push(err));
    await peer.connect(server.url);
  });
  afterAll(async () => {
    await Promise.all([server.close(), peer.close()]);
  });

  /** A raw ws client; resolves once the member closed it. */
  const raw = (localAddress?: string) => rawClient(server.url, localAddress);
  /** A raw ws client that completes the handshake itself (it knows the secret) and seals its frames. */
  const rawAuthed = (id: string) => rawAuthedTo(server.url, SECRET, id);

  async function stillServing(): Promise<void> {
    expect(peer.isConnected('server')).toBe(true);
    const got = await Promise.all([1, 2, 3].map((n) => peer.request('server', 'double', n)));
    expect(got).toEqual([2, 4, 6]);
  }

  const cases: Array<[string, (ws: WebSocket) => void]> = [
    ['random bytes', (ws) => ws.send(randomBytes(200))],
    ['a truncated HELLO', (ws) => ws.send(encodeHello('x', server.url, 'ws://127.0.0.1:1', randomBytes(32)).subarray(0, 30))],
    ['a HELLO one byte too long', (ws) => ws.send(Buffer.concat([encodeHello('x', server.url, 'ws://127.0.0.1:1', randomBytes(32)), Buffer.from([0])]))],
    ['a HELLO whose id is not valid UTF-8', (ws) => {
      const h = encodeHello('xy', server.url, 'ws://127.0.0.1:1', randomBytes(32));
      h[40] = 0xff;
      ws.send(h);
    }],
    ['an empty message', (ws) => ws.send(Buffer.alloc(0))],
    ['a text frame', (ws) => ws.send('hello')],
    ['an unknown frame type', (ws) => ws.send(Buffer.from([77, 1, 2]))],
    ['a msgpack frame (the old HELLO)', (ws) => ws.send(packr.pack([1, 2, 'x', 'ws://127.0.0.1:1', randomBytes(32)]))],
    ['a BATCH before authentication', (ws) => ws.send(packr.pack([F_BATCH, 0, 1, 'double', 2]))],
    ['a HELLO of another protocol version', (ws) => {
      const h = encodeHello('x', server.url, 'ws://127.0.0.1:1', randomBytes(32));
      h[1] = 99;
      ws.send(h);
    }],
    ['a frame over the pre-auth limit (maxPayload before authentication)', (ws) => ws.send(Buffer.alloc(100 * 1024))],
  ];

  for (const [name, send] of cases) {
    it(`closes a connection that sends ${name}, emits ProtocolError, and keeps serving its peers`, { timeout: 10_000 }, async () => {
      const before = protocolErrors.length;
      const { ws, closed } = await raw();
      send(ws);
      const code = await closed;
      expect([1002, 1009]).toContain(code);
      await until(() => protocolErrors.length > before, 2000, 'protocol-error');
      expect(protocolErrors[before]).toBeInstanceOf(ProtocolError);
      expect(server.logged.some((l) => l.err === protocolErrors[before])).toBe(true);
      if (name.includes('maxPayload')) expect(protocolErrors[before]!.data).toMatchObject({ wsCode: 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' });
      await stillServing();
    });
  }

  const afterAuth: Array<[string, unknown]> = [
    ['an unknown frame type', packr.pack([9, 1, 2])],
    ['a second HELLO', encodeHello('x', 'ws://127.0.0.1:1', 'ws://127.0.0.1:1', randomBytes(32))],
    ['a BATCH of the wrong stride', packr.pack([F_BATCH, 0, 1, 'double'])],
    ['a BATCH with a bad request id', packr.pack([F_BATCH, 0, -4, 'double', 1])],
    ['a BATCH with an unknown message kind', packr.pack([F_BATCH, 8, 1, 'double', 1])],
    ['an error reply without a code', packr.pack([F_BATCH, 3, 1, null, { message: 'x' }])],
    ['a truncated BATCH', packr.pack([F_BATCH, 0, 1, 'double', 'a long enough body']).subarray(0, 12)],
    ['a non-array frame', packr.pack({ type: F_BATCH })],
  ];

  for (const [name, frame] of afterAuth) {
    it(`closes an authenticated connection that sends ${name}`, { timeout: 10_000 }, async () => {
      const before = protocolErrors.length;
      const { send, closed } = await rawAuthed(`raw-${before}`);
      send(frame as Buffer);
      expect(await closed).toBe(1002);
      await until(() => protocolErrors.length > before, 2000, 'protocol-error');
      expect(protocolErrors[before]).toBeInstanceOf(ProtocolError);
      await stillServing();
    });
  }

  it('serves a well-formed request from a raw authenticated client (control for the cases above)', { timeout: 10_000 }, async () => {
    const { ws, send, next } = await rawAuthed('raw-good');
    send(packr.pack([F_BATCH, 0, 7, 'double', 21, 0, 8, 'nope', 0]));
    const f = unpackr.unpack(await next()) as unknown[];
    expect(f.slice(0, 5)).toEqual([F_BATCH, 2, 7, null, 42]);
    expect(f[5]).toBe(3);
    expect((f[8] as { code: string }).code).toBe('GRID_ERR_UNSUPPORTED');
    ws.close();
  });

  it('rejects the pending requests of a connection closed for a protocol error with MemberUnreachableError', { timeout: 10_000 }, async () => {
    const mallory = await member('mallory');
    try {
      mallory.handle('never', () => new Promise(() => {}));
      await mallory.connect(server.url);
      const pending = server.request('mallory', 'never', null, 5000);
      await tick();
      // mallory's own link sends garbage, not even sealed (fails authentication)
      const link = (mallory as unknown as { links: Map<string, { ws: WebSocket }> }).links.get('server')!;
      link.ws.send(Buffer.from([0x93, 0x05, 0x00])); // truncated array
      expect(await pending.catch((x) => x)).toBeInstanceOf(MemberUnreachableError);
      await until(() => !mallory.isConnected('server'), 2000, 'mallory disconnected');
      await stillServing();
    } finally {
      await mallory.close();
    }
  });

  it('drops non-WebSocket garbage on the member port without harm', { timeout: 10_000 }, async () => {
    const port = Number(new URL(server.url).port);
    await new Promise<void>((resolve) => {
      const s = tcpConnect(port, '127.0.0.1', () => s.write(randomBytes(512)));
      s.on('error', () => {});
      s.on('close', () => resolve());
      s.resume();
    });
    await stillServing();
  });

  it('times out a connection that never authenticates', { timeout: 10_000 }, async () => {
    const slow = await member('slow-hs', { handshakeTimeout: 200 });
    try {
      const ws = new WebSocket(slow.url, { perMessageDeflate: false });
      ws.on('error', () => {});
      const code = await new Promise<number>((r) => ws.on('close', (c) => r(c)));
      expect(code).toBe(4004);
      expect(slow.logged.some((l) => l.err instanceof TimeoutError)).toBe(true);
    } finally {
      await slow.close();
    }
  });
});

describe('decoding untrusted maps', () => {
  const hostile = () => JSON.parse('{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"a":{"__proto__":{"polluted":"yes"}}}');

  function checkClean(decoded: any): void {
    expect(({} as any).polluted).toBeUndefined();
    expect((Object.prototype as any).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    expect(decoded.polluted).toBeUndefined();
    expect(Object.getPrototypeOf(decoded.a)).toBe(Object.prototype);
    expect(decoded.a.polluted).toBeUndefined();
  }

  it('cannot change Object.prototype or a decoded object prototype through __proto__ or constructor keys', { timeout: 5000 }, () => {
    const bytes = new Packr({ useRecords: false }).pack(hostile());
    expect(bytes.includes(Buffer.from('__proto__'))).toBe(true); // the hostile key really is on the wire
    checkClean(unpackr.unpack(bytes));
    // the same with msgpackr records defined inside the message by the sender
    const rec = new Packr({ useRecords: true }).pack(hostile());
    checkClean(unpackr.unpack(rec));
  });

  it('hands a handler a body with a __proto__ key that cannot pollute anything', { timeout: 10_000 }, async () => {
    const a = await member('pa');
    const b = await member('pb');
    try {
      let got: any;
      b.handle('take', (body) => {
        got = body;
        return Object.keys(body).sort();
      });
      await a.connect(b.url);
      expect(await a.request('pb', 'take', hostile())).toEqual(['__proto_', 'a', 'constructor']);
      checkClean(got);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
