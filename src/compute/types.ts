/**
 * Compute next to the data: public types of entry processors and aggregators, and the message
 * shapes between a caller and its piscina compute pool (one worker entry: ./pool-worker.ts).
 */
import type { WireError } from '../errors.js';

/**
 * Names user code: `module` is the name under which the module was registered at start
 * (`createGrid({ compute: { modules: { procs: new URL('./procs.mjs', import.meta.url) } } })`, CLI
 * `--compute-module procs=./procs.mjs`); `name` one of its exports. Only these two names cross
 * threads and the wire; each thread imports the registered module once.
 */
export interface ComputeRef {
  /** The name the module was registered under (options.compute.modules). */
  readonly module: string;
  /** The name of one of the module's exports. */
  readonly name: string;
}

/**
 * What an entry processor receives. `value` is undefined when the key is absent. Assigning
 * `entry.value` stores it when the processor returns (undefined deletes the key); not assigning
 * leaves the entry as it was, expiry included. A decoded value is a private copy: changing it in
 * place stores nothing unless it is assigned back (`entry.value = entry.value`).
 */
export interface ProcessorEntry<V = unknown> {
  /** The entry's key. */
  readonly key: string;
  /** The current value (undefined when the key is absent); assign to store, assign undefined to delete. */
  value: V | undefined;
}

/** The shape of an entry processor export: synchronous; its return value is compute's result. */
export type EntryProcessor<V = unknown, A = unknown, R = unknown> = (entry: ProcessorEntry<V>, arg: A) => R;

/** The built-in aggregators. */
export type BuiltinAggregator = 'count' | 'sum' | 'min' | 'max' | 'distinct';

/**
 * Argument of the built-in aggregators. `field` is a dot path into object values: `'a.b'` reads
 * `value.a.b` (own properties only; array elements by index, `'items.0'`). Without it the value
 * itself is used.
 */
export interface FieldArg {
  /** A dot path into object values (`'a.b'`, `'items.0'`); absent: the value itself. */
  field?: string;
}

/**
 * The shape of a user aggregator export. Per partition group, on a pool thread: `acc = init(arg)`,
 * then `acc = accumulate(acc, key, value, arg)` for every entry; the partial accumulators cross
 * threads by structured clone and are merged on the caller with `combine`, then `finish` (if
 * given) turns the last one into the result. All functions are synchronous.
 */
export interface Aggregator<V = unknown, A = unknown, Acc = unknown, R = Acc> {
  /** The empty accumulator of one partition group, from the aggregate call's `arg`. */
  init(arg: A): Acc;
  /** Adds one entry to the accumulator; returns the accumulator. */
  accumulate(acc: Acc, key: string, value: V, arg: A): Acc;
  /** Merges two partial accumulators (on the caller's thread). */
  combine(a: Acc, b: Acc): Acc;
  /** Optional: turns the last accumulator into the result. */
  finish?(acc: Acc): R;
}

/** A built-in aggregator by name, or a user aggregator export. */
export type AggregatorRef = BuiltinAggregator | ComputeRef;

// ── internal: pool messages ─────────────────────────────────────────────────────────────────────

/** An aggregator as it travels to a pool thread: a built-in name, or a registered module name and export (never a location). */
export type AggregatorSpec = BuiltinAggregator | { readonly module: string; readonly name: string };

/**
 * Handed to every pool thread once, as workerData. `gates`: on a processor thread
 * (processor-threads.ts), the gate table of its pool, which makes it serve ProcessorRequests.
 */
export interface PoolInit {
  handle: import('../runtime/messages.js').GridHandle;
  gates?: Int32Array;
}

export type PoolTask =
  | { kind: 'noop' }
  | { kind: 'aggregate'; map: string; partitions: number[]; aggregator: AggregatorSpec; arg: unknown }
  | ProcessorTask;

/**
 * An entry processor run on a pool thread (a cluster member's compute: never on its main thread).
 * `arg` and the reply's value are the value codec's msgpack bytes (cluster/plain.ts), as on the
 * wire. `gate` (a GATE_SIZE view of the processor threads' shared gate table, GATE_* slots)
 * decides, once, whether the processor's write happens or the thread is stopped (pool.ts
 * runProcessor).
 */
export interface ProcessorTask {
  kind: 'compute';
  map: string;
  key: string;
  processor: { readonly module: string; readonly name: string };
  arg: Uint8Array | undefined;
  gate: Int32Array;
}

/**
 * An entry processor task as it is posted to a processor thread (processor-threads.ts): the value
 * codec's msgpack bytes (storage/codec.ts) of `[id, map, key, module, export, arg, gate]`, `gate`
 * the task's slot in the pool's gate table (GATE_SIZE Int32 words from `gate * GATE_SIZE`). One
 * byte array crosses the port, not an object graph: structured clone of the task object and
 * piscina's envelope cost the member more than the processor (native-notes.md, "Processor
 * threads").
 */
export type ProcessorRequest = [id: number, map: string, key: string, module: string, name: string, arg: Uint8Array | undefined, gate: number];
/**
 * A processor thread's answer, msgpack bytes as the request: `[id, 1, result, write kind, type,
 * bytes, len, num]` (write kind W_NONE: nothing to write, the rest of the write absent) or
 * `[id, 0, WireError]`.
 */
export type ProcessorResponse =
  | [id: number, ok: 1, r: Uint8Array | undefined, k: number, type?: number, bytes?: Uint8Array | string | null, len?: number, num?: number]
  | [id: number, ok: 0, error: WireError];

/** Int32 words of one gate: GATE_STATE, GATE_THREAD. */
export const GATE_SIZE = 2;
/** Gate slot: RUNNING until one side claims it: the pool thread (COMMITTED, before it writes) or the caller's timer (STOPPED, then it stops the thread). */
export const GATE_STATE = 0;
/** Gate slot: the pool thread's threadId + 1 once the task started there (0: still queued). */
export const GATE_THREAD = 1;
export const GATE_RUNNING = 0;
export const GATE_COMMITTED = 1;
export const GATE_STOPPED = 2;

/** What a compute writes (local.ts writeComputed): nothing, the key's expired record dropped, a value stored, the key removed. */
export const W_NONE = 0;
export const W_EXPIRED = 1;
export const W_PUT = 2;
export const W_REMOVE = 3;

/**
 * A pool thread's compute (PoolReply value): the processor's result as msgpack bytes and, when it
 * writes, the write (the value's type, bytes (null for a number), length and number), which the
 * caller applies under the partition lock the thread kept for it (local.ts applyComputed).
 */
export interface ProcessorReply {
  r: Uint8Array | undefined;
  w?: { k: number; type: number; bytes: Uint8Array | string | null; len: number; num: number };
}

/** Errors come back as data (structured clone drops the class and custom fields) and are rebuilt. */
export type PoolReply = { ok: true; value: unknown } | { ok: false; error: WireError };
