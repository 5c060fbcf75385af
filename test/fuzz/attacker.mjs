// The attacker of test/fuzz/fuzz.mjs, in a worker thread of its own (so its work does not sit in
// the event loop of the legitimate client that measures latency). It speaks WebSocket over raw TCP
// sockets: the HTTP upgrade and the first frame go out in one write, without waiting for the
// 101 (ws reads what follows the upgrade request as the connection's first bytes), and a sealed
// frame goes out together with AUTH (the session keys are known once CHALLENGE has arrived). So a
// frame costs the member what the stage costs and the attacker no round trip it can avoid.
//
// `lanes` connections are under way at once, spread over `addresses` loopback source addresses
// (127.0.0.2, 127.0.0.3, ...: a distributed attacker; one address alone is held to
// maxHandshakesPerAddress unauthenticated connections). Stages, each frame picked at random:
//   first   the first message of a connection: random bytes (up to 6,000, over the 4 KiB pre-auth
//           limit), a mutated HELLO, a text frame, or bytes that are not WebSocket framing at all
//   hs      after a valid HELLO and the member's CHALLENGE: a mutated AUTH, random bytes, a 2nd HELLO
//   batch   after authentication: a sealed mutated or random BATCH
//   fast    after authentication: a sealed mutated or random FAST frame
//   tamper  after authentication: a well-formed frame sealed and then altered, replayed or cut
//   gen     after authentication: a sealed frame built from the grammar with random contents: a
//           BATCH of 1-8 messages of random kind, id, type and body (random msgpack values: nested
//           maps and arrays, '__proto__' and 'constructor' keys, control characters, bytes,
//           undefined), or a FAST frame of GET records with random ids and keys
// The first two stages cost a connection each; after authentication a share `gen` (--gen, default
// 0.9) of the frames come from the grammar and the rest are mutated, random or tampered ones, which
// usually close the link, so a connection carries several frames; the counts by stage are reported.
// After authentication a connection carries frames until the member closes it (the usual outcome
// of a malformed frame) or `perLink` frames went. A frame is counted when the member reacted to it
// (a reply, CHALLENGE, a close frame or closing the socket) or, after authentication, when it had
// 25 ms to do so (notifications and replies to nothing draw no answer); frames on connections the
// member shed before upgrading are counted apart (`shed`), never as fuzzed.
// `pipeline` (--pipeline K, default 1): after authentication a connection writes K frames at once
// (one write; the first frame still goes alone with AUTH) before it waits for the member's
// reaction, as a secret holder flooding its link would; each of them is counted. `fastShare`
// (--fast-share P, default 0.5): the share of grammar frames that are FAST frames (the others are
// BATCHes, of which about a third carry a message the member refuses, closing the link).
import { randomBytes } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import net from 'node:net';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { F_AUTH, FrameCipher, encodeHello, encodeProof, packr, parseChallenge, proof, sessionKeys } from '../../dist/transport/wire.js';
import { sched } from './clock.mjs';

const { url, secret, frames, seed: seed0, lanes, addresses, perLink, gen, rate = 0, nice = 0, pipeline = 1, fastShare = 0.5 } = workerData;

// --attacker-nice: Linux nice values are per thread; /proc/thread-self names this thread's id
if (nice !== 0) {
  try {
    setPriority(Number(readlinkSync('/proc/thread-self').split('/').pop()), nice);
  } catch (err) {
    console.error(`attacker: cannot renice its thread: ${err.message}`);
  }
}
// --rate: frames are spaced 1/rate s apart over all lanes (a lane waits for its slot before each frame)
let nextAt = 0;
const pace = () => {
  if (rate <= 0) return undefined;
  const now = performance.now();
  const at = Math.max(nextAt, now);
  nextAt = at + 1000 / rate;
  return at - now >= 1 ? new Promise((res) => setTimeout(res, at - now)) : undefined;
};
const { hostname: host, port } = new URL(url);

// xorshift32 per lane: reproducible frame contents for a --seed (the interleaving is not)
function rng(seed) {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
  const int = (n) => Math.floor(next() * n);
  const bytes = (n) => {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = int(256);
    return b;
  };
  const mutate = (base) => {
    let b = Buffer.from(base);
    const ops = 1 + int(4);
    for (let k = 0; k < ops; k++) {
      const at = int(b.length + 1);
      switch (int(5)) {
        case 0: if (b.length) b[at % b.length] ^= 1 << int(8); break;
        case 1: if (b.length) b[at % b.length] = int(256); break;
        case 2: b = b.subarray(0, at); break;
        case 3: b = Buffer.concat([b.subarray(0, at), bytes(int(16)), b.subarray(at)]); break;
        default: b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + 1 + int(64)), b.subarray(at)]);
      }
    }
    return b;
  };
  return { next, int, bytes, mutate, pick: (a) => a[int(a.length)] };
}

