/**
 * GridMap's conditional writes and byte-level read-modify-writes, each under the key's partition
 * lock (src/map.ts keeps their public methods and docs, which count the call and call these):
 * setIfAbsent, compareAndSet, and updateBytes, the byte-string updates of the RESP endpoint
 * (src/updates.ts). increment, the hot one of these, stays in GridMap. Functions of a map's
 * internals (MapCore, src/map-host.ts); no runtime import of src/map.ts.
 */
import type { SetOptions } from './config.js';
import { InvalidArgumentError } from './errors.js';
import { bytesOf, type EncodedValue } from './storage/codec.js';
import { T_NUMBER } from './storage/layout.js';
import type { ShardStore } from './storage/store.js';
import { DEL, PUT, RETIME, numberText, updateOf, type UpdateReply, type UpdateResult } from './updates.js';
import type { MapCore } from './map-host.js';

/** GridMap.setIfAbsent (see its doc). */
export async function setIfAbsent(m: MapCore, key: string, value: unknown, options: SetOptions | number | undefined): Promise<boolean> {
  m.host.assertOpen(m.internal);
  const expiresAt = m.expiry(options);
  let p = m.key(key);
  m.value(value);
  const wait = m.lockNow(p);
  if (wait !== undefined) {
    await wait;
    p = m.key(key);
    m.value(value);
  }
  const st = m.store;
  const e = m.enc;
  st.beginWrite(p);
  try {
    const off = st.probe(p, m.id);
    if (off >= 0) {
      if (!st.isExpired(off, Date.now())) return false;
      st.expireAt(p, m.id, off);
    }
    if (st.put(p, m.id, e.type, e.bytes, e.len, e.num, expiresAt) < 0) m.memoryFull();
    return true;
  } finally {
    m.release(p);
  }
}

/** GridMap.compareAndSet (see its doc). */
export async function compareAndSet(m: MapCore, key: string, expected: unknown, next: unknown): Promise<boolean> {
  m.host.assertOpen(m.internal);
  m.key(key);
  let exp: EncodedValue | null = null;
  if (expected !== undefined) {
    m.value(expected);
    exp = m.enc.snapshot();
  }
  let p = m.key(key);
  m.value(next);
  const wait = m.lockNow(p);
  if (wait !== undefined) {
    await wait;
    p = m.key(key);
    m.value(next);
  }
  const st = m.store;
  const e = m.enc;
  st.beginWrite(p);
  try {
    const off = m.liveRecord(p, Date.now());
    if (off < 0 ? exp !== null : !sameValue(st, off, exp)) return false;
    const expiresAt = off >= 0 ? st.expiresAt(off) : m.expiry(undefined);
    if (st.put(p, m.id, e.type, e.bytes, e.len, e.num, expiresAt) < 0) m.memoryFull();
    return true;
  } finally {
    m.release(p);
  }
}

function sameValue(st: ShardStore, off: number, exp: EncodedValue | null): boolean {
  if (exp === null) return false;
  if (st.typeOf(off) !== exp.type || st.valueLength(off) !== exp.len) return false;
  const vo = st.valueOffset(off);
  if (exp.type === T_NUMBER) return Object.is(st.f64[vo >>> 3], exp.num);
  const b = bytesOf(exp);
  for (let i = 0; i < exp.len; i++) if (st.u8[vo + i] !== b[i]) return false;
  return true;
}

/** An update function of src/updates.ts. */
export type ByteUpdate = NonNullable<ReturnType<typeof updateOf>>;

/** The update function named `kind` (src/updates.ts), or a typed error. */
export function byteUpdate(kind: string): ByteUpdate {
  const fn = updateOf(kind);
  if (fn === undefined) throw new InvalidArgumentError(`unknown byte update '${String(kind).slice(0, 40)}'`);
  return fn;
}

/** GridMap.updateBytes (see its doc); GridMap.updateBytesNow is the same when p's lock is free now. */
export async function updateBytes(m: MapCore, key: string, kind: string, arg: unknown): Promise<UpdateReply> {
  m.host.assertOpen(m.internal);
  const fn = byteUpdate(kind);
  let p = m.key(key);
  const wait = m.lockNow(p);
  if (wait !== undefined) {
    await wait;
    p = m.key(key);
  }
  return updateLocked(m, p, fn, kind, arg);
}

/** The locked part of updateBytes: the caller holds p's lock (released here) and the key scratch. */
export function updateLocked(m: MapCore, p: number, fn: ByteUpdate, kind: string, arg: unknown): UpdateReply {
  const st = m.store;
  st.beginWrite(p);
  try {
    const now = Date.now();
    const off = m.liveRecord(p, now);
    let r: UpdateResult;
    try {
      r = fn(off >= 0 ? bytesAt(st, off) : undefined, off >= 0 ? st.expiresAt(off) : 0, arg, now);
    } catch (e) {
      throw new InvalidArgumentError(`byte update '${kind}': ${(e as Error).message}`);
    }
    if (r.write === PUT) {
      // INCR* of a number the library stored keeps it a number while its text reads back exactly
      const x = off >= 0 && st.typeOf(off) === T_NUMBER && (kind === 'incrby' || kind === 'incrbyfloat') ? numberOf(r.value!) : undefined;
      m.value(x ?? r.value); // typed errors (too large) before anything is written
      const e = m.enc;
      if (st.put(p, m.id, e.type, e.bytes, e.len, e.num, r.expiresAt ?? 0) < 0) m.memoryFull();
    } else if (r.write === RETIME && off >= 0) {
      st.retime(p, m.id, off, r.expiresAt ?? 0);
    } else if (r.write === DEL && off >= 0) {
      st.remove(p, m.id, now);
    }
    return r.reply;
  } finally {
    m.release(p);
  }
}

/** The number whose RESP text (numberText) is exactly `b`, or undefined. */
function numberOf(b: Uint8Array): number | undefined {
  const text = Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');
  const x = Number(text);
  return Number.isFinite(x) && numberText(x) === text ? x : undefined;
}

/** The value of the record at `off` as bytes (a copy): see updateBytes. */
function bytesAt(st: ShardStore, off: number): Uint8Array {
  const vo = st.valueOffset(off);
  if (st.typeOf(off) === T_NUMBER) return Buffer.from(numberText(st.f64[vo >>> 3]), 'latin1');
  return Buffer.from(st.u8.subarray(vo, vo + st.valueLength(off)));
}
