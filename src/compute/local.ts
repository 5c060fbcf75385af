/**
 * Compute next to the data on this thread (native-notes.md, "Compute"): the entry processor of
 * GridMap.compute / computeLocal, run under the key's partition lock; GridMap.aggregate's start;
 * and GridMap.scanPartition, the locked walk of one partition that an aggregation's pool tasks
 * run. Functions of a map's internals (MapCore, src/map-host.ts); GridMap's methods of the same
 * names call them in one line. This file imports neither src/map.ts nor src/grid.ts at run time.
 */
import { threadId } from 'node:worker_threads';
import { UnencodableValueError, WorkerError } from '../errors.js';
import { packPlain, unpackPlain } from '../cluster/plain.js';
import { ENCODE_UNENCODABLE } from '../storage/codec.js';
import { T_MSGPACK, T_NUMBER } from '../storage/layout.js';
import { forceTake, unlock } from '../sync/mutex.js';
import { EXPIRED_RECORD, NO_RECORD, type MapCore } from '../map-host.js';
import { aggregateMap } from './aggregate.js';
import { FALLBACK, type FieldReader } from './msgpack-field.js';
import { callProcessor, loadProcessor, newEntry, processorTimeout, type LoadedProcessor } from './processor.js';
import {
  GATE_COMMITTED, GATE_RUNNING, GATE_STATE, GATE_STOPPED, GATE_THREAD, W_EXPIRED, W_NONE, W_PUT, W_REMOVE,
  type AggregatorRef, type ComputeRef, type ProcessorReply, type ProcessorTask,
} from './types.js';

/**
 * GridMap.computeLocal: compute on this thread, for a key whose partition is held in this
 * process. The module is loaded before the lock is taken; the processor runs under the partition
 * lock, stopped after `limitMs` (processor.ts, the watchdog; 0: no limit). The caller counts the
 * operation.
 */
export async function computeLocal(m: MapCore, key: string, processor: ComputeRef, arg: unknown, limitMs: number): Promise<unknown> {
  let proc = loadFor(m, key, processor);
  if (proc instanceof Promise) proc = await proc;
  const p = lockKey(m, key);
  return computeLocked(m, typeof p === 'number' ? p : await p, key, proc, arg, limitMs, undefined);
}

/** Validates the key and loads the processor, before any lock: synchronous when this thread has the module. */
function loadFor(m: MapCore, key: string, processor: ComputeRef): LoadedProcessor | Promise<LoadedProcessor> {
  m.host.assertOpen();
  m.key(key);
  return loadProcessor(processor, m.host.modules);
}

/**
 * Takes key's partition lock; returns the partition. Synchronous on workers (lockNow): a worker
 * must not await between taking a lock and using it (native-notes, "Life of a compute").
 */
function lockKey(m: MapCore, key: string, asyncWait?: boolean): number | Promise<number> {
  m.host.assertOpen();
  const p = m.key(key);
  const wait = m.lockNow(p, asyncWait);
  return wait === undefined ? p : wait.then(() => p);
}

/**
 * A compute on a pool thread (pool-worker.ts; the member's side of a cluster compute): as
 * computeLocal, with the argument and the result as msgpack bytes and no watchdog (the pool stops
 * the thread). The thread never writes: after every call into user code (the processor, and the
 * encoders, which call its getters) it claims the gate, and then either unlocks (nothing to
 * write) or returns the write and keeps the partition lock for the caller to take over
 * (applyComputed). So a thread stopped at any moment has written nothing, and the caller writes,
 * records the request and ships the state in one run of its own thread, as for any other write.
 */
