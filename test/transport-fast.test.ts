// FAST frames (src/transport/fast.ts): the compact records of get / set / getMany / replicated
// writes between two Transports, and hostile variants of each record sent by a raw authenticated
// client: the connection is closed with a logged ProtocolError, the server never sees any record
// of the bad frame, and it keeps serving everyone else.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { FastCall, Transport } from '../dist/transport/index.js';
import type { FastPeer, FastServer, TransportOptions } from '../dist/transport/index.js';
import {
  ABSENT, FAST_MAGIC, FastWriter, O_GET, O_MAP, O_MGET, O_REP, O_SET, R_OK, R_STATE, R_STATES, readF64, type FastReader,
} from '../dist/transport/fast.js';
import { F_BATCH, packr } from '../dist/transport/wire.js';
import { rawAuthed as rawAuthedTo } from './fixtures/raw-peer.js';
import { GetCall, MgetCall, SetCall, promiseOf, sendGet, sendMget, sendSet } from '../dist/cluster/fast-ops.js';
import { ValueEncoder } from '../dist/storage/codec.js';
import { MemberUnreachableError, PartitionMovedError, ProtocolError, TimeoutError, UnsupportedError, GridError } from '../dist/errors.js';

const SECRET = 'fast-test-secret';
const T_MSGPACK = 0;
const T_STRING = 1;
const T_BYTES = 2;
const T_NUMBER = 3;
type Logged = { level: string; message: string; err: unknown };
type Stored = { type: number; exp: number; bytes: Buffer };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function member(memberId: string, extra: Partial<TransportOptions> = {}): Promise<Transport & { logged: Logged[] }> {
  const logged: Logged[] = [];
  const t = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId, log: (level, message, err) => logged.push({ level, message, err }), ...extra });
  return Object.assign(t, { logged });
}

/** Request ids the memory server saw on SETs, in order; `n` numbers the ids the tests send. */
const rids = Object.assign([] as Array<string | undefined>, { n: 0 });

/** A FastServer over a plain Map, recording every record it is handed. */
function memoryServer() {
  const data = new Map<string, Stored>();
  const calls: string[] = [];
  const put = (w: ReturnType<FastPeer['room']>, v: Stored | undefined) => {
    if (v === undefined) {
      w.u8(ABSENT);
      return;
    }
    w.u8(v.type);
    w.f64(v.exp);
    w.u32(v.bytes.length);
    w.bytes(v.bytes, 0, v.bytes.length);
  };
  const size = (v: Stored | undefined) => (v === undefined ? 1 : 13 + v.bytes.length);
  const server: FastServer = {
    get(peer, r) {
      const k = `${r.map.name}/${r.key()}`;
      calls.push(`get ${k}`);
      const v = data.get(k);
      const w = peer.room(5 + size(v));
      w.u8(R_STATE);
      w.u32(r.id);
      put(w, v);
    },
    set(peer, r) {
      const k = `${r.map.name}/${r.key()}`;
      calls.push(`set ${k}`);
      rids.push(r.rid());
      data.set(k, { type: r.vType, exp: r.vExp, bytes: Buffer.from(r.buf.subarray(r.vOff, r.vOff + r.vLen)) });
      const w = peer.room(5);
      w.u8(R_OK);
      w.u32(r.id);
    },
    mget(peer, r) {
      const vs: Array<Stored | undefined> = [];
      for (let i = 0; i < r.count; i++) {
        const k = `${r.map.name}/${r.buf.toString('utf8', r.keyOffs[i], r.keyOffs[i] + r.keyLens[i])}`;
        calls.push(`mget ${k}`);
        vs.push(data.get(k));
      }
      const w = peer.room(9 + vs.reduce((a, v) => a + size(v), 0));
      w.u8(R_STATES);
      w.u32(r.id);
      w.u32(vs.length);
      for (const v of vs) put(w, v);
    },
    rep(peer, r) {
      const k = `${r.map.name}/${r.key()}`;
      calls.push(`rep ${k} v${r.version}`);
      if (r.tableVersion !== r.version + 100) throw new Error('REP lost its table version');
      if (r.version < 5) throw new PartitionMovedError('stale table', { version: 5 });
      if (r.vType < 0) data.delete(k);
      else data.set(k, { type: r.vType, exp: r.vExp, bytes: Buffer.from(r.buf.subarray(r.vOff, r.vOff + r.vLen)) });
      const w = peer.room(5);
      w.u8(R_OK);
      w.u32(r.id);
    },
  };
  return { data, calls, server };
}

