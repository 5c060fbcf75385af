/**
 * GridMap's operations over many entries (src/map.ts keeps their public methods and docs, which
 * call these in one line): setMany (validate and encode everything, then one lock per partition),
 * clear and entries (partition by partition, under each partition's lock). Functions of a
 * map's internals (MapCore, src/map-host.ts); no runtime import of src/map.ts.
 */
import type { SetOptions } from './config.js';
import { InvalidArgumentError } from './errors.js';
import type { EncodedValue } from './storage/codec.js';
import { T_NUMBER, T_STRING } from './storage/layout.js';
import { EXPIRED_RECORD, NO_RECORD, type MapCore } from './map-host.js';

/** GridMap.setMany (see its doc). The caller counts the operation. */
export async function setMany(m: MapCore, entries: ReadonlyArray<readonly [string, unknown]>, options: SetOptions | number | undefined): Promise<void> {
  m.host.assertOpen(m.internal);
  if (!Array.isArray(entries)) throw new InvalidArgumentError('entries must be an array of [key, value] pairs');
  const expiresAt = m.expiry(options);
  const st = m.store;
  const n = entries.length;
  // Pass 1: validate and encode everything; keep each key's partition, slot hash and UTF-8
  // length (pass 2 then skips hashing ASCII keys again), and the keys and values themselves
  // (the caller may change `entries` while a busy lock is awaited). Strings and numbers are
  // kept as they are; msgpack and byte values as a private copy.
  const keys = new Array<string>(n);
  const vals = new Array<string | number | EncodedValue>(n);
  const parts = new Int32Array(n);
  const hashes = new Uint32Array(n); // slot hashes are unsigned: an Int32Array would break lookups
  const klens = new Int32Array(n);
  const vlens = new Int32Array(n);
  const enc = m.enc;
  for (let i = 0; i < n; i++) {
    const pair = entries[i];
    if (!Array.isArray(pair) || pair.length < 2) throw new InvalidArgumentError('entries must be an array of [key, value] pairs');
    const k = pair[0];
    const v = pair[1];
    parts[i] = m.key(k);
    hashes[i] = st.ksh;
    klens[i] = st.klen;
    keys[i] = k;
    m.value(v);
    vlens[i] = enc.len;
    vals[i] = enc.type === T_STRING || enc.type === T_NUMBER ? (v as string | number) : enc.snapshot();
  }
  // Group by partition: a counting sort, stable, so duplicates keep their order.
  const P = st.partitions;
  const start = new Int32Array(P + 1);
  for (let i = 0; i < n; i++) start[parts[i] + 1]++;
  for (let q = 0; q < P; q++) start[q + 1] += start[q];
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[start[parts[i]]++] = i;
  // Pass 2: each partition under its lock.
  for (let j = 0; j < n; ) {
    const p = parts[order[j]];
    const wait = m.lockNow(p); // never an await when free (see GridMap.lockNow)
    if (wait !== undefined) await wait;
    st.beginWrite(p);
    try {
      for (; j < n && parts[order[j]] === p; j++) {
        const i = order[j];
        const k = keys[i];
        if (klens[i] === k.length) st.useAsciiKey(k, p, hashes[i]); // UTF-8 length = length: ASCII
        else m.key(k);
        const v = vals[i];
        let r: number;
        if (typeof v === 'string') r = st.put(p, m.id, T_STRING, v, vlens[i], 0, expiresAt);
        else if (typeof v === 'number') r = st.put(p, m.id, T_NUMBER, null, 8, v, expiresAt);
        else r = st.put(p, m.id, v.type, v.bytes, v.len, v.num, expiresAt);
        if (r < 0) m.memoryFull();
      }
    } finally {
      m.release(p);
    }
  }
}

/** GridMap.clear: every entry of the map deleted, partition by partition, each under its lock. */
export async function clear(m: MapCore): Promise<void> {
  m.host.assertOpen(m.internal);
  const st = m.store;
  for (let p = 0; p < st.partitions; p++) {
    const wait = m.lockNow(p);
    if (wait !== undefined) await wait;
    st.beginWrite(p);
    try {
      st.clearMap(p, m.id);
    } finally {
      m.release(p);
    }
  }
}

/** GridMap.entries: [key, value] pairs, each partition copied under its lock; expired entries skipped. */
export async function* entries<V>(m: MapCore): AsyncGenerator<[string, V]> {
  const st = m.store;
  for (let p = 0; p < st.partitions; p++) {
    m.host.assertOpen(m.internal);
    const batch: Array<[string, V]> = [];
    const wait = m.lockNow(p);
    if (wait !== undefined) await wait;
    st.beginWrite(p);
    try {
      const now = Date.now();
      st.forEachRecord(p, m.id, (off) => {
        if (st.isExpired(off, now)) return;
        const v = m.lockedValue(off, now, false);
        if (v === NO_RECORD || v === EXPIRED_RECORD) return;
        batch.push([st.keyOf(off), v as V]);
      });
    } finally {
      m.release(p);
    }
    yield* batch;
  }
}
