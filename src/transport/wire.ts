/**
 * Wire format of the member-to-member transport (protocol version 6: 4 added request ids to FAST SET and REP records; 5 made
 * CP commands positional arrays in cp.req, cp.propose and the metadata log, cluster/metadata/cp-state.ts; 6 carries the plain
 * values of grid.op sia/cas/cmp/agg and their results as the value codec's msgpack bytes, cluster/routed-map.ts packPlain). Every frame is one binary
 * WebSocket message.
 *
 * Before authentication only four fixed-layout frames exist, parsed with bounds checks and no
 * general decoder (a peer without the secret never reaches msgpack). Integers are big-endian;
 * strings UTF-8 (invalid UTF-8 is refused); every length is explicit and the frame must end
 * exactly where its lengths say.
 *
 * ```
 * HELLO     dialler -> listener
 *   off 0   u8   type = 1
 *   off 1   u8   version = 3
 *   off 2   u16  idLen       dialler's member id        (1..MAX_ID_BYTES, at most MAX_ID_CHARS chars)
 *   off 4   u16  dialledLen  the url the dialler dialled (1..MAX_URL_BYTES)
 *   off 6   u16  urlLen      the dialler's own listen url (1..MAX_URL_BYTES)
 *   off 8   nonce[32]
 *   off 40  id | dialled url | own url
 * CHALLENGE listener -> dialler
 *   off 0   u8   type = 2
 *   off 1   u8   version = 3
 *   off 2   u16  idLen       listener's member id
 *   off 4   nonce[32]
 *   off 36  id
 * AUTH      dialler -> listener     u8 type = 3 | proof[32]
 * WELCOME   listener -> dialler     u8 type = 4 | proof[32]
 * ```
 *
 * The dialler proves first (AUTH), so a peer without the secret never obtains a MAC computed by
 * the listener; the listener proves second (WELCOME). Both proofs cover the version, both nonces,
 * both ids, the dialler's url and the **dialled url** (which the listener first checks is its own
 * advertised url), each length-prefixed so no two different handshakes hash the same bytes; a
 * role label separates the two proofs so one can never be replayed as the other.
 *
 * After WELCOME every frame, both ways, is sealed (see `Sealer`): AES-256-GCM under a
 * per-direction key derived with HKDF-SHA256 from the secret, both nonces and the same transcript,
 * with a 96-bit nonce made of 4 zero bytes and a 64-bit per-direction frame counter that is never
 * sent. A sealed frame is `ciphertext | tag[16]`; a frame that fails its tag (tampered, truncated,
 * replayed, reordered, dropped before it, or from another session) closes the connection and
 * nothing of it is applied. On a TLS connection (`cluster.tls`) both proofs also cover the TLS
 * exporter value of that connection (`Transcript.channel`), which a relay terminating TLS on
 * both sides cannot make equal, so the authenticated session is that TLS connection; its records
 * already encrypt, authenticate and order every frame, and frames go unsealed inside it. The
 * plaintext is one of:
 *
 * ```
 * BATCH     msgpack array [5, (kind, id, type, body) x n]              either way
 * FAST      binary records, first byte 0xC1 (fast.ts)                 either way
 *   kind 0 REQUEST  id > 0   type:str   body
 *   kind 1 NOTIFY   0        type:str   body
 *   kind 2 REPLY    id > 0   null       body
 *   kind 3 ERROR    id > 0   null       {code:str, message:str, data?}
 * ```
 *
 * A BATCH is one flat array with a fixed stride of 4, so a frame of n messages costs one array
 * and one encode, and validating it is one loop without per-message objects. Even from an
 * authenticated peer it is scanned (`scanMsgpack`) before msgpackr sees it: no extension types
 * (msgpackr's Error, RegExp, Date, record and typed-array extensions; only `undefined` passes),
 * no 64-bit integers (BigInt), no containers as map keys, and bounded element count and depth.
 */