export async function computeTask(m: MapCore, t: ProcessorTask): Promise<ProcessorReply> {
  const arg = unpackPlain(t.arg, 'argument');
  let proc = loadFor(m, t.key, t.processor);
  if (proc instanceof Promise) proc = await proc;
  // The lock is awaited (waitAsync), never waited for in Atomics.wait: this thread may hold it
  // itself, for an earlier task whose write it handed over and whose reply only goes out in a
  // later microtask, which a blocking wait would never let run.
  const w = lockKey(m, t.key, true);
  const p = typeof w === 'number' ? w : await w;
  // started (no await from here on): a stop now terminates this thread (pool.ts runProcessor); a
  // stop that came first, while the task waited for its turn or the lock, skips it
  Atomics.store(t.gate, GATE_THREAD, threadId + 1);
  if (Atomics.load(t.gate, GATE_STATE) === GATE_STOPPED) {
    unlock(m.store.ci, m.store.lockIndex(p));
    return { r: undefined };
  }
  return computeLocked(m, p, t.key, proc, arg, 0, t.gate) as ProcessorReply;
}

/**
 * The caller's half of computeTask: takes over the partition lock the pool thread `tid` kept and
 * applies its write, then releases the lock. Returns the processor's result (msgpack bytes).
 * Throws WorkerError, nothing written, when the thread is gone and its lock was recovered.
 */
export function applyComputed(m: MapCore, key: string, reply: ProcessorReply, tid: number): Uint8Array | undefined {
  const w = reply.w;
  if (w === undefined) return reply.r;
  const st = m.store;
  const p = m.key(key);
  if (!forceTake(st.ci, st.lockIndex(p), tid)) throw new WorkerError('the compute pool thread that ran the entry processor ended before its write was applied; nothing was written');
  try {
    writeComputed(m, p, w.k, w.type, w.bytes, w.len, w.num);
  } finally {
    m.release(p);
  }
  return reply.r;
}

/**
 * The locked part of computeLocal / computeTask. The caller holds p's lock; released here, except
 * when a pool thread (`gate`) hands it over with its write.
 */
function computeLocked(m: MapCore, p: number, key: string, proc: LoadedProcessor, arg: unknown, limitMs: number, gate: Int32Array | undefined): unknown {
  const st = m.store;
  let writing = false;
  let handedOver = false;
  try {
    // other calls of this thread may have used the key scratch while this one awaited
    m.key(key);
    const off = st.probe(p, m.id);
    let current: unknown;
    let expired = false;
    if (off >= 0) {
      const v = m.lockedValue(off, Date.now(), false);
      if (v === EXPIRED_RECORD) expired = true;
      else if (v !== NO_RECORD) current = v;
    }
    // The processor runs with the lock held but the seqlock even: writers wait, readers don't.
    const box = newEntry(key, current);
    const result = callProcessor(proc, box, arg, limitMs);
    if (result !== undefined && m.enc.encode(result) === ENCODE_UNENCODABLE) {
      throw new UnencodableValueError(`the result of entry processor '${proc.ref.name}' cannot be encoded: ${m.enc.error}`, { module: proc.ref.url, export: proc.ref.name });
    }
    // a pool thread's result is posted to the main thread, which keeps it in the request's record
    // (dedupe.ts): posting a view clones its whole buffer (the packer's, 8 KiB or more), so just
    // the result's bytes are copied (new Uint8Array: a Buffer's slice() is a view)
    const r = gate === undefined ? undefined : packPlain(result);
    const out = gate === undefined ? result : r === undefined ? undefined : new Uint8Array(r);
    const next = box.assigned ? box.value : undefined;
    if (next !== undefined) m.value(next); // typed errors before anything is written
    const kind = box.assigned ? (next === undefined ? W_REMOVE : W_PUT) : expired ? W_EXPIRED : W_NONE;
    const e = m.enc;
    if (gate !== undefined) {
      if (Atomics.compareExchange(gate, GATE_STATE, GATE_RUNNING, GATE_COMMITTED) === GATE_STOPPED) throw processorTimeout(proc.ref, 0, 'ran out of time');
      if (kind === W_NONE) return { r: out as Uint8Array | undefined } satisfies ProcessorReply;
      handedOver = true;
      const bytes = kind !== W_PUT || e.type === T_NUMBER ? null : typeof e.bytes === 'string' ? e.bytes : new Uint8Array(e.bytes.subarray(0, e.len));
      return { r: out as Uint8Array | undefined, w: { k: kind, type: e.type, bytes, len: e.len, num: e.num } } satisfies ProcessorReply;
    }
    if (kind === W_NONE) return out;
    m.key(key); // the processor may have used this thread's key scratch
    writing = true;
    writeComputed(m, p, kind, e.type, e.bytes, e.len, e.num);
    return out;
  } finally {
    if (writing) m.release(p);
    else if (!handedOver) unlock(st.ci, st.lockIndex(p));
  }
}

