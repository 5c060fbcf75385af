/**
 * Aggregators: the built-ins ('count', 'sum', 'min', 'max', 'distinct') and the wrapper around a
 * user `{ init, accumulate, combine, finish? }` export.
 *
 * An aggregation runs in two halves. On a pool thread a *collector* visits the entries of a group
 * of partitions and produces a *partial* (structured-clonable, and for the built-ins also plain
 * msgpack data, so partials can later cross the wire). On the caller, partials are merged with
 * `combine` and turned into the result with `finish`.
 *
 * Built-in collectors are trusted code and run inside the partition scan, under the partition
 * lock, without copying anything. User collectors never run under a lock: the scan copies a
 * partition's entries out, releases the lock, and only then calls `accumulate` (a slow or
 * throwing accumulator cannot hold up writers).
 */
import { Packr } from 'msgpackr';
import { ComputeError, InvalidArgumentError, ModuleLoadError, UnencodableValueError, WrongTypeError } from '../errors.js';
import { exportOf, isThenable, loadModule, loadedModule, resolveRef, userError, type ModuleRef } from './modules.js';
import type { AggregatorRef, AggregatorSpec, BuiltinAggregator } from './types.js';
import type { ModuleTable } from '../config.js';
import { FieldReader } from './msgpack-field.js';

const WHAT = 'aggregator';
const BUILTINS: readonly BuiltinAggregator[] = ['count', 'sum', 'min', 'max', 'distinct'];

/** Visits the entries of one task (a group of partitions) on a pool thread. */
export interface Collector {
  /** The scan must decode keys / values for `visit`. */
  readonly keys: boolean;
  readonly values: boolean;
  /** true: `visit` runs inside the locked scan. false: visits only collect; `flush` runs user code after the lock is released. */
  readonly underLock: boolean;
  visit(key: string | undefined, value: unknown): void;
  /**
   * Built-ins over a field: reads the field of msgpack object values in place (no decode); the
   * scan then calls visitField with the field's value, or visit with the decoded value where the
   * reader answers FALLBACK.
   */
  readonly field?: FieldReader;
  visitField?(x: number | null | undefined): void;
  flush(): void;
  partial(): unknown;
}

/** A resolved aggregator: what the caller and the pool threads need. */
export interface ResolvedAggregator {
  readonly spec: AggregatorSpec;
  /** Checks the argument on the caller, before any task is sent (InvalidArgumentError). */
  validate(arg: unknown): void;
  collector(arg: unknown): Collector;
  /** The partial of no entries at all. */
  empty(arg: unknown): unknown;
  combine(a: unknown, b: unknown): unknown;
  finish(partial: unknown): unknown;
}

// ── fields ──────────────────────────────────────────────────────────────────────────────────────

/** Validates a built-in's arg and splits its field path. null: the value itself. */
function fieldPath(name: BuiltinAggregator, arg: unknown): string[] | null {
  if (arg === undefined || arg === null) return null;
  if (typeof arg !== 'object' || Array.isArray(arg)) throw new InvalidArgumentError(`the argument of aggregator '${name}' must be { field?: string } or undefined`);
  for (const k of Object.keys(arg)) if (k !== 'field') throw new InvalidArgumentError(`arg.${k} is not a known argument of aggregator '${name}' (only field)`);
  const field = (arg as { field?: unknown }).field;
  if (field === undefined) return null;
  if (typeof field !== 'string' || field.length === 0) throw new InvalidArgumentError(`arg.field of aggregator '${name}' must be a non-empty dot path such as 'a.b'`);
  const path = field.split('.');
  if (path.some((s) => s.length === 0)) throw new InvalidArgumentError(`arg.field of aggregator '${name}' has an empty segment: '${field}'`);
  return path;
}

/** value.a.b for path ['a', 'b']; own properties only, so '__proto__' or 'constructor' never reach a prototype. */
export function pluck(v: unknown, path: readonly string[]): unknown {
  for (let i = 0; i < path.length; i++) {
    if (typeof v !== 'object' || v === null || !Object.hasOwn(v, path[i])) return undefined;
    v = (v as Record<string, unknown>)[path[i]];
  }
  return v;
}

function notNumber(name: string, path: string[] | null, x: unknown): WrongTypeError {
  const what = path === null ? 'values' : `values at field '${path.join('.')}'`;
  const t = Array.isArray(x) ? 'array' : x instanceof Uint8Array ? 'byte array' : typeof x;
  return new WrongTypeError(`aggregator '${name}' needs number ${what}; found a ${t}`, { aggregator: name, field: path?.join('.'), found: t });
}

// ── built-in collectors (run under the partition lock) ──────────────────────────────────────────