/** A FAST call that resolves with the raw reply record fields (for REP and odd replies). */
class RawCall extends FastCall {
  res!: (v: { op: number; type: number; count: number }) => void;
  rej!: (e: unknown) => void;
  readonly done: Promise<{ op: number; type: number; count: number }>;
  constructor(readonly reply: number) {
    super();
    this.done = new Promise((res, rej) => {
      this.res = res;
      this.rej = rej;
    });
  }
  settle(r: FastReader): void {
    this.res({ op: r.op, type: r.vType, count: r.count });
  }
  reject(e: unknown): void {
    this.rej(e);
  }
}

const noRetry = {
  getRouted: () => Promise.reject(new Error('no retry in this test')),
  setRouted: () => Promise.reject(new Error('no retry in this test')),
};

describe('FAST requests between two transports', () => {
  let a: Awaited<ReturnType<typeof member>>;
  let b: Awaited<ReturnType<typeof member>>;
  const mem = memoryServer();
  const enc = new ValueEncoder(1 << 20);
  let peer: FastPeer;

  const set = (map: string, key: string, value: unknown, exp = 0) => {
    expect(enc.encode(value)).toBe(0);
    const rid = `m-test.${(++rids.n).toString(36)}`;
    const c = new SetCall(noRetry, 0, key, value, exp, rid);
    const p = promiseOf(c);
    expect(sendSet(peer, map, key, Buffer.byteLength(key), rid, enc, exp, c)).toBe(true);
    return p;
  };
  const get = (map: string, key: string) => {
    const c = new GetCall(undefined, 0, key);
    const p = promiseOf(c);
    expect(sendGet(peer, map, key, Buffer.byteLength(key), c)).toBe(true);
    return p;
  };

  beforeAll(async () => {
    a = await member('a', { requestTimeout: 300 });
    b = await member('b');
    b.serveFast(mem.server);
    b.handle('echo', (x) => x);
    await a.connect(b.url);
    peer = a.peer('b')!;
  });
  afterAll(async () => {
    await Promise.all([a.close(), b.close()]);
  });

  it('sets and gets values of every type, with expiry, as the store encodes them', { timeout: 10_000 }, async () => {
    const values: unknown[] = ['plain', 'ünïcødé ✓', '', 42.5, -0, Number.NaN, Buffer.from([1, 2, 3]), { a: [1, 'x', null], b: true }, null];
    await Promise.all(values.map((v, i) => set('m', `k${i}`, v)));
    const got = await Promise.all(values.map((_, i) => get('m', `k${i}`)));
    expect(got.slice(0, 4)).toEqual(values.slice(0, 4));
    expect(Object.is(got[4], -0)).toBe(true);
    expect(Number.isNaN(got[5])).toBe(true);
    expect(Buffer.isBuffer(got[6]) && (got[6] as Buffer).equals(Buffer.from([1, 2, 3]))).toBe(true);
    expect(got[7]).toEqual(values[7]);
    expect(got[8]).toBeNull();
    expect(await get('m', 'absent')).toBeUndefined();
    expect(await get('other-map', 'k0')).toBeUndefined(); // maps are separate names on the wire
    await set('m', 'expired', 'x', Date.now() - 1);
    expect(await get('m', 'expired')).toBeUndefined(); // the reader drops an expired state
    expect(mem.data.get('m/k1')!.bytes.toString('utf8')).toBe('ünïcødé ✓');
    // every SET carried its own request id to the server
    expect(rids.length).toBe(rids.n);
    expect(new Set(rids).size).toBe(rids.n);
    expect(rids.every((r) => typeof r === 'string' && /^m-test\.[0-9a-z]+$/.test(r))).toBe(true);
  });

  it('gets many keys in one MGET record, in key order', { timeout: 10_000 }, async () => {
    await Promise.all(['x', 'y', 'z'].map((k, i) => set('many', k, i)));
    const c = new MgetCall(4);
    const p = promiseOf(c);
    expect(sendMget(peer, 'many', ['z', 'nope', 'x', 'y'], c)).toBe(true);
    expect(await p).toEqual([2, undefined, 0, 1]);
  });

  it('coalesces the records of one tick into one frame each way, in order with BATCH messages', { timeout: 10_000 }, async () => {
    const s0 = { ...(a as unknown as { _stats: Record<string, number> })._stats };
    b.handle('note', (x) => {
      mem.calls.push(`note ${String(x)}`);
    });
    const gets = Array.from({ length: 100 }, (_, i) => get('m', `k${i % 4}`));
    a.notify('b', 'note', 'between');
    const more = set('m', 'late', 'v');
    await Promise.all([...gets, more]);
    const s1 = (a as unknown as { _stats: Record<string, number> })._stats;
    // FAST frame (100 GETs), BATCH frame (the notification), FAST frame (the SET)
    expect(s1.framesOut - s0.framesOut).toBe(3);
    const tail = mem.calls.slice(-102);
    expect(tail.slice(0, 100).every((c) => c.startsWith('get m/k'))).toBe(true);
    expect(tail.slice(100)).toEqual(['note between', 'set m/late']);
  });

  it('replicated writes (REP) apply, delete on an absent state, and error replies reach the call', { timeout: 10_000 }, async () => {
    const rep = (key: string, version: number, value: Buffer | null) => {
      const c = new RawCall(R_OK);
      const mi = peer.mapIndex('r');
      const w = peer.room(64 + (value?.length ?? 0));
      w.u8(O_REP);
      w.u32(peer.call(c));
      w.u16(mi);
      w.f64(version); // the partition's epoch
      w.f64(version + 100); // the sender's table version
      w.u16(Buffer.byteLength(key));
      w.str(key, Buffer.byteLength(key));
      w.u8(0); // no request id
      if (value === null) w.u8(ABSENT);
      else {
        w.u8(T_STRING);
        w.f64(0);
        w.u32(value.length);
        w.bytes(value, 0, value.length);
      }
      return c.done;
    };
    expect((await rep('k', 7, Buffer.from('copy'))).op).toBe(R_OK);
    expect(mem.data.get('r/k')!.bytes.toString()).toBe('copy');
    await rep('k', 7, null);
    expect(mem.data.has('r/k')).toBe(false);
    const e = await rep('k', 3, Buffer.from('old')).catch((x) => x);
    expect(e).toBeInstanceOf(PartitionMovedError);
    expect((e as GridError).data).toEqual({ version: 5 });
    expect(a.isConnected('b')).toBe(true);
  });

  it('answers FAST requests with UnsupportedError where no FastServer is registered, and keeps the connection', { timeout: 10_000 }, async () => {
    const plain = await member('plain');
    try {
      await a.connect(plain.url);
      const p2 = a.peer('plain')!;
      const c = new GetCall(undefined, 0, 'k');
      const pr = promiseOf(c);
      sendGet(p2, 'm', 'k', 1, c);
      expect(await pr.catch((x) => x)).toBeInstanceOf(UnsupportedError);
      expect(a.isConnected('plain')).toBe(true);
    } finally {
      await plain.close();
    }
  });

  it('times a FAST call out without a timer of its own, and rejects pending calls when the connection closes', { timeout: 10_000 }, async () => {
    const silent = await member('silent');
    try {
      silent.serveFast({ get() {}, set() {}, mget() {}, rep() {} }); // never answers
      await a.connect(silent.url);
      const p2 = a.peer('silent')!;
      const c = new GetCall(undefined, 0, 'k');
      const pr = promiseOf(c);
      sendGet(p2, 'm', 'k', 1, c);
      expect(await pr.catch((x) => x)).toBeInstanceOf(TimeoutError); // requestTimeout 300 ms, swept
      const c2 = new GetCall(undefined, 0, 'k');
      const pr2 = promiseOf(c2);
      sendGet(p2, 'm', 'k', 1, c2);
      await sleep(20);
      a.disconnect('silent');
      expect(await pr2.catch((x) => x)).toBeInstanceOf(MemberUnreachableError);
    } finally {
      await silent.close();
    }
  });
});