import { createHash, createHmac, createCipheriv, createDecipheriv, createSecretKey, hkdfSync, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import { Packr, Unpackr } from 'msgpackr';

/**
 * Members of different versions refuse each other at the handshake. 9 (2026-11-27): the CP state
 * machine keeps a queued wait's record past maxResults later commands (cp-state.ts remember), and
 * copies drop a value they cannot hold instead of refusing it; replicas of the CP log must apply
 * it alike, so a cluster never mixes the two. 10 (2026-11-28): `grid.pressure`, a copy's report of
 * the age it evicts at, on which primaries evict older entries (cluster/replicas.ts).
 */
export const PROTOCOL_VERSION = 10;

export const F_HELLO = 1;
export const F_CHALLENGE = 2;
export const F_AUTH = 3;
export const F_WELCOME = 4;
export const F_BATCH = 5;

export const K_REQUEST = 0;
export const K_NOTIFY = 1;
export const K_REPLY = 2;
export const K_ERROR = 3;

/** Items per message inside a BATCH frame. */
export const STRIDE = 4;

export const NONCE_BYTES = 32;
export const PROOF_BYTES = 32;
export const MAX_ID_CHARS = 256;
export const MAX_URL_CHARS = 1024;
/** UTF-8 bytes of an id / url in a handshake frame. */
export const MAX_ID_BYTES = 1024;
export const MAX_URL_BYTES = 1024;

// handshake layouts (offsets)
export const HELLO_VERSION = 1;
export const HELLO_ID_LEN = 2;
export const HELLO_DIALLED_LEN = HELLO_ID_LEN + 2;
export const HELLO_URL_LEN = HELLO_DIALLED_LEN + 2;
export const HELLO_NONCE = HELLO_URL_LEN + 2;
export const HELLO_HEAD = HELLO_NONCE + NONCE_BYTES; // 40
export const CHALLENGE_VERSION = 1;
export const CHALLENGE_ID_LEN = 2;
export const CHALLENGE_NONCE = CHALLENGE_ID_LEN + 2;
export const CHALLENGE_HEAD = CHALLENGE_NONCE + NONCE_BYTES; // 36
export const PROOF_FRAME_BYTES = 1 + PROOF_BYTES;
/** Largest handshake frame (a HELLO with the longest id and urls), and so the pre-auth receive limit's floor. */
export const MAX_HANDSHAKE_BYTES = HELLO_HEAD + MAX_ID_BYTES + 2 * MAX_URL_BYTES;

/** AES-GCM tag appended to every sealed frame. */
export const TAG_BYTES = 16;

/** Close codes (4000-4999 are for applications). */
export const CLOSE_NORMAL = 1000;
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_PROTOCOL = 1002;
export const CLOSE_TOO_BIG = 1009;
export const CLOSE_DISCONNECT = 4000;
export const CLOSE_AUTH = 4001;
export const CLOSE_DUPLICATE = 4002;
export const CLOSE_SAME_ID = 4003;
export const CLOSE_HANDSHAKE_TIMEOUT = 4004;
export const CLOSE_BUSY = 4005;
/** The dialler dialled a url that is not the listener's advertised url (a relay, or a wrong alias). */
export const CLOSE_WRONG_URL = 4006;
/** A sealed frame failed authentication. */
export const CLOSE_INTEGRITY = 4007;
/** Writes or lease renewals waited on the peer for unresponsiveMs with no reply at all (see Transport). */
export const CLOSE_UNRESPONSIVE = 4008;

/**
 * Encoder: no records (they would need structures shared by both ends), so every frame is plain
 * msgpack. The returned buffers are never overwritten by later encodes (msgpackr starts each
 * encode after the previous one in its scratch buffer), so they can be handed to ws.send.
 */
export const packr = new Packr({ useRecords: false });

/**
 * Decoder, used only on BATCH frames of authenticated peers that passed `scanMsgpack`.
 * useRecords: false and no structures; maps become plain objects, and msgpackr renames a
 * `__proto__` key to `__proto_`, so a decoded map can neither replace its own prototype nor reach
 * Object.prototype (checked by test/transport.test.ts). `constructor` stays an ordinary own
 * property. The structured-clone extension (back-references) is off. Trailing bytes and
 * truncated input throw.
 */
export const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, structuredClone: false });

export function nonce(): Buffer {
  return randomBytes(NONCE_BYTES);
}

export function isBytes(x: unknown, n: number): x is Uint8Array {
  return x instanceof Uint8Array && x.length === n;
}

export function isName(x: unknown, max: number): x is string {
  return typeof x === 'string' && x.length > 0 && x.length <= max;
}