// ---------------------------------------------------------------- WebSocket over a raw socket

const upgrade = () =>
  Buffer.from(`GET / HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`, 'latin1');

/** A client frame (masked with a zero key, as members do), opcode 2 (binary) unless given. */
function wsFrame(payload, opcode = 2) {
  const n = payload.length;
  const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const b = Buffer.allocUnsafe(head + 4 + n);
  b[0] = 0x80 | opcode;
  if (n < 126) b[1] = 0x80 | n;
  else if (n < 65536) {
    b[1] = 0x80 | 126;
    b.writeUInt16BE(n, 2);
  } else {
    b[1] = 0x80 | 127;
    b.writeUInt32BE(0, 2);
    b.writeUInt32BE(n, 6);
  }
  b.writeUInt32BE(0, head);
  payload.copy(b, head + 4);
  return b;
}

/** Events of one connection, in order: open (101 seen), msg, close (close frame), refused, end (socket gone). */
class Conn {
  constructor(localAddress) {
    this.events = [];
    this.waiter = undefined;
    this.ended = false;
    this.upgraded = false;
    this.buf = Buffer.alloc(0);
    this.s = net.connect({ host, port: Number(port), localAddress });
    this.s.setNoDelay(true);
    this.s.on('data', (d) => this.onData(d));
    this.s.on('error', () => {});
    this.s.on('close', () => {
      this.ended = true;
      this.push({ t: 'end' });
    });
  }

  write(b) {
    if (!this.ended) this.s.write(b);
  }

  destroy() {
    this.s.destroy();
  }

  push(e) {
    const w = this.waiter;
    if (w !== undefined) {
      this.waiter = undefined;
      clearTimeout(w.timer);
      w.resolve(e);
    } else this.events.push(e);
  }

  /** The next event, or {t: 'timeout'} after ms. */
  next(ms) {
    if (this.events.length > 0) return Promise.resolve(this.events.shift());
    if (this.ended) return Promise.resolve({ t: 'end' });
    return new Promise((resolve) => {
      this.waiter = {
        resolve,
        timer: setTimeout(() => {
          this.waiter = undefined;
          resolve({ t: 'timeout' });
        }, ms),
      };
    });
  }

  onData(d) {
    this.buf = this.buf.length > 0 ? Buffer.concat([this.buf, d]) : d;
    if (!this.upgraded) {
      const i = this.buf.indexOf('\r\n\r\n');
      if (i < 0) return;
      if (!this.buf.toString('latin1', 0, 12).startsWith('HTTP/1.1 101')) {
        this.push({ t: 'refused' });
        this.s.destroy();
        return;
      }
      this.upgraded = true;
      this.buf = this.buf.subarray(i + 4);
      this.push({ t: 'open' });
    }
    for (;;) {
      const b = this.buf;
      if (b.length < 2) return;
      let len = b[1] & 0x7f;
      let at = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = b.readUInt32BE(2) * 2 ** 32 + b.readUInt32BE(6);
        at = 10;
      }
      if (b.length < at + len) return;
      const op = b[0] & 0x0f;
      const payload = b.subarray(at, at + len);
      this.buf = b.subarray(at + len);
      if (op === 8) this.push({ t: 'close', code: len >= 2 ? payload.readUInt16BE(0) : 1005 });
      else if (op === 2) this.push({ t: 'msg', data: payload });
    }
  }
}

// ---------------------------------------------------------------- frames

const MY_URL = 'ws://127.0.0.1:1';
const helloOf = (id) => encodeHello(id, url, MY_URL, randomBytes(32));
const batchBases = [
  packr.pack([5, 0, 1, 'apply', { a: [1, 2, 3], b: 'x' }]),
  packr.pack([5, 1, 0, 'apply', null, 2, 5, null, 'r']),
  packr.pack([5, 0, 7, 'get', 'k1', 3, 9, null, { code: 'GRID_ERR_X', message: 'm' }]),
];
// MAP 0 'm', then GET id 1 map 0 key 'k'
const fastBases = [
  // MAP 0 'm', GET 'k'
  Buffer.from('c1' + '01' + '0000' + '0100' + '6d' + '02' + '01000000' + '0000' + '0100' + '6b', 'hex'),
  // MAP 0 'm', SET 'k' with request id 'a.1' of the string 'vv' (protocol 4 layout)
  Buffer.from('c1' + '01' + '0000' + '0100' + '6d' + '03' + '02000000' + '0000' + '0100' + '6b' + '03' + '612e31' + '01' + '0000000000000000' + '02000000' + '7676', 'hex'),
];

