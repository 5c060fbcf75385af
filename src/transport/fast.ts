/**
 * FAST frames: the compact binary frames of the hot map operations (get, set, getMany and the
 * replicated write of a set), beside the msgpack BATCH frames of wire.ts. No per-operation object
 * is encoded or decoded: each operation is one record of fixed fields, the key and value as bytes.
 * Like a BATCH, a FAST frame travels sealed (AES-256-GCM, wire.ts): the layout below is the
 * plaintext of one binary WebSocket message, which carries it followed by a 16-byte tag.
 *
 * ```
 * FAST frame = the plaintext of one sealed binary WebSocket message:
 *   0xC1                                  first byte; msgpack never uses 0xc1, so a FAST frame
 *                                         cannot be taken for a msgpack frame or the reverse
 *   record*                               back to back to the end of the message
 *
 * requests (the id is a request id, shared with BATCH requests of the same connection)
 *   MAP    0x01 u16 index  u16 n  name[n]                 names map `index` on this connection
 *   GET    0x02 u32 id  u16 map  u16 k  key[k]
 *   SET    0x03 u32 id  u16 map  u16 k  key[k]  u8 r  rid[r]  VALUE
 *   MGET   0x04 u32 id  u16 map  u32 count  (u16 k  key[k]) x count
 *   REP    0x05 u32 id  u16 map  f64 epoch  f64 tableVersion  u16 k  key[k]  u8 r  rid[r]  STATE
 *          (epoch: of the partition in the primary's table; tableVersion: that table's version —
 *          a copy that has not applied it yet refuses the REP, cluster/replicas.ts checkCopy)
 * replies
 *   STATE  0x81 u32 id  STATE                             to GET
 *   OK     0x82 u32 id                                    to SET, REP
 *   STATES 0x83 u32 id  u32 count  STATE x count          to MGET
 *
 * VALUE  = u8 type (0..3, storage/layout.ts T_*)  f64 expiresAt  u32 n  bytes[n]
 *          (T_NUMBER: n = 8, the float64; T_STRING: UTF-8)
 * STATE  = 0xFF (absent) | VALUE
 * rid    = the write's request id (ASCII, 1..MAX_RID_BYTES bytes; r = 0: none): a retried SET is
 *          applied at most once (cluster/dedupe.ts), and its REP gives every copy the record
 * integers and floats little-endian; keys and names UTF-8
 * ```
 *
 * Map names travel once per connection and direction: the first request of a map on a connection
 * is preceded by a MAP record giving it the next index (0, 1, 2, … in order, at most
 * MAX_LINK_MAPS). Frames are ordered, so a MAP record always arrives before its first use.
 * Errors of FAST requests travel as ERROR messages of a BATCH frame (the ids are shared).
 *
 * A receiver validates the whole frame (validateFast) before acting on any record: a record of an
 * unknown type, a truncated record, a map index never named, a bad value tag, a negative or
 * non-finite expiry, a wrong number length or a count that overruns the frame closes the
 * connection as a protocol error, so nothing of a malformed frame reaches shared memory. An MGET of
 * more than maxMgetKeys keys (default MAX_MGET_KEYS) closes it too (FrameLimitError), and the
 * reader's scratch arrays are cut back after any record of more than SCRATCH_KEEP keys or states.
 */
import { T_NUMBER } from '../storage/layout.js';

export const FAST_MAGIC = 0xc1;

export const O_MAP = 0x01;
export const O_GET = 0x02;
export const O_SET = 0x03;
export const O_MGET = 0x04;
export const O_REP = 0x05;
export const R_STATE = 0x81;
export const R_OK = 0x82;
export const R_STATES = 0x83;

/** STATE tag of an absent key. */
export const ABSENT = 0xff;
/** Value type tags are 0..MAX_TYPE (storage/layout.ts: T_MSGPACK 0, T_STRING 1, T_BYTES 2, T_NUMBER 3). */
export const MAX_TYPE = 3;
/** Distinct map names per connection and direction. */
export const MAX_LINK_MAPS = 1024;
export const MAX_NAME_BYTES = 256;
/** A FAST frame is closed and a new one started before it would grow past this (or maxPayload). */
export const FAST_FRAME_BYTES = 256 * 1024;
/** Default limit of keys in one MGET record (the Transport option maxMgetKeys); a bigger one closes the connection (FrameLimitError). */
export const MAX_MGET_KEYS = 1024 * 1024;
/** FastReader keeps scratch arrays up to this many entries between frames; longer ones are dropped after use. */
export const SCRATCH_KEEP = 4096;
/** Longest request id of a SET or REP record (cluster/dedupe.ts MAX_REQUEST_ID). */
export const MAX_RID_BYTES = 64;
/** Largest request id (u32). */
export const MAX_FAST_ID = 0xffffffff;