/** Characters of a member id (Raft's rule; the log's ids are these without `@`). */
const MEMBER_ID_CHARS = /^[A-Za-z0-9._:@-]+$/;

/**
 * Whether `x` may be the id of an authenticated peer: 1 to MAX_ID_CHARS letters, digits and
 * `._:@-`. An id is the `from` of every message the cluster layers handle and appears in their log
 * lines and errors; any string was taken, and a secret holder's id with a newline and terminal
 * escapes reached those lines as it came.
 */
export function isMemberIdName(x: unknown): x is string {
  return isName(x, MAX_ID_CHARS) && MEMBER_ID_CHARS.test(x);
}

// ---------------------------------------------------------------- handshake frames

export interface Hello {
  version: number;
  id: string;
  dialled: string;
  url: string;
  nonce: Buffer;
}

export interface Challenge {
  version: number;
  id: string;
  nonce: Buffer;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Strict UTF-8 of b[from..to), or undefined when invalid. */
function text(b: Buffer, from: number, to: number): string | undefined {
  try {
    return utf8.decode(b.subarray(from, to));
  } catch {
    return undefined;
  }
}

export function encodeHello(id: string, dialled: string, url: string, n: Uint8Array): Buffer {
  const ib = Buffer.from(id, 'utf8');
  const db = Buffer.from(dialled, 'utf8');
  const ub = Buffer.from(url, 'utf8');
  const b = Buffer.allocUnsafe(HELLO_HEAD + ib.length + db.length + ub.length);
  b[0] = F_HELLO;
  b[HELLO_VERSION] = PROTOCOL_VERSION;
  b.writeUInt16BE(ib.length, HELLO_ID_LEN);
  b.writeUInt16BE(db.length, HELLO_DIALLED_LEN);
  b.writeUInt16BE(ub.length, HELLO_URL_LEN);
  b.set(n, HELLO_NONCE);
  ib.copy(b, HELLO_HEAD);
  db.copy(b, HELLO_HEAD + ib.length);
  ub.copy(b, HELLO_HEAD + ib.length + db.length);
  return b;
}

/**
 * Parses a HELLO (first byte already known to be F_HELLO). Returns the fields, or what is wrong.
 * A HELLO of another version is reported as such before its body is looked at.
 */
export function parseHello(b: Buffer): Hello | string {
  if (b.length < HELLO_HEAD) return b.length >= 2 && b[HELLO_VERSION] !== PROTOCOL_VERSION ? `unsupported protocol version ${b[HELLO_VERSION]}` : 'truncated HELLO';
  const version = b[HELLO_VERSION];
  if (version !== PROTOCOL_VERSION) return `unsupported protocol version ${version}`;
  const il = b.readUInt16BE(HELLO_ID_LEN);
  const dl = b.readUInt16BE(HELLO_DIALLED_LEN);
  const ul = b.readUInt16BE(HELLO_URL_LEN);
  if (il === 0 || il > MAX_ID_BYTES || dl === 0 || dl > MAX_URL_BYTES || ul === 0 || ul > MAX_URL_BYTES) return 'HELLO field length out of range';
  if (b.length !== HELLO_HEAD + il + dl + ul) return 'HELLO length does not match its fields';
  const id = text(b, HELLO_HEAD, HELLO_HEAD + il);
  const dialled = text(b, HELLO_HEAD + il, HELLO_HEAD + il + dl);
  const url = text(b, HELLO_HEAD + il + dl, b.length);
  if (!isName(id, MAX_ID_CHARS) || !isName(dialled, MAX_URL_CHARS) || !isName(url, MAX_URL_CHARS)) return 'HELLO field is not valid UTF-8 of the allowed length';
  return { version, id, dialled, url, nonce: Buffer.from(b.subarray(HELLO_NONCE, HELLO_HEAD)) };
}

export function encodeChallenge(id: string, n: Uint8Array): Buffer {
  const ib = Buffer.from(id, 'utf8');
  const b = Buffer.allocUnsafe(CHALLENGE_HEAD + ib.length);
  b[0] = F_CHALLENGE;
  b[CHALLENGE_VERSION] = PROTOCOL_VERSION;
  b.writeUInt16BE(ib.length, CHALLENGE_ID_LEN);
  b.set(n, CHALLENGE_NONCE);
  ib.copy(b, CHALLENGE_HEAD);
  return b;
}

export function parseChallenge(b: Buffer): Challenge | string {
  if (b.length < CHALLENGE_HEAD) return 'truncated CHALLENGE';
  const version = b[CHALLENGE_VERSION];
  if (version !== PROTOCOL_VERSION) return `unsupported protocol version ${version}`;
  const il = b.readUInt16BE(CHALLENGE_ID_LEN);
  if (il === 0 || il > MAX_ID_BYTES) return 'CHALLENGE id length out of range';
  if (b.length !== CHALLENGE_HEAD + il) return 'CHALLENGE length does not match its fields';
  const id = text(b, CHALLENGE_HEAD, b.length);
  if (!isName(id, MAX_ID_CHARS)) return 'CHALLENGE id is not valid UTF-8 of the allowed length';
  return { version, id, nonce: Buffer.from(b.subarray(CHALLENGE_NONCE, CHALLENGE_HEAD)) };
}

export function encodeProof(type: typeof F_AUTH | typeof F_WELCOME, p: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(PROOF_FRAME_BYTES);
  b[0] = type;
  b.set(p, 1);
  return b;
}

/** The proof of an AUTH / WELCOME frame, or undefined when the frame has the wrong length. */
export function parseProof(b: Buffer): Buffer | undefined {
  return b.length === PROOF_FRAME_BYTES ? b.subarray(1) : undefined;
}

// ---------------------------------------------------------------- proofs and keys

/** What both proofs and the session keys bind: who dialled whom, at which url, with which nonces. */
export interface Transcript {
  dialNonce: Uint8Array;
  listenNonce: Uint8Array;
  diallerId: string;
  listenerId: string;
  /** The dialler's own listen url (as announced in HELLO). */
  diallerUrl: string;
  /** The url the dialler dialled (the listener's advertised url). */
  dialledUrl: string;
  /**
   * On a TLS connection: the TLS exporter value of that connection (CHANNEL_BINDING_LABEL,
   * CHANNEL_BINDING_BYTES), the same at both ends of one TLS connection and different on each
   * side of a relay that terminates TLS; undefined on a plain connection.
   */
  channel?: Uint8Array;
}

/** RFC 8446 section 7.5 exporter label and length of the TLS channel binding. */
export const CHANNEL_BINDING_LABEL = 'EXPORTER-shardgrid-channel-binding';
export const CHANNEL_BINDING_BYTES = 32;

function field(h: { update(b: Uint8Array): unknown }, s: string): void {
  const b = Buffer.from(s, 'utf8');
  const len = Buffer.allocUnsafe(4);
  len.writeUInt32BE(b.length, 0);
  h.update(len);
  h.update(b);
}

function transcript(h: { update(b: Uint8Array): unknown }, t: Transcript): void {
  h.update(t.dialNonce);
  h.update(t.listenNonce);
  field(h, t.diallerId);
  field(h, t.listenerId);
  field(h, t.diallerUrl);
  field(h, t.dialledUrl);
  if (t.channel !== undefined) {
    // only on TLS links, so plain links hash exactly what protocol 3 always hashed; every field is
    // length-prefixed, so a transcript with the binding never equals one without
    field(h, 'tls channel binding');
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32BE(t.channel.length, 0);
    h.update(len);
    h.update(t.channel);
  }
}

/**
 * The MAC each side sends. `role` separates the dialler's proof from the listener's, so one can
 * never be replayed as the other.
 */
export function proof(secret: string, role: 'dialler' | 'listener', t: Transcript): Buffer {
  const h = createHmac('sha256', secret);
  field(h, `shardgrid/${PROTOCOL_VERSION} ${role}`);
  transcript(h, t);
  return h.digest();
}

/** Constant-time comparison of a received proof with the expected one. */
export function proofMatches(expected: Buffer, got: unknown): boolean {
  return isBytes(got, PROOF_BYTES) && timingSafeEqual(expected, got);
}

export interface SessionKeys {
  /** Seals dialler -> listener frames. */
  toListener: KeyObject;
  /** Seals listener -> dialler frames. */
  toDialler: KeyObject;
}

/**
 * Session keys: HKDF-SHA256 with the secret as input keying material, both nonces as salt, and
 * as info a label and the SHA-256 of the transcript (ids and urls can exceed HKDF's 1024-byte
 * info limit). 64 bytes out: the first 32 seal dialler -> listener, the next 32 the reverse.
 */
export function sessionKeys(secret: string, t: Transcript): SessionKeys {
  const th = createHash('sha256');
  transcript(th, t);
  const info = Buffer.concat([Buffer.from(`shardgrid/${PROTOCOL_VERSION} session keys`, 'utf8'), th.digest()]);
  const salt = Buffer.concat([t.dialNonce, t.listenNonce]);
  const okm = Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), salt, info, 64));
  const keys = { toListener: createSecretKey(okm.subarray(0, 32)), toDialler: createSecretKey(okm.subarray(32, 64)) };
  okm.fill(0);
  return keys;
}