/** A built-in over the value itself (path null) or over a field of object values. */
abstract class FieldCollector implements Collector {
  readonly keys = false;
  readonly values: boolean = true;
  readonly underLock = true;
  readonly field: FieldReader | undefined;
  constructor(protected readonly path: string[] | null) {
    this.field = path === null ? undefined : new FieldReader(path);
  }
  visit(_k: string | undefined, v: unknown): void {
    this.take(this.path === null ? v : pluck(v, this.path));
  }
  visitField(x: number | null | undefined): void {
    this.take(x);
  }
  protected abstract take(x: unknown): void;
  flush(): void {}
  abstract partial(): unknown;
}

class CountCollector extends FieldCollector {
  override readonly values: boolean;
  n = 0;
  constructor(path: string[] | null) {
    super(path);
    this.values = path !== null;
  }
  override visit(k: string | undefined, v: unknown): void {
    if (this.path === null) this.n++;
    else super.visit(k, v);
  }
  protected take(x: unknown): void {
    if (x !== undefined && x !== null) this.n++;
  }
  partial(): number {
    return this.n;
  }
}

class SumCollector extends FieldCollector {
  sum = 0;
  protected take(x: unknown): void {
    if (typeof x === 'number') this.sum += x;
    else if (x !== undefined && x !== null) throw notNumber('sum', this.path, x);
  }
  partial(): number {
    return this.sum;
  }
}

class MinMaxCollector extends FieldCollector {
  best: number | null = null;
  constructor(path: string[] | null, private readonly max: boolean) {
    super(path);
  }
  protected take(x: unknown): void {
    if (typeof x === 'number') {
      const b = this.best;
      this.best = b === null ? x : this.max ? Math.max(b, x) : Math.min(b, x);
    } else if (x !== undefined && x !== null) {
      throw notNumber(this.max ? 'max' : 'min', this.path, x);
    }
  }
  partial(): number | null {
    return this.best;
  }
}

const keyPackr = new Packr({ useRecords: false });

/** Distinct values: primitives by SameValueZero, everything else (objects, arrays, bytes) by its msgpack encoding. */
class DistinctSet {
  private readonly prims = new Map<unknown, true>();
  private readonly objs = new Map<string, unknown>();
  add(x: unknown): void {
    if (typeof x === 'object' && x !== null) {
      const k = keyPackr.pack(x).toString('latin1');
      if (!this.objs.has(k)) this.objs.set(k, x);
    } else {
      this.prims.set(x, true);
    }
  }
  addAll(xs: unknown): void {
    if (Array.isArray(xs)) for (const x of xs) this.add(x);
  }
  toArray(): unknown[] {
    return [...this.prims.keys(), ...this.objs.values()];
  }
}

class DistinctCollector extends FieldCollector {
  readonly set = new DistinctSet();
  protected take(x: unknown): void {
    if (x !== undefined && x !== null) this.set.add(x);
  }
  partial(): unknown[] {
    return this.set.toArray();
  }
}

const minOf = (a: unknown, b: unknown, max: boolean): number | null => {
  if (typeof a !== 'number') return typeof b === 'number' ? b : null;
  if (typeof b !== 'number') return a;
  return max ? Math.max(a, b) : Math.min(a, b);
};

function builtin(name: BuiltinAggregator): ResolvedAggregator {
  const spec = name;
  switch (name) {
    case 'count':
    case 'sum':
      return {
        spec,
        validate: (arg) => void fieldPath(name, arg),
        collector: (arg) => (name === 'count' ? new CountCollector(fieldPath(name, arg)) : new SumCollector(fieldPath(name, arg))),
        empty: () => 0,
        combine: (a, b) => (a as number) + (b as number),
        finish: (p) => p,
      };
    case 'min':
    case 'max':
      return {
        spec,
        validate: (arg) => void fieldPath(name, arg),
        collector: (arg) => new MinMaxCollector(fieldPath(name, arg), name === 'max'),
        empty: () => null,
        combine: (a, b) => minOf(a, b, name === 'max'),
        finish: (p) => (p === null ? undefined : p),
      };
    case 'distinct':
      return {
        spec,
        validate: (arg) => void fieldPath(name, arg),
        collector: (arg) => new DistinctCollector(fieldPath(name, arg)),
        empty: () => [],
        combine: (a, b) => {
          const s = new DistinctSet();
          s.addAll(a);
          s.addAll(b);
          return s.toArray();
        },
        finish: (p) => p,
      };
  }
}

const BUILT: ReadonlyMap<string, ResolvedAggregator> = new Map(BUILTINS.map((n) => [n, builtin(n)]));

// ── user aggregators ────────────────────────────────────────────────────────────────────────────

interface UserExport {
  init(arg: unknown): unknown;
  accumulate(acc: unknown, key: string, value: unknown, arg: unknown): unknown;
  combine(a: unknown, b: unknown): unknown;
  finish?(acc: unknown): unknown;
}

