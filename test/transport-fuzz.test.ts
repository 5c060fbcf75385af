// Property tests (fast-check): random and mutated frames at every stage of a connection (first
// message, during the handshake, sealed BATCH and FAST frames after authentication). Each run
// checks that the member stays up, and that a frame that closed its link applied nothing; after
// each property a legitimate member still joins and gets answers. Long runs: `npm run fuzz`.
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Transport } from '../dist/transport/index.js';
import { FastWriter, FAST_MAGIC, O_GET, O_MAP, O_MGET, O_SET } from '../dist/transport/fast.js';
import { F_AUTH, encodeHello, packr, unpackr } from '../dist/transport/wire.js';
import { rawAuthed } from './fixtures/raw-peer.js';

const SECRET = 'fuzz-test-secret-0123456789abcdef';
const RUNS = Number(process.env.FUZZ_RUNS ?? 60);

/** Applies byte-level mutations to a copy of base: flip, set, truncate, insert, duplicate a slice. */
const mutation = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), v: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 16 }) }),
  fc.record({ op: fc.constant('dup' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 64 }) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

function mutate(base: Uint8Array, ops: Mutation[]): Buffer {
  let b = Buffer.from(base);
  for (const m of ops) {
    const at = b.length === 0 ? 0 : m.at % (b.length + 1);
    if (m.op === 'flip' && b.length > 0) b[at % b.length] ^= 1 << m.bit;
    else if (m.op === 'set' && b.length > 0) b[at % b.length] = m.v;
    else if (m.op === 'truncate') b = b.subarray(0, at);
    else if (m.op === 'insert') b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
    else if (m.op === 'dup') b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + m.len), b.subarray(at)]);
  }
  return b;
}

/** A frame: fully random, or a mutated well-formed one. */
const frameFrom = (bases: Uint8Array[]) =>
  fc.oneof(
    fc.uint8Array({ maxLength: 6000 }),
    fc.tuple(fc.constantFrom(...bases), fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([b, ops]) => mutate(b, ops)),
  );

/** Waits for the first of: a message, the close (returns its code), or ms. */
function outcome(ws: WebSocket, ms: number): Promise<'message' | number | 'timeout'> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve('timeout'), ms);
    ws.once('message', () => {
      clearTimeout(t);
      resolve('message');
    });
    ws.once('close', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.on('error', () => {});
    ws.once('open', () => resolve(ws));
    ws.once('close', () => reject(new Error('closed before open')));
  });
}