/**
 * One direction of a session: seals (or opens) frame after frame with AES-256-GCM, the 96-bit
 * nonce being 4 zero bytes and the 64-bit count of frames sealed so far in this direction. The
 * counter is never sent: the receiver uses its own count, so a replayed, reordered or dropped
 * frame fails its tag like a tampered one. One cipher object and one tag per frame.
 */
export class FrameCipher {
  private hi = 0;
  private lo = 0;
  private readonly iv = Buffer.alloc(12);

  constructor(private readonly key: KeyObject) {}

  private step(): void {
    const iv = this.iv;
    iv.writeUInt32BE(this.hi, 4);
    iv.writeUInt32BE(this.lo, 8);
    if (this.lo === 0xffffffff) {
      this.lo = 0;
      this.hi++;
    } else {
      this.lo++;
    }
  }

  /** ciphertext | tag of plain[0..len). */
  seal(plain: Uint8Array, len: number = plain.length): Buffer {
    this.step();
    const c = createCipheriv('aes-256-gcm', this.key, this.iv);
    const out = Buffer.allocUnsafe(len + TAG_BYTES);
    const ct = c.update(len === plain.length ? plain : plain.subarray(0, len));
    ct.copy(out, 0);
    c.final();
    c.getAuthTag().copy(out, len);
    return out;
  }