// message types: the member's handlers, unknown ones, odd names ('stats' is the harness's own probe, left out)
const TYPES = ['apply', 'get', 'nosuch', '', '__proto__', 'constructor', 'toString'];
const KEYS = ['a', 'b', '__proto__', 'constructor', 'toString', 'x\u0000y', 'k\u202e'];

/** A random msgpack-able value, at most `depth` levels of containers. */
function value(r, depth) {
  switch (r.int(depth > 0 ? 12 : 9)) {
    case 0: return r.int(2 ** 31) - 2 ** 30;
    case 1: return (r.next() - 0.5) * 1e12;
    case 2: return String.fromCharCode(...Array.from({ length: r.int(32) }, () => r.int(0x3000)));
    case 3: return r.bytes(r.int(64));
    case 4: return null;
    case 5: return undefined;
    case 6: return r.next() < 0.5;
    case 7: return `k${r.int(1000)}`;
    case 8: return r.pick(KEYS);
    case 9:
    case 10: return Array.from({ length: r.int(6) }, () => value(r, depth - 1));
    default: {
      const o = {};
      for (let i = r.int(5); i > 0; i--) o[r.next() < 0.5 ? r.pick(KEYS) : `f${r.int(100)}`] = value(r, depth - 1);
      return o;
    }
  }
}

/** A BATCH from the grammar: [5, (kind, id, type, body) x n] with random contents (some combinations are refused, as they should be). */
function genBatch(r) {
  const f = [5];
  for (let n = 1 + r.int(8); n > 0; n--) {
    const kind = r.int(10) < 6 ? 0 : r.int(4);
    const id = kind === 1 ? 0 : 1 + r.int(2 ** 31 - 2);
    const type = kind >= 2 ? null : r.next() < 0.8 ? r.pick(TYPES) : String(value(r, 0));
    const body = kind === 3 ? { code: r.pick(['GRID_ERR_TIMEOUT', 'GRID_ERR_X', '']), message: String(value(r, 0)) } : value(r, 3);
    f.push(kind, id, type, body);
  }
  try {
    return packr.pack(f);
  } catch {
    return packr.pack([5, 1, 0, 'nosuch', null]);
  }
}

/** A FAST frame from the grammar (layout of fast.ts): MAP 0 'm' on the link's first one, then 1-16 GET records with random ids and keys. */
function genFast(r, link) {
  const parts = [Buffer.from([0xc1])];
  if (!link.mapped) {
    link.mapped = true;
    parts.push(Buffer.from('01' + '0000' + '0100' + '6d', 'hex'));
  }
  for (let n = 1 + r.int(16); n > 0; n--) {
    const key = r.next() < 0.5 ? Buffer.from(`k${r.int(1000)}`) : r.bytes(r.int(64));
    const h = Buffer.alloc(9);
    h[0] = 0x02;
    h.writeUInt32LE(1 + r.int(2 ** 31 - 2), 1);
    h.writeUInt16LE(0, 5);
    h.writeUInt16LE(key.length, 7);
    parts.push(h, key);
  }
  return Buffer.concat(parts);
}

const counts = { first: 0, hs: 0, batch: 0, fast: 0, tamper: 0, gen: 0, shed: 0, noReaction: 0, links: 0 };
let claimed = 0;
const claim = () => (claimed < frames ? (claimed++, true) : false);
const unclaim = () => claimed--;

/** Waits for the 101; false when the member refused or dropped the connection before upgrading it. */
async function opened(c) {
  const e = await c.next(3000);
  if (e.t === 'open') return true;
  counts.shed++;
  c.destroy();
  return false;
}

/** Waits until the member reacts (a message, a close, the socket ends) or ms pass. */
async function reaction(c, ms) {
  const e = await c.next(ms);
  if (e.t === 'timeout') counts.noReaction++;
  return e;
}

async function firstMessage(r, c) {
  const k = r.int(10);
  const first = k < 4 ? wsFrame(r.bytes(r.int(6000))) : k < 8 ? wsFrame(r.mutate(helloOf('fz'))) : k === 8 ? wsFrame(r.bytes(r.int(200)), 1) : r.bytes(1 + r.int(64));
  c.write(Buffer.concat([upgrade(), first]));
  if (!(await opened(c))) return false;
  await reaction(c, 1500);
  counts.first++;
  return true;
}