function userShape(ref: ModuleRef, v: unknown): UserExport {
  const o = v as Partial<UserExport> | null;
  const ok = (typeof o === 'object' || typeof o === 'function') && o !== null &&
    typeof o.init === 'function' && typeof o.accumulate === 'function' && typeof o.combine === 'function' &&
    (o.finish === undefined || typeof o.finish === 'function');
  if (!ok) {
    throw new ModuleLoadError(`export '${ref.name}' of module '${ref.module}' is not an aggregator: it needs init, accumulate and combine functions (finish is optional)`, { module: ref.module, url: ref.url, export: ref.name });
  }
  return o as UserExport;
}

function sync(ref: ModuleRef, step: string, x: unknown): unknown {
  if (isThenable(x)) {
    (x as PromiseLike<unknown>).then(undefined, () => undefined);
    throw new ComputeError(`${WHAT} '${ref.name}' of module '${ref.module}': ${step} returned a Promise; aggregators must be synchronous`, { module: ref.module, url: ref.url, export: ref.name, step });
  }
  return x;
}

class UserCollector implements Collector {
  readonly keys = true;
  readonly values = true;
  readonly underLock = false;
  private readonly ks: string[] = [];
  private readonly vs: unknown[] = [];
  private acc: unknown;
  constructor(private readonly ref: ModuleRef, private readonly agg: UserExport, private readonly arg: unknown) {
    try {
      this.acc = sync(ref, 'init', agg.init(arg));
    } catch (e) {
      throw e instanceof ComputeError ? e : userError(ComputeError, `${WHAT}`, ref, e, { step: 'init' });
    }
  }
  visit(key: string | undefined, value: unknown): void {
    this.ks.push(key as string);
    this.vs.push(value);
  }
  flush(): void {
    const { ks, vs, agg, arg } = this;
    let acc = this.acc;
    let i = 0;
    try {
      for (; i < ks.length; i++) acc = agg.accumulate(acc, ks[i], vs[i], arg);
    } catch (e) {
      throw userError(ComputeError, WHAT, this.ref, e, { step: 'accumulate', key: ks[i] });
    }
    this.acc = acc;
    ks.length = 0;
    vs.length = 0;
  }
  partial(): unknown {
    const acc = sync(this.ref, 'accumulate', this.acc);
    try {
      structuredClone(acc); // it must cross to the caller; fail here, not in piscina's postMessage
    } catch (e) {
      throw new UnencodableValueError(`the accumulator of ${WHAT} '${this.ref.name}' of module '${this.ref.module}' cannot be passed between threads: ${(e as Error).message}`, { module: this.ref.module, url: this.ref.url, export: this.ref.name });
    }
    return acc;
  }
}

function user(ref: ModuleRef, agg: UserExport): ResolvedAggregator {
  const call = (step: string, f: () => unknown): unknown => {
    let r: unknown;
    try {
      r = f();
    } catch (e) {
      throw userError(ComputeError, WHAT, ref, e, { step });
    }
    return sync(ref, step, r);
  };
  return {
    spec: { module: ref.module, name: ref.name },
    validate: () => undefined,
    collector: (arg) => new UserCollector(ref, agg, arg),
    empty: (arg) => call('init', () => agg.init(arg)),
    combine: (a, b) => call('combine', () => agg.combine(a, b)),
    finish: (p) => (agg.finish === undefined ? p : call('finish', () => agg.finish!(p))),
  };
}

// ── resolution ──────────────────────────────────────────────────────────────────────────────────

/**
 * Resolves an aggregator: a built-in name, or `{ module, name }` naming a module of `modules` (the
 * grid's registry on this thread) — as the user gave it, as it came from another member, or as a
 * spec that travelled to a pool thread; all three are resolved alike, and nothing in them is ever
 * used as a location to import. User modules are loaded on this thread (UnknownModuleError,
 * ModuleLoadError).
 */
export function resolveAggregator(ref: AggregatorRef | AggregatorSpec, modules: ModuleTable): ResolvedAggregator | Promise<ResolvedAggregator> {
  if (typeof ref === 'string') {
    const b = BUILT.get(ref);
    if (b === undefined) throw new InvalidArgumentError(`unknown aggregator '${ref.slice(0, 80)}': use one of ${BUILTINS.join(', ')} or { module, name } naming a registered module`);
    return b;
  }
  const mref = resolveRef(ref, 'aggregator', modules);
  const ns = loadedModule(mref.url);
  if (ns !== undefined) return user(mref, userShape(mref, exportOf(ns, mref, WHAT)));
  return loadModule(mref.url, WHAT).then((m) => user(mref, userShape(mref, exportOf(m, mref, WHAT))));
}