/** Fixed bytes of each record before its key (or keys / state). */
export const GET_HEAD = 1 + 4 + 2 + 2;
/** SET and REP: the fixed bytes before the key, and the rid length byte after it. */
export const SET_HEAD = GET_HEAD + 1;
export const MGET_HEAD = 1 + 4 + 2 + 4;
export const REP_HEAD = 1 + 4 + 2 + 8 + 8 + 2 + 1;
export const VALUE_HEAD = 1 + 8 + 4;
export const STATE_HEAD = 1 + 4;
export const STATES_HEAD = 1 + 4 + 4;

/** A map named on a connection. `local` is for the serving side's own use (its store's map id). */
export class FastMap {
  local = -1;
  constructor(readonly name: string) {}
}

const f64 = new Float64Array(1);
const f64b = new Uint8Array(f64.buffer);

/** An output FAST frame under construction. `buf[0..len)` is the frame so far. */
export class FastWriter {
  buf: Buffer = Buffer.allocUnsafe(4096);
  len = 0;

  /** Makes room for n more bytes. */
  ensure(n: number): void {
    const need = this.len + n;
    if (need <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < need) cap *= 2;
    const b = Buffer.allocUnsafe(cap);
    this.buf.copy(b, 0, 0, this.len);
    this.buf = b;
  }

  u8(v: number): void {
    this.buf[this.len++] = v;
  }

  u16(v: number): void {
    const b = this.buf;
    const o = this.len;
    b[o] = v;
    b[o + 1] = v >>> 8;
    this.len = o + 2;
  }

  u32(v: number): void {
    const b = this.buf;
    const o = this.len;
    b[o] = v;
    b[o + 1] = v >>> 8;
    b[o + 2] = v >>> 16;
    b[o + 3] = v >>> 24;
    this.len = o + 4;
  }

  f64(v: number): void {
    f64[0] = v;
    const b = this.buf;
    const o = this.len;
    for (let i = 0; i < 8; i++) b[o + i] = f64b[i];
    this.len = o + 8;
  }

  /** Writes a string of `bytes` UTF-8 bytes (as measured by the caller). */
  str(s: string, bytes: number): void {
    const b = this.buf;
    const o = this.len;
    if (bytes === s.length) {
      // all ASCII: its bytes are its char codes
      if (bytes <= 48) for (let i = 0; i < bytes; i++) b[o + i] = s.charCodeAt(i);
      else (b as unknown as Latin1Writer).latin1Write(s, o, bytes);
    } else {
      (b as unknown as Latin1Writer).utf8Write(s, o, bytes);
    }
    this.len = o + bytes;
  }

  /** Copies src[from..to). */
  bytes(src: Uint8Array, from: number, to: number): void {
    const n = to - from;
    const b = this.buf;
    const o = this.len;
    // subarray + set (a view and a memmove) from 16 bytes: a byte loop measured ~1.5x slower at
    // 100 bytes, and far slower when it sees both shared-memory and plain sources
    if (n <= 16) for (let i = 0; i < n; i++) b[o + i] = src[from + i];
    else b.set(src.subarray(from, to), o);
    this.len = o + n;
  }
}

interface Latin1Writer {
  latin1Write(s: string, offset: number, length: number): number;
  utf8Write(s: string, offset: number, length: number): number;
}

export function readF64(b: Uint8Array, o: number): number {
  for (let i = 0; i < 8; i++) f64b[i] = b[o + i];
  return f64[0];
}

const u16 = (b: Uint8Array, o: number): number => b[o] | (b[o + 1] << 8);
const u32 = (b: Uint8Array, o: number): number => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;

/**
 * Checks the structure of a whole FAST frame. MAP records are applied to `maps` as they are met
 * (a frame that fails closes its connection, whose map table then goes with it). Returns undefined
 * when the frame is well formed, else what is wrong.
 */