describe('transport fuzzing (fast-check)', () => {
  let m: Transport;
  let fastCalls = 0;
  let applied = 0;

  beforeAll(async () => {
    m = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: 'fuzz-victim', log: () => undefined });
    m.handle('echo', (n: number) => n);
    m.handle('apply', () => ++applied);
    m.serveFast({
      get: (peer, r) => {
        fastCalls++;
        peer.replyError(r.id, new Error('stub'));
      },
      set: (peer, r) => {
        fastCalls++;
        peer.replyError(r.id, new Error('stub'));
      },
      mget: (peer, r) => {
        fastCalls++;
        peer.replyError(r.id, new Error('stub'));
      },
      rep: (peer, r) => {
        fastCalls++;
        peer.replyError(r.id, new Error('stub'));
      },
    });
  });
  afterAll(async () => {
    await m.close();
  });

  async function legitimate(): Promise<void> {
    const c = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: `legit-${randomBytes(4).toString('hex')}`, log: () => undefined });
    try {
      const id = await c.connect(m.url, 5000);
      expect(await c.request(id, 'echo', 7, 5000)).toBe(7);
    } finally {
      await c.close();
    }
  }

  it('survives random and mutated first messages (before HELLO), then serves a legitimate member', { timeout: 120_000 }, async () => {
    const hello = encodeHello('fuzzer', m.url, 'ws://127.0.0.1:1', randomBytes(32));
    await fc.assert(
      fc.asyncProperty(frameFrom([hello, packr.pack([1, 2, 'x', m.url, randomBytes(32)])]), async (f) => {
        const ws = await open(m.url);
        ws.send(f);
        const r = await outcome(ws, 3000);
        ws.terminate();
        // a frame is either a valid HELLO (answered with CHALLENGE) or closes the link; it never hangs
        expect(r === 'message' || typeof r === 'number').toBe(true);
      }),
      { numRuns: RUNS },
    );
    await legitimate();
  });

  it('survives random and mutated AUTH frames during the handshake, then serves a legitimate member', { timeout: 120_000 }, async () => {
    const auth = Buffer.concat([Buffer.from([F_AUTH]), randomBytes(32)]);
    await fc.assert(
      fc.asyncProperty(frameFrom([auth]), async (f) => {
        const ws = await open(m.url);
        ws.send(encodeHello(`fuzzer-${randomBytes(3).toString('hex')}`, m.url, 'ws://127.0.0.1:1', randomBytes(32)));
        expect(await outcome(ws, 3000)).toBe('message'); // CHALLENGE
        ws.send(f);
        const r = await outcome(ws, 3000);
        ws.terminate();
        expect(typeof r).toBe('number'); // without the secret, no AUTH passes: closed
      }),
      { numRuns: RUNS },
    );
    await legitimate();
  });

  /** Sends one sealed frame on a fresh authenticated connection, then an echo; returns whether the link survived, and checks a closed link applied nothing. */
  async function afterAuth(f: Buffer): Promise<boolean> {
    const p = await rawAuthed(m.url, SECRET, `fz-${randomBytes(4).toString('hex')}`);
    const a0 = applied;
    const c0 = fastCalls;
    p.send(f);
    p.send(packr.pack([5, 0, 0x7fff_fff0, 'echo', 'ping']));
    const alive = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 5000);
      void p.closed.then(() => {
        clearTimeout(t);
        resolve(false);
      });
      void (async () => {
        for (;;) {
          let b: Buffer;
          try {
            b = await p.next();
          } catch {
            return;
          }
          if (b[0] === FAST_MAGIC) continue;
          const fr = unpackr.unpack(b) as unknown[];
          for (let i = 1; i < fr.length; i += 4) {
            if (fr[i + 1] === 0x7fff_fff0) {
              clearTimeout(t);
              resolve(true);
              return;
            }
          }
        }
      })();
    });
    if (!alive) {
      // validated whole before anything runs: a frame that closed its link applied nothing
      expect(applied).toBe(a0);
      expect(fastCalls).toBe(c0);
    }
    p.ws.terminate();
    return alive;
  }

  it('survives random and mutated sealed BATCH frames after authentication, applying nothing of a frame that closes the link', { timeout: 180_000 }, async () => {
    const bases = [
      packr.pack([5, 0, 1, 'apply', { a: [1, 2, 3], b: 'x' }]),
      packr.pack([5, 1, 0, 'apply', null, 2, 5, null, 'r', 3, 6, null, { code: 'GRID_ERR_INTERNAL', message: 'm' }]),
    ];
    let closed = 0;
    await fc.assert(
      fc.asyncProperty(fc.oneof(frameFrom(bases), fc.anything().map((v) => packr.pack([5, 1, 0, 'apply', v]))), async (f) => {
        if (!(await afterAuth(f))) closed++;
      }),
      { numRuns: RUNS },
    );
    console.log(`BATCH fuzz: ${RUNS} frames, ${closed} closed their link, ${applied} applied`);
    await legitimate();
  });

  it('survives random and mutated sealed FAST frames after authentication, applying nothing of a frame that closes the link', { timeout: 180_000 }, async () => {
    const w = new FastWriter();
    w.u8(FAST_MAGIC);
    w.u8(O_MAP);
    w.u16(0);
    w.u16(1);
    w.str('m', 1);
    w.u8(O_GET);
    w.u32(1);
    w.u16(0);
    w.u16(1);
    w.str('k', 1);
    w.u8(O_SET);
    w.u32(2);
    w.u16(0);
    w.u16(1);
    w.str('k', 1);
    w.u8(0); // no request id
    w.u8(1); // T_STRING
    w.f64(0);
    w.u32(2);
    w.str('vv', 2);
    w.u8(O_MGET);
    w.u32(3);
    w.u16(0);
    w.u32(2);
    w.u16(1);
    w.str('a', 1);
    w.u16(1);
    w.str('b', 1);
    const base = w.buf.subarray(0, w.len);
    let closed = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(frameFrom([base]), fc.uint8Array({ minLength: 1, maxLength: 400 }).map((b) => Buffer.concat([Buffer.from([FAST_MAGIC]), b]))),
        async (f) => {
          if (!(await afterAuth(f))) closed++;
        },
      ),
      { numRuns: RUNS },
    );
    console.log(`FAST fuzz: ${RUNS} frames, ${closed} closed their link, ${fastCalls} FAST calls served`);
    await legitimate();
  });
});
