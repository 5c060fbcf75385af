/**
 * Value codec: turns a JS value into (type tag, bytes) for a record, and back.
 * Strings (UTF-8), byte arrays and numbers (float64) skip general encoding; everything else goes
 * through msgpackr without records (records need structures shared by both ends).
 */
import { Packr, Unpackr } from 'msgpackr';
import { T_BYTES, T_MSGPACK, T_NUMBER, T_STRING } from './layout.js';

export const ENCODE_OK = 0;
export const ENCODE_TOO_LARGE = 1;
export const ENCODE_UNENCODABLE = 2;
export const ENCODE_UNDEFINED = 3;

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, copyBuffers: true });

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
          const b = packr.pack(v);
          this.type = T_MSGPACK;
          this.bytes = b;
          this.len = b.length;
        } catch (e) {
          this.error = `value cannot be encoded: ${(e as Error).message}`;
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

/** msgpack bytes of `v` with the value codec's options (throws on what msgpackr cannot encode). */
export function encodeMsgpack(v: unknown): Uint8Array {
  return packr.pack(v);
}

export function decodeMsgpack(bytes: Uint8Array): unknown {
  return unpackr.unpack(bytes);
}

export { T_BYTES, T_MSGPACK, T_NUMBER, T_STRING };