export function validateFast(b: Uint8Array, maps: FastMap[], maxMgetKeys: number = MAX_MGET_KEYS): string | undefined {
  const n = b.length;
  if (n < 2 || b[0] !== FAST_MAGIC) return 'empty frame';
  let o = 1;
  const state = (at: number): number => {
    // returns the offset after the STATE at `at`, or -1
    if (at >= n) return -1;
    const t = b[at];
    if (t === ABSENT) return at + 1;
    if (t > MAX_TYPE || at + VALUE_HEAD > n) return -1;
    const exp = readF64(b, at + 1);
    if (!(exp >= 0) || exp === Infinity) return -1;
    const len = u32(b, at + 9);
    if (t === T_NUMBER && len !== 8) return -1;
    const end = at + VALUE_HEAD + len;
    return end > n ? -1 : end;
  };
  const mapOk = (at: number): boolean => u16(b, at) < maps.length;
  const rid = (at: number): number => {
    // returns the offset after the rid at `at` (u8 r, then r printable ASCII bytes), or -1
    if (at >= n) return -1;
    const r = b[at];
    if (r > MAX_RID_BYTES || at + 1 + r > n) return -1;
    for (let i = at + 1; i <= at + r; i++) if (b[i] < 0x21 || b[i] > 0x7e) return -1;
    return at + 1 + r;
  };
  while (o < n) {
    const op = b[o];
    switch (op) {
      case O_MAP: {
        if (o + 5 > n) return 'truncated MAP';
        const idx = u16(b, o + 1);
        const len = u16(b, o + 3);
        if (idx !== maps.length || idx >= MAX_LINK_MAPS) return `MAP index ${idx} out of order or over ${MAX_LINK_MAPS}`;
        if (len === 0 || len > MAX_NAME_BYTES || o + 5 + len > n) return 'bad or truncated map name';
        maps.push(new FastMap(Buffer.from(b.buffer, b.byteOffset + o + 5, len).toString('utf8')));
        o += 5 + len;
        break;
      }
      case O_GET:
      case O_SET: {
        if (o + GET_HEAD > n) return 'truncated request';
        if (u32(b, o + 1) === 0) return 'request id 0';
        if (!mapOk(o + 5)) return 'unknown map index';
        o += GET_HEAD + u16(b, o + 7);
        if (o > n) return 'truncated key';
        if (op === O_SET) {
          o = rid(o);
          if (o < 0) return 'bad or truncated request id';
          if (o < n && b[o] === ABSENT) return 'SET without a value';
          o = state(o);
          if (o < 0) return 'bad or truncated value';
        }
        break;
      }
      case O_REP: {
        if (o + REP_HEAD > n) return 'truncated REP';
        if (u32(b, o + 1) === 0) return 'request id 0';
        if (!mapOk(o + 5)) return 'unknown map index';
        const v = readF64(b, o + 7);
        if (!(v >= 0) || v === Infinity) return 'bad epoch';
        const tv = readF64(b, o + 15);
        if (!(tv >= 0) || tv === Infinity) return 'bad table version';
        o += REP_HEAD - 1 + u16(b, o + 23);
        if (o > n) return 'truncated key';
        o = rid(o);
        if (o < 0) return 'bad or truncated request id';
        o = state(o);
        if (o < 0) return 'bad or truncated state';
        break;
      }
      case O_MGET: {
        if (o + MGET_HEAD > n) return 'truncated MGET';
        if (u32(b, o + 1) === 0) return 'request id 0';
        if (!mapOk(o + 5)) return 'unknown map index';
        const count = u32(b, o + 7);
        if (count > maxMgetKeys) return `MGET of ${count} keys (limit ${maxMgetKeys})`;
        o += MGET_HEAD;
        // each key takes at least 2 bytes: a count the frame cannot hold fails before the loop
        if (count > (n - o) / 2) return 'MGET count overruns the frame';
        for (let i = 0; i < count; i++) {
          if (o + 2 > n) return 'truncated key';
          o += 2 + u16(b, o);
          if (o > n) return 'truncated key';
        }
        break;
      }
      case R_STATE: {
        if (o + STATE_HEAD > n) return 'truncated reply';
        if (u32(b, o + 1) === 0) return 'reply id 0';
        o = state(o + STATE_HEAD);
        if (o < 0) return 'bad or truncated state';
        break;
      }
      case R_OK:
        if (o + 5 > n) return 'truncated reply';
        if (u32(b, o + 1) === 0) return 'reply id 0';
        o += 5;
        break;
      case R_STATES: {
        if (o + STATES_HEAD > n) return 'truncated reply';
        if (u32(b, o + 1) === 0) return 'reply id 0';
        const count = u32(b, o + 5);
        o += STATES_HEAD;
        if (count > n - o) return 'STATES count overruns the frame';
        for (let i = 0; i < count; i++) {
          o = state(o);
          if (o < 0) return 'bad or truncated state';
        }
        break;
      }
      default:
        return `unknown record type ${op}`;
    }
  }
  return undefined;
}

/**
 * The record being handled, parsed from a validated frame: the fields a server or a pending call
 * reads. `buf` is the frame's own buffer (ws hands each message its own memory), so a server that
 * answers later may keep offsets into it.
 */