  /** The plaintext of a sealed frame, or undefined when it fails authentication (the caller closes the link). */
  open(frame: Buffer): Buffer | undefined {
    const n = frame.length - TAG_BYTES;
    if (n < 1) return undefined;
    this.step();
    try {
      const d = createDecipheriv('aes-256-gcm', this.key, this.iv, { authTagLength: TAG_BYTES });
      d.setAuthTag(frame.subarray(n));
      const p = d.update(frame.subarray(0, n));
      d.final(); // throws when the tag does not match: the plaintext above is then never used
      return p;
    } catch {
      return undefined;
    }
  }
}

// ---------------------------------------------------------------- bounded decoding

/** Limits of scanMsgpack; both named options of the Transport. */
export interface DecodeLimits {
  /** Values (scalars and containers, map keys included) in one frame. */
  maxElements: number;
  /** Nesting of arrays and maps (the frame's own array is depth 1). */
  maxDepth: number;
}

export interface ScanFailure {
  what: string;
  /** True when a limit was exceeded (FrameLimitError), false when the frame is malformed or uses a refused type. */
  limit: boolean;
}

/**
 * Walks a msgpack frame without building anything, before msgpackr decodes it: the frame must be
 * one array; no extension types except msgpackr's `undefined` (fixext1 type 0, data 0), so none
 * of msgpackr's Error / RegExp / Date / Set / typed-array / record / bundled-string extensions
 * are ever constructed; no uint64 / int64 (they decode to BigInt); map keys are scalars; every
 * length and count fits the frame; at most `maxElements` values and `maxDepth` nesting. Iterative:
 * a deep frame costs no stack. Returns undefined when the frame may be decoded.
 */