/**
 * The write of a compute, p's lock held by this thread and this map's key scratch on the key:
 * drops the key's expired record, then stores the value (W_PUT; a new key gets the map's default
 * TTL, an existing one keeps its expiry) or removes the key (W_REMOVE). Opens the write (seqlock
 * odd) first thing: the caller's `m.release(p)` closes it.
 */
function writeComputed(m: MapCore, p: number, kind: number, type: number, bytes: Uint8Array | string | null, len: number, num: number): void {
  const st = m.store;
  st.beginWrite(p);
  const now = Date.now();
  let off = st.probe(p, m.id);
  if (off >= 0 && st.isExpired(off, now)) {
    st.expireAt(p, m.id, off);
    off = -1;
  }
  if (kind === W_REMOVE) {
    if (off >= 0) st.remove(p, m.id, now);
  } else if (kind === W_PUT) {
    const expiresAt = off >= 0 ? st.expiresAt(off) : m.expiry(undefined);
    if (st.put(p, m.id, type, bytes, len, num, expiresAt) < 0) m.memoryFull();
  }
}

/** GridMap.aggregate: the map's entries aggregated in the grid's compute pool (src/compute/aggregate.ts). */
export async function aggregate(m: MapCore, aggregator: AggregatorRef, arg: unknown): Promise<unknown> {
  m.host.assertOpen();
  return aggregateMap(m.host, m.name, aggregator, arg);
}

/** What a partition scan calls per live entry: the key when asked for keys, the value when asked for values. */
export type ScanVisit = (key: string | undefined, value: unknown) => void;
/** A field of msgpack values a scan reads straight from the bytes (aggregations over `{ field }`), and what gets it. */
export type ScanField = { reader: FieldReader; visit: (x: number | null | undefined) => void };

/**
 * GridMap.scanPartition: visits the map's live entries in partition `p` under the partition's
 * lock, decoding keys and values only when asked. Nothing is written, so the seqlock stays even
 * and readers are not held up. `visit` must not use the grid.
 */
export async function scanPartition(m: MapCore, p: number, keys: boolean, values: boolean, visit: ScanVisit, field?: ScanField): Promise<void> {
  m.host.assertOpen();
  const st = m.store;
  // no entry of this map here: skip the lock and the walk of the partition's table (the count is
  // read without the lock; an entry added concurrently is not missed by more than any scan would)
  if (Atomics.load(st.ci, st.geo.countBase + p * st.geo.maxMaps + m.id) === 0) return;
  const wait = m.lockNow(p);
  if (wait !== undefined) await wait;
  try {
    // another thread may have grown the heap beyond this thread's views (beginWrite does this for writers)
    if (st.u8.length !== st.buffers.heap.byteLength) st.refresh();
    const now = Date.now();
    const dv = field !== undefined ? new DataView(st.u8.buffer, st.u8.byteOffset, st.u8.byteLength) : undefined;
    st.forEachRecord(p, m.id, (off) => {
      if (st.isExpired(off, now)) return;
      if (field !== undefined && !keys && st.typeOf(off) === T_MSGPACK) {
        // the field straight from the bytes (held stable by the lock), no copy and no decode
        const x = field.reader.read(st.u8, dv!, st.valueOffset(off), st.valueLength(off));
        if (x !== FALLBACK) return field.visit(x);
      }
      let v: unknown;
      if (values) {
        v = m.lockedValue(off, now, true);
        if (v === NO_RECORD || v === EXPIRED_RECORD) return;
      }
      visit(keys ? st.keyOf(off) : undefined, v);
    });
  } finally {
    unlock(st.ci, st.lockIndex(p));
  }
}