export class FastReader {
  buf: Buffer = Buffer.alloc(0);
  /** Offset of the next record. */
  pos = 0;
  op = 0;
  id = 0;
  map: FastMap = new FastMap('');
  keyOff = 0;
  keyLen = 0;
  /** REP: the partition's epoch in the primary's table. */
  version = 0;
  /** REP: the version of the primary's table. */
  tableVersion = 0;
  /** SET / REP: the request id at buf[ridOff..ridOff+ridLen) (ridLen 0: none). */
  ridOff = 0;
  ridLen = 0;
  /** STATE of GET / SET / REP / a STATE reply: type tag, or -1 when absent. */
  vType = -1;
  vExp = 0;
  vOff = 0;
  vLen = 0;
  /** MGET keys / STATES states: `count` entries in the arrays below (reused; valid during the call). */
  count = 0;
  keyOffs: number[] = [];
  keyLens: number[] = [];
  types: number[] = [];
  exps: number[] = [];
  offs: number[] = [];
  lens: number[] = [];

  private state(o: number): number {
    const b = this.buf;
    const t = b[o];
    if (t === ABSENT) {
      this.vType = -1;
      this.vExp = 0;
      this.vOff = o + 1;
      this.vLen = 0;
      return o + 1;
    }
    this.vType = t;
    this.vExp = readF64(b, o + 1);
    this.vLen = u32(b, o + 9);
    this.vOff = o + VALUE_HEAD;
    return this.vOff + this.vLen;
  }

  /** Parses the record at `pos` (frame already validated) and moves `pos` past it. */
  next(maps: FastMap[]): number {
    const b = this.buf;
    let o = this.pos;
    const op = (this.op = b[o]);
    switch (op) {
      case O_MAP:
        o += 5 + u16(b, o + 3);
        break;
      case O_GET:
      case O_SET:
        this.id = u32(b, o + 1);
        this.map = maps[u16(b, o + 5)];
        this.keyLen = u16(b, o + 7);
        this.keyOff = o + GET_HEAD;
        o = this.keyOff + this.keyLen;
        if (op === O_SET) {
          this.ridLen = b[o];
          this.ridOff = o + 1;
          o = this.state(o + 1 + this.ridLen);
        }
        break;
      case O_REP:
        this.id = u32(b, o + 1);
        this.map = maps[u16(b, o + 5)];
        this.version = readF64(b, o + 7);
        this.tableVersion = readF64(b, o + 15);
        this.keyLen = u16(b, o + 23);
        this.keyOff = o + REP_HEAD - 1;
        o = this.keyOff + this.keyLen;
        this.ridLen = b[o];
        this.ridOff = o + 1;
        o = this.state(o + 1 + this.ridLen);
        break;
      case O_MGET: {
        this.id = u32(b, o + 1);
        this.map = maps[u16(b, o + 5)];
        const count = (this.count = u32(b, o + 7));
        o += MGET_HEAD;
        const ko = this.keyOffs;
        const kl = this.keyLens;
        for (let i = 0; i < count; i++) {
          const len = u16(b, o);
          ko[i] = o + 2;
          kl[i] = len;
          o += 2 + len;
        }
        break;
      }
      case R_STATE:
        this.id = u32(b, o + 1);
        o = this.state(o + STATE_HEAD);
        break;
      case R_OK:
        this.id = u32(b, o + 1);
        o += 5;
        break;
      case R_STATES: {
        this.id = u32(b, o + 1);
        const count = (this.count = u32(b, o + 5));
        o += STATES_HEAD;
        for (let i = 0; i < count; i++) {
          o = this.state(o);
          this.types[i] = this.vType;
          this.exps[i] = this.vExp;
          this.offs[i] = this.vOff;
          this.lens[i] = this.vLen;
        }
        break;
      }
    }
    this.pos = o;
    return op;
  }

  /**
   * Drops scratch arrays that grew past SCRATCH_KEEP entries (a large MGET or STATES), so one
   * peer-sized record does not keep peer-sized arrays for the life of the transport.
   */
  trim(): void {
    if (this.keyOffs.length > SCRATCH_KEEP) {
      this.keyOffs = [];
      this.keyLens = [];
    }
    if (this.types.length > SCRATCH_KEEP) {
      this.types = [];
      this.exps = [];
      this.offs = [];
      this.lens = [];
    }
  }

  /** The request id of the current SET or REP, or undefined. */
  rid(): string | undefined {
    return this.ridLen === 0 ? undefined : this.buf.toString('latin1', this.ridOff, this.ridOff + this.ridLen);
  }

  /** The current key as a string. */
  key(): string {
    return this.buf.toString('utf8', this.keyOff, this.keyOff + this.keyLen);
  }
}