export function scanMsgpack(b: Uint8Array, lim: DecodeLimits): ScanFailure | undefined {
  const n = b.length;
  if (n === 0 || !((b[0] >= 0x90 && b[0] <= 0x9f) || b[0] === 0xdc || b[0] === 0xdd)) return { what: 'frame is not an array', limit: false };
  const lefts: number[] = [];
  const maps: boolean[] = [];
  let o = 0;
  let left = 1;
  let inMap = false;
  let elements = 0;
  const len16 = (at: number) => (b[at] << 8) | b[at + 1];
  const len32 = (at: number) => ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
  for (;;) {
    while (left === 0) {
      if (lefts.length === 0) return o === n ? undefined : { what: 'trailing bytes', limit: false };
      left = lefts.pop()!;
      inMap = maps.pop()!;
    }
    if (o >= n) return { what: 'truncated', limit: false };
    const isKey = inMap && (left & 1) === 0;
    left--;
    if (++elements > lim.maxElements) return { what: `more than ${lim.maxElements} values`, limit: true };
    const t = b[o];
    let count = -1; // container items (maps: 2 per entry) when t opens a container
    let map = false;
    let skip = 0; // payload bytes after the header
    let head = 1;
    if (t <= 0x7f || t >= 0xe0) {
      // fixint
    } else if (t >= 0xa0 && t <= 0xbf) {
      skip = t & 0x1f;
    } else if (t <= 0x8f) {
      count = (t & 0x0f) * 2;
      map = true;
    } else if (t <= 0x9f) {
      count = t & 0x0f;
    } else {
      switch (t) {
        case 0xc0: case 0xc2: case 0xc3: break;
        case 0xcc: case 0xd0: skip = 1; break;
        case 0xcd: case 0xd1: skip = 2; break;
        case 0xce: case 0xd2: case 0xca: skip = 4; break;
        case 0xcb: skip = 8; break;
        case 0xc4: case 0xd9: head = 2; break;
        case 0xc5: case 0xda: head = 3; break;
        case 0xc6: case 0xdb: head = 5; break;
        case 0xdc: head = 3; break;
        case 0xdd: head = 5; break;
        case 0xde: head = 3; map = true; break;
        case 0xdf: head = 5; map = true; break;
        case 0xd4:
          // msgpackr's undefined: fixext1, type 0, data 0
          if (o + 3 > n) return { what: 'truncated', limit: false };
          if (b[o + 1] !== 0 || b[o + 2] !== 0 || isKey) return { what: 'extension type', limit: false };
          o += 3;
          continue;
        case 0xcf: case 0xd3: return { what: '64-bit integer', limit: false };
        case 0xc1: return { what: 'reserved byte 0xc1', limit: false };
        default: return { what: 'extension type', limit: false }; // c7 c8 c9 d5 d6 d7 d8
      }
      if (o + head > n) return { what: 'truncated', limit: false };
      if (head > 1) {
        const len = head === 2 ? b[o + 1] : head === 3 ? len16(o + 1) : len32(o + 1);
        if (t === 0xdc || t === 0xdd) count = len;
        else if (t === 0xde || t === 0xdf) count = len * 2;
        else skip = len;
      }
    }
    if (isKey && (count >= 0 || t === 0xc4 || t === 0xc5 || t === 0xc6)) return { what: 'map key is not a scalar', limit: false };
    o += head;
    if (count >= 0) {
      if (count > n - o) return { what: 'count overruns the frame', limit: false }; // every value takes at least a byte
      if (lefts.length + 1 >= lim.maxDepth) return { what: `nesting deeper than ${lim.maxDepth}`, limit: true };
      lefts.push(left);
      maps.push(inMap);
      left = count;
      inMap = map;
    } else {
      if (skip > n - o) return { what: 'truncated', limit: false };
      o += skip;
    }
  }
}

// ---------------------------------------------------------------- logging peer data

// C0 and C1 controls, DEL, and the Unicode line / paragraph separators and bidi controls that can
// forge or reorder what a terminal shows
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * A peer-supplied string as it may appear in a log line: unsafe characters escaped as \xNN /
 * \uNNNN, at most `max` characters (a longer one is cut and says how long it was). Anything that
 * is not a string is described by its type only: no method of peer data is ever called.
 */
export function safeText(s: unknown, max = 80): string {
  if (typeof s === 'number' || typeof s === 'boolean') return `${s}`;
  if (typeof s !== 'string') return s === null ? 'null' : `(${typeof s})`;
  const cut = s.length > max ? s.slice(0, max) : s;
  const esc = cut.replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
  return s.length > max ? `${esc}...(${s.length} chars)` : esc;
}
