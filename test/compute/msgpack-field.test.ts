// FieldReader (src/compute/msgpack-field.ts) must agree with decode + pluck wherever it answers,
// and must never answer wrongly on malformed or truncated bytes.
import { Packr, Unpackr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { FALLBACK, FieldReader, skip } from '../../dist/compute/msgpack-field.js';
import { pluck } from '../../dist/compute/aggregators.js';

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, copyBuffers: true });

/** A deterministic pseudo-random generator (xorshift32). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

function randomValue(r: () => number, depth: number): unknown {
  const pick = Math.floor(r() * (depth > 2 ? 9 : 12));
  switch (pick) {
    case 0:
      return Math.floor(r() * 256) - 128;
    case 1:
      return Math.floor(r() * 2 ** 32) - 2 ** 31;
    case 2:
      return r() * 1e6 - 5e5;
    case 3:
      return 2 ** 40 + Math.floor(r() * 1000); // 64-bit integer
    case 4:
      return null;
    case 5:
      return r() < 0.5;
    case 6:
      return 'x'.repeat(Math.floor(r() * 40));
    case 7:
      return Buffer.from([1, 2, 3]);
    case 8:
      return new Date(1_700_000_000_000 + Math.floor(r() * 1e9));
    case 9:
      return [randomValue(r, depth + 1), randomValue(r, depth + 1)];
    default: {
      const o: Record<string, unknown> = {};
      const n = Math.floor(r() * 5);
      for (let i = 0; i < n; i++) o[['a', 'b', 'price', 'é', '0', 'long'.repeat(10)][Math.floor(r() * 6)]] = randomValue(r, depth + 1);
      return o;
    }
  }
}

function readAt(reader: FieldReader, bytes: Uint8Array): unknown {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return reader.read(bytes, dv, 0, bytes.length);
}

describe('msgpack field reader', () => {
  const paths = [['a'], ['price'], ['a', 'b'], ['a', 'price'], ['é'], ['0'], ['long'.repeat(10)], ['b', 'a', 'price'], ['a', '0']];

  it('agrees with decode + pluck on 20,000 random values wherever it answers, and answers most number fields', () => {
    const r = rng(42);
    let answered = 0;
    let numbers = 0;
    for (let i = 0; i < 20_000; i++) {
      const v = randomValue(r, 0);
      const bytes = packr.pack(v);
      const decoded = unpackr.unpack(bytes);
      for (const path of paths) {
        const got = readAt(new FieldReader(path), bytes);
        const want = pluck(decoded, path);
        if (got === FALLBACK) continue;
        answered++;
        if (typeof want === 'number') numbers++;
        if (!Object.is(got, want)) throw new Error(`path ${path.join('.')} of ${JSON.stringify(v)}: read ${String(got)}, pluck ${String(want)}`);
      }
    }
    expect(answered).toBeGreaterThan(50_000);
    expect(numbers).toBeGreaterThan(1_000);
  });

  it('reads a plain record field without falling back', () => {
    const bytes = packr.pack({ id: 7, name: 'widget', price: 12.5, qty: 3, tags: ['a'] });
    expect(readAt(new FieldReader(['price']), bytes)).toBe(12.5);
    expect(readAt(new FieldReader(['qty']), bytes)).toBe(3);
    expect(readAt(new FieldReader(['missing']), bytes)).toBeUndefined();
    expect(readAt(new FieldReader(['name']), bytes)).toBe(FALLBACK); // a string: decoded by the caller
    expect(readAt(new FieldReader(['__proto__']), bytes)).toBe(FALLBACK);
    expect(readAt(new FieldReader(['price', 'x']), bytes)).toBeUndefined(); // a number has no fields
  });

  it('never answers wrongly on truncated or corrupted bytes', () => {
    const r = rng(7);
    for (let i = 0; i < 3_000; i++) {
      const bytes = packr.pack({ a: { b: randomValue(r, 1), price: r() * 100 }, price: Math.floor(r() * 1000), z: 'tail' });
      const cut = bytes.subarray(0, Math.floor(r() * bytes.length));
      const broken = Uint8Array.from(bytes);
      broken[Math.floor(r() * broken.length)] = Math.floor(r() * 256);
      for (const b of [cut, broken]) {
        let decoded: unknown;
        try {
          decoded = unpackr.unpack(b);
        } catch {
          decoded = FALLBACK; // undecodable: the reader may answer FALLBACK or a value, never throw
        }
        for (const path of paths) {
          const got = readAt(new FieldReader(path), b);
          if (got === FALLBACK || decoded === FALLBACK) continue;
          expect(Object.is(got, pluck(decoded, path))).toBe(true);
        }
      }
    }
  });

  it('skip walks deep nesting without recursion and stops at the end of the bytes', () => {
    const deep = new Uint8Array(50_001);
    deep.fill(0x91, 0, 50_000); // fixarray of 1, 50,000 deep, then the int 1
    deep[50_000] = 1;
    const dv = new DataView(deep.buffer);
    expect(skip(deep, dv, 0, deep.length)).toBe(deep.length);
    expect(skip(deep, dv, 0, deep.length - 1)).toBe(-1);
    const huge = Uint8Array.from([0xdf, 0xff, 0xff, 0xff, 0xff]); // a map32 claiming 2^32 - 1 pairs
    expect(skip(huge, new DataView(huge.buffer), 0, huge.length)).toBe(-1);
  });
});