async function duringHandshake(r, c, lane) {
  c.write(Buffer.concat([upgrade(), wsFrame(helloOf(`fz-${lane}-${r.int(1e9)}`))]));
  if (!(await opened(c))) return false;
  const ch = await c.next(3000);
  if (ch.t !== 'msg') return false;
  const k = r.int(4);
  const f = k < 2 ? r.mutate(encodeProof(F_AUTH, r.bytes(32))) : k === 2 ? r.bytes(r.int(5000)) : r.mutate(helloOf('fz'));
  c.write(wsFrame(f));
  await reaction(c, 1500);
  counts.hs++;
  return true;
}

/** The WebSocket bytes of one sealed fuzz frame of the given kind. */
function sealedFrame(r, tx, kind, link) {
  if (kind === 'gen') return wsFrame(tx.seal(r.next() < 1 - fastShare ? genBatch(r) : genFast(r, link)));
  if (kind === 'batch') return wsFrame(tx.seal(r.next() < 0.3 ? r.bytes(1 + r.int(2000)) : r.mutate(r.pick(batchBases))));
  if (kind === 'fast') return wsFrame(tx.seal(r.next() < 0.3 ? Buffer.concat([Buffer.from([0xc1]), r.bytes(r.int(400))]) : r.mutate(r.pick(fastBases))));
  // tamper: a well-formed frame sealed, then a bit flipped, cut short, or sent twice (a replay)
  const s = tx.seal(r.next() < 0.5 ? r.pick(batchBases) : r.pick(fastBases));
  const k = r.int(3);
  if (k === 0) {
    s[r.int(s.length)] ^= 1 << r.int(8);
    return wsFrame(s);
  }
  if (k === 1) return wsFrame(s.subarray(0, r.int(s.length)));
  return Buffer.concat([wsFrame(s), wsFrame(s)]);
}

async function afterAuth(r, c, lane) {
  const id = `fz-auth-${lane}-${r.int(1e9)}`;
  const n = randomBytes(32);
  c.write(Buffer.concat([upgrade(), wsFrame(encodeHello(id, url, MY_URL, n))]));
  if (!(await opened(c))) return false;
  const chE = await c.next(3000);
  const ch = chE.t === 'msg' ? parseChallenge(Buffer.from(chE.data)) : undefined;
  if (ch === undefined || typeof ch === 'string') return false;
  const t = { dialNonce: n, listenNonce: ch.nonce, diallerId: id, listenerId: ch.id, diallerUrl: MY_URL, dialledUrl: url };
  const tx = new FrameCipher(sessionKeys(secret, t).toListener);
  counts.links++;
  let welcomed = false;
  let sent = 0;
  const link = { mapped: false };
  for (;;) {
    if (sent > 0) {
      const p = pace();
      if (p !== undefined) await p;
      if (!claim()) break;
    }
    const outs = sent === 0 ? [wsFrame(encodeProof(F_AUTH, proof(secret, 'dialler', t)))] : [];
    for (let k = 0; ; k++) {
      const kind = r.next() >= gen ? r.pick(['batch', 'batch', 'fast', 'fast', 'tamper']) : 'gen';
      outs.push(sealedFrame(r, tx, kind, link));
      sent++;
      counts[kind]++;
      // the first frame goes with AUTH alone: more than 8 messages before the handshake is handled cut the link
      if (outs.length === 2 || k + 1 >= pipeline || sent >= perLink || !claim()) break;
    }
    c.write(outs.length === 1 ? outs[0] : Buffer.concat(outs));
    let e = await reaction(c, welcomed ? 25 : 1500);
    if (!welcomed && e.t === 'msg') {
      welcomed = true;
      e = await reaction(c, 25); // the answer to the frame, if any
    }
    if (e.t === 'close' || e.t === 'end' || e.t === 'refused' || sent >= perLink) break;
  }
  return true;
}

async function lane(i) {
  const r = rng((seed0 * 2654435761 + i * 40503) >>> 0);
  const localAddress = `127.0.0.${2 + (i % addresses)}`;
  for (;;) {
    const p = pace();
    if (p !== undefined) await p;
    if (!claim()) break;
    const c = new Conn(localAddress);
    const stage = r.int(4);
    let ok = false;
    try {
      ok = stage === 0 ? await firstMessage(r, c) : stage === 1 ? await duringHandshake(r, c, i) : await afterAuth(r, c, i);
    } finally {
      c.destroy();
    }
    if (!ok) {
      unclaim();
      await new Promise((res) => setTimeout(res, 5)); // shed: back off a little
    }
  }
}

const timer = setInterval(() => parentPort.postMessage({ progress: { ...counts }, sched: sched() }), 1000);
parentPort.postMessage({ sched: sched() });
await Promise.all(Array.from({ length: lanes }, (_, i) => lane(i)));
clearInterval(timer);
parentPort.postMessage({ done: { ...counts } });