describe('hostile FAST frames', () => {
  let server: Awaited<ReturnType<typeof member>>;
  let peerT: Awaited<ReturnType<typeof member>>;
  const mem = memoryServer();
  const protocolErrors: GridError[] = [];

  beforeAll(async () => {
    server = await member('server', { maxPayload: 64 * 1024 });
    peerT = await member('peer');
    server.serveFast(mem.server);
    server.handle('double', (n: number) => n * 2);
    server.on('protocol-error', (err: GridError) => protocolErrors.push(err));
    await peerT.connect(server.url);
  });
  afterAll(async () => {
    await Promise.all([server.close(), peerT.close()]);
  });

  const rawAuthed = (id: string) => rawAuthedTo(server.url, SECRET, id);

  async function stillServing(): Promise<void> {
    expect(peerT.isConnected('server')).toBe(true);
    expect(await Promise.all([1, 2, 3].map((n) => peerT.request('server', 'double', n)))).toEqual([2, 4, 6]);
  }

  /** Frame builder: FAST_MAGIC, then whatever `fill` writes. */
  const frame = (fill: (w: FastWriter) => void): Buffer => {
    const w = new FastWriter();
    w.ensure(70 * 1024);
    w.u8(FAST_MAGIC);
    fill(w);
    return Buffer.from(w.buf.subarray(0, w.len));
  };
  const mapRec = (w: FastWriter, idx: number, name: string) => {
    w.u8(O_MAP);
    w.u16(idx);
    w.u16(Buffer.byteLength(name));
    w.str(name, Buffer.byteLength(name));
  };
  /** [op, id, map] and, when given, the u16-prefixed ASCII key. */
  const head = (w: FastWriter, op: number, id: number, map: number, key?: string) => {
    w.u8(op);
    w.u32(id);
    w.u16(map);
    if (key === undefined) return;
    w.u16(key.length);
    w.str(key, key.length);
  };
  const getRec = (w: FastWriter, id: number, map: number, key: string) => head(w, O_GET, id, map, key);
  const setRec = (w: FastWriter, id: number, map: number, key: string, type: number, exp: number, value: Buffer, len = value.length, rid: Buffer = Buffer.alloc(0)) => {
    head(w, O_SET, id, map, key);
    w.u8(rid.length);
    w.bytes(rid, 0, rid.length);
    w.u8(type);
    w.f64(exp);
    w.u32(len);
    w.bytes(value, 0, value.length);
  };
  /** MAP 'm', then a REP of key 'k' at epoch `version` (and table version `tv`) whose state is the single byte `tag`. */
  const repRec = (w: FastWriter, version: number, tag: number, rid: Buffer = Buffer.alloc(0), tv = 7) => {
    mapRec(w, 0, 'm');
    head(w, O_REP, 1, 0);
    w.f64(version);
    w.f64(tv);
    w.u16(1);
    w.str('k', 1);
    w.u8(rid.length);
    w.bytes(rid, 0, rid.length);
    w.u8(tag);
  };
  const goodSet = (w: FastWriter) => {
    mapRec(w, 0, 'm');
    setRec(w, 1, 0, 'victim', T_STRING, 0, Buffer.from('evil'));
  };

  const cases: Array<[string, Buffer]> = [
    ['an empty FAST frame', frame(() => {})],
    ['a record of an unknown type', frame((w) => w.u8(0x42))],
    ['a truncated GET', frame((w) => {
      mapRec(w, 0, 'm');
      getRec(w, 1, 0, 'some-key');
    }).subarray(0, 16)],
    ['a GET with request id 0', frame((w) => {
      mapRec(w, 0, 'm');
      getRec(w, 0, 0, 'k');
    })],
    ['a GET of a map index never named', frame((w) => getRec(w, 1, 3, 'k'))],
    ['a MAP out of order', frame((w) => mapRec(w, 1, 'm'))],
    ['a MAP with an empty name', frame((w) => mapRec(w, 0, ''))],
    ['a MAP with a name over 256 bytes', frame((w) => mapRec(w, 0, 'n'.repeat(300)))],
    ['a SET with an unknown value type', frame((w) => {
      mapRec(w, 0, 'm');
      setRec(w, 1, 0, 'k', 9, 0, Buffer.from('x'));
    })],
    ['a SET with a negative expiry', frame((w) => {
      mapRec(w, 0, 'm');
      setRec(w, 1, 0, 'k', T_STRING, -5, Buffer.from('x'));
    })],
    ['a SET with a NaN expiry', frame((w) => {
      mapRec(w, 0, 'm');
      setRec(w, 1, 0, 'k', T_STRING, Number.NaN, Buffer.from('x'));
    })],
    ['a SET of a number that is not 8 bytes', frame((w) => {
      mapRec(w, 0, 'm');
      setRec(w, 1, 0, 'k', T_NUMBER, 0, Buffer.alloc(4));
    })],
    ['a SET whose value length overruns the frame', frame((w) => {
      mapRec(w, 0, 'm');
      setRec(w, 1, 0, 'k', T_BYTES, 0, Buffer.from('short'), 60_000);
    })],
    ['a SET without a value', frame((w) => {
      mapRec(w, 0, 'm');
      head(w, O_SET, 1, 0, 'k');
      w.u8(0);
      w.u8(ABSENT);
    })],
    ['a SET whose request id is over 64 bytes', frame((w) => {
      mapRec(w, 0, 'm');
      setRec(w, 1, 0, 'k', T_STRING, 0, Buffer.from('x'), 1, Buffer.alloc(65, 0x61));
    })],
    ['a SET whose request id has a control byte', frame((w) => {
      mapRec(w, 0, 'm');
      setRec(w, 1, 0, 'k', T_STRING, 0, Buffer.from('x'), 1, Buffer.from('m-1.\n'));
    })],
    ['a REP whose request id overruns the frame', frame((w) => {
      mapRec(w, 0, 'm');
      head(w, O_REP, 1, 0);
      w.f64(1);
      w.f64(1);
      w.u16(1);
      w.str('k', 1);
      w.u8(40);
      w.str('short', 5);
    })],
    ['a REP whose request id has a byte over 0x7e', frame((w) => repRec(w, 3, ABSENT, Buffer.from([0x61, 0xff])))],
    ['an MGET whose key count overruns the frame', frame((w) => {
      mapRec(w, 0, 'm');
      head(w, O_MGET, 1, 0);
      w.u32(0xffffffff);
      w.u16(1);
      w.str('k', 1);
    })],
    ['a REP with a negative epoch', frame((w) => repRec(w, -1, ABSENT))],
    ['a REP with a NaN table version', frame((w) => repRec(w, 3, ABSENT, Buffer.alloc(0), Number.NaN))],
    ['a truncated REP state', frame((w) => repRec(w, 9, T_MSGPACK))],
    ['a STATES reply whose count overruns the frame', frame((w) => {
      w.u8(R_STATES);
      w.u32(1);
      w.u32(1000);
      w.u8(ABSENT);
    })],
    ['a valid SET followed by a truncated record (nothing of the frame may be applied)', frame((w) => {
      goodSet(w);
      getRec(w, 2, 0, 'whatever');
    }).subarray(0, -3)],
    ['a valid SET followed by an unknown record', frame((w) => {
      goodSet(w);
      w.u8(0x7f);
    })],
  ];

  for (const [name, bytes] of cases) {
    it(`closes the connection that sends ${name}, logs a ProtocolError, and keeps serving`, { timeout: 10_000 }, async () => {
      const before = protocolErrors.length;
      const calls = mem.calls.length;
      const { send, closed } = await rawAuthed(`raw-${before}`);
      send(bytes);
      expect(await closed).toBe(1002);
      await until(() => protocolErrors.length > before, 2000, 'protocol-error');
      expect(protocolErrors[before]).toBeInstanceOf(ProtocolError);
      expect(protocolErrors[before].message).toContain('FAST');
      // logged, unless peer-caused logging is past its burst (then the line is counted as dropped)
      const logged = server.logged.some((l) => l.err === protocolErrors[before]);
      if (!logged) expect((server as unknown as { logDropped: number }).logDropped).toBeGreaterThan(0);
      expect(mem.calls.length).toBe(calls); // no record of the frame reached the server
      expect(mem.data.has('m/victim')).toBe(false);
      await stillServing();
    });
  }

  it('serves a well-formed FAST frame from a raw authenticated client (control for the cases above)', { timeout: 10_000 }, async () => {
    const { ws, send, next } = await rawAuthed('raw-good');
    send(frame((w) => {
      goodSet(w);
      getRec(w, 2, 0, 'victim');
    }));
    const r = await next();
    expect(r[0]).toBe(FAST_MAGIC);
    expect(r[1]).toBe(R_OK);
    expect(r.readUInt32LE(2)).toBe(1);
    expect(r[6]).toBe(R_STATE);
    expect(r.readUInt32LE(7)).toBe(2);
    expect(r[11]).toBe(T_STRING);
    expect(readF64(r, 12)).toBe(0);
    expect(r.readUInt32LE(20)).toBe(4);
    expect(r.toString('utf8', 24, 28)).toBe('evil');
    mem.data.delete('m/victim');
    ws.close();
  });

  it('a map named __proto__ is only a name', { timeout: 10_000 }, async () => {
    const { ws, send, next } = await rawAuthed('raw-proto');
    send(frame((w) => {
      mapRec(w, 0, '__proto__');
      setRec(w, 1, 0, 'polluted', T_STRING, 0, Buffer.from('yes'));
    }));
    expect((await next())[1]).toBe(R_OK);
    expect(mem.data.get('__proto__/polluted')!.bytes.toString()).toBe('yes');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    ws.close();
  });

  it('closes the connection of a peer answering a FAST request with a reply of another kind, and rejects the request', { timeout: 10_000 }, async () => {
    const { send, next, closed } = await rawAuthed('raw-liar');
    const before = protocolErrors.length;
    const p = server.peer('raw-liar')!;
    const c = new GetCall(undefined, 0, 'k');
    const pr = promiseOf(c);
    void (async () => {
      let d = await next();
      while (d[0] !== FAST_MAGIC) d = await next();
      // find the GET's id: MAP record first (1 + 2 + 2 + name), then the GET
      const at = 1 + 5 + d.readUInt16LE(4);
      expect(d[at]).toBe(O_GET);
      const id = d.readUInt32LE(at + 1);
      send(frame((w) => {
        w.u8(R_OK); // a GET is answered by a STATE, never an OK
        w.u32(id);
      }));
    })();
    sendGet(p, 'm', 'k', 1, c);
    expect(await pr.catch((x) => x)).toBeInstanceOf(MemberUnreachableError);
    expect(await closed).toBe(1002);
    await until(() => protocolErrors.length > before, 2000, 'protocol-error');
    await stillServing();
  });

  it('refuses a FAST frame before authentication', { timeout: 10_000 }, async () => {
    const before = protocolErrors.length;
    const ws = new WebSocket(server.url, { perMessageDeflate: false });
    const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
    ws.on('error', () => {});
    await new Promise((r) => ws.once('open', r));
    ws.send(frame(goodSet));
    expect(await closed).toBe(1002);
    await until(() => protocolErrors.length > before, 2000, 'protocol-error');
    expect(mem.data.has('m/victim')).toBe(false);
    await stillServing();
  });

  it('still closes a BATCH reply to a FAST request', { timeout: 10_000 }, async () => {
    const { send, next, closed } = await rawAuthed('raw-batch-liar');
    const p = server.peer('raw-batch-liar')!;
    const c = new GetCall(undefined, 0, 'k');
    const pr = promiseOf(c);
    void (async () => {
      let d = await next();
      while (d[0] !== FAST_MAGIC) d = await next();
      const at = 1 + 5 + d.readUInt16LE(4);
      send(packr.pack([F_BATCH, 2, d.readUInt32LE(at + 1), null, 'not a state']));
    })();
    sendGet(p, 'm2', 'k', 1, c);
    expect(await pr.catch((x) => x)).toBeInstanceOf(MemberUnreachableError);
    expect(await closed).toBe(1002);
    await stillServing();
  });
});
