/**
 * Value codec: turns a JS value into (type tag, bytes) for a record, and back.
 * Strings (UTF-8), byte arrays and numbers (float64) skip general encoding; everything else goes
 * through msgpackr without records (records need structures shared by both ends).
 */
import { Packr, Unpackr } from 'msgpackr';
import { UnencodableValueError } from '../errors.js';
import { T_BYTES, T_MSGPACK, T_NUMBER, T_STRING } from './layout.js';

export const ENCODE_OK = 0;
export const ENCODE_TOO_LARGE = 1;
export const ENCODE_UNENCODABLE = 2;
export const ENCODE_UNDEFINED = 3;

// moreTypes: typed arrays (every kind), DataView, ArrayBuffer, Set, Error and RegExp round-trip.
// Without it msgpackr 2.1 packs a Float64Array or Int32Array as one byte per element followed by
// whatever memory lies beyond — other entries' bytes — and they read back as a Uint8Array.
// Plain objects pack to the same bytes either way.
const packr = new Packr({ useRecords: false, moreTypes: true });
const unpackr = new Unpackr({ useRecords: false, moreTypes: true, copyBuffers: true });

const LONE_SURROGATE = 'a string in the value is not well-formed UTF-16 (a lone surrogate, such as half of an emoji cut by slice): UTF-8 cannot store it';

/**
 * Whether msgpack bytes `b` may hold a lone surrogate: msgpackr writes one as the 3-byte form
 * ED A0..BF xx, which reads back as U+FFFD. A cheap native scan; a hit (also possible inside
 * numbers or binary data) is settled by hasLoneSurrogate on the value itself.
 */
function mayHoldSurrogate(b: Buffer): boolean {
  for (let i = b.indexOf(0xed); i >= 0 && i + 1 < b.length; i = b.indexOf(0xed, i + 1)) {
    const n = b[i + 1]!;
    if (n >= 0xa0 && n <= 0xbf) return true;
  }
  return false;
}

/** Whether any string in `v` (object keys included) is not well-formed UTF-16. `v` packed, so it has no cycles. */
function hasLoneSurrogate(v: unknown): boolean {
  if (typeof v === 'string') return !v.isWellFormed();
  if (v === null || typeof v !== 'object' || ArrayBuffer.isView(v)) return false;
  if (Array.isArray(v) || v instanceof Set) {
    for (const x of v) if (hasLoneSurrogate(x)) return true;
    return false;
  }
  if (v instanceof Map) {
    for (const [k, x] of v) if (hasLoneSurrogate(k) || hasLoneSurrogate(x)) return true;
    return false;
  }
  if (v instanceof Error) return hasLoneSurrogate(v.message) || hasLoneSurrogate(v.name);
  if (v instanceof RegExp) return hasLoneSurrogate(v.source);
  for (const k of Object.keys(v)) if (hasLoneSurrogate(k) || hasLoneSurrogate((v as Record<string, unknown>)[k])) return true;
  return false;
}

/** Per-thread encoder state. `bytes[0..len)` is valid until the next encode on this thread. */
export class ValueEncoder {
  type = 0;
  len = 0;
  num = 0;
  /** The encoded bytes, or for a string value the string itself: the store writes its UTF-8 straight into the record. */
  bytes: Uint8Array | string = '';
  error = '';

  constructor(private readonly maxValueBytes: number) {}

  /** Encodes `v`. Returns ENCODE_OK or a failure code (error text in `error`). */
  encode(v: unknown): number {
    switch (typeof v) {
      case 'string': {
        // No copy here: put() encodes the string into its record with one native utf8Write.
        this.type = T_STRING;
        this.len = Buffer.byteLength(v, 'utf8');
        // non-ASCII only: UTF-8 would turn a lone surrogate into U+FFFD
        if (this.len !== v.length && !v.isWellFormed()) {
          this.error = LONE_SURROGATE;
          return ENCODE_UNENCODABLE;
        }
        this.bytes = v;
        break;
      }
      case 'number':
        this.type = T_NUMBER;
        this.num = v;
        this.len = 8;
        return ENCODE_OK;
      case 'undefined':
        this.error = 'value must not be undefined (use delete to remove a key)';
        return ENCODE_UNDEFINED;
      case 'function':
      case 'symbol':
        this.error = `a ${typeof v} cannot be stored`;
        return ENCODE_UNENCODABLE;
      default:
        if (v instanceof Uint8Array) {
          this.type = T_BYTES;
          this.bytes = v;
          this.len = v.length;
          break;
        }
        try {
          const b = encodeMsgpack(v);
          this.type = T_MSGPACK;
          this.bytes = b;
          this.len = b.length;
        } catch (e) {
          this.error = (e as Error).message;
          return ENCODE_UNENCODABLE;
        }
    }
    if (this.len > this.maxValueBytes) {
      this.error = `value is ${this.len} bytes, over maxValueBytes (${this.maxValueBytes})`;
      return ENCODE_TOO_LARGE;
    }
    return ENCODE_OK;
  }

  /** A private copy of the current encoding (for values that must survive another encode). */
  snapshot(): EncodedValue {
    const b = this.bytes;
    return { type: this.type, len: this.len, num: this.num, bytes: this.type === T_NUMBER ? null : typeof b === 'string' ? b : Uint8Array.prototype.slice.call(b, 0, this.len) };
  }
}

export interface EncodedValue {
  type: number;
  len: number;
  num: number;
  /** Encoded bytes; a string value stays a string (immutable, encoded when stored). */
  bytes: Uint8Array | string | null;
}

/** The encoded bytes of an EncodedValue (strings encoded to UTF-8). */
export function bytesOf(v: EncodedValue): Uint8Array {
  const b = v.bytes;
  return typeof b === 'string' ? Buffer.from(b, 'utf8') : (b ?? new Uint8Array(0));
}

/**
 * msgpack bytes of `v` with the value codec's options. Throws UnencodableValueError
 * (GRID_ERR_UNENCODABLE_VALUE) on what msgpackr cannot encode, on a function or symbol (msgpackr
 * packs one silently as `undefined`), and on a string with a lone surrogate anywhere in `v`.
 */
export function encodeMsgpack(v: unknown): Uint8Array {
  if (typeof v === 'function' || typeof v === 'symbol') throw new UnencodableValueError(`value cannot be encoded: a ${typeof v} cannot be stored`);
  let b: Uint8Array;
  try {
    b = packr.pack(v);
  } catch (e) {
    throw new UnencodableValueError(`value cannot be encoded: ${(e as Error)?.message ?? String(e)}`);
  }
  if (mayHoldSurrogate(b as Buffer) && hasLoneSurrogate(v)) throw new UnencodableValueError(LONE_SURROGATE);
  return b;
}

export function decodeMsgpack(bytes: Uint8Array): unknown {
  return unpackr.unpack(bytes);
}

export { T_BYTES, T_MSGPACK, T_NUMBER, T_STRING };
