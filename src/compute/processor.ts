/**
 * Entry processors: loading (before any lock is taken) and calling (under the partition lock, on
 * the calling thread), within a time limit. GridMap.computeLocal does the locking, reading and
 * writing; this file only knows about user code.
 */
import { Script } from 'node:vm';
import { ComputeError, ModuleLoadError, TimeoutError } from '../errors.js';
import { exportOf, isThenable, loadModule, loadedModule, resolveRef, userError, type ModuleRef } from './modules.js';
import type { ComputeRef, ProcessorEntry } from './types.js';
import type { ModuleTable } from '../config.js';

const WHAT = 'entry processor';

export type ProcessorFn = (entry: ProcessorEntry<unknown>, arg: unknown) => unknown;

export interface LoadedProcessor {
  readonly ref: ModuleRef;
  readonly fn: ProcessorFn;
}

function check(ref: ModuleRef, v: unknown): LoadedProcessor {
  if (typeof v !== 'function') {
    throw new ModuleLoadError(`export '${ref.name}' of module '${ref.module}' is not a function (an entry processor is called as fn(entry, arg))`, { module: ref.module, url: ref.url, export: ref.name });
  }
  return { ref, fn: v as ProcessorFn };
}

/**
 * Resolves a processor through the grid's registry and loads it. Synchronous (no await for the
 * caller) when this thread has the module already; otherwise a Promise. Throws
 * InvalidArgumentError / UnknownModuleError / ModuleLoadError.
 */
export function loadProcessor(processor: ComputeRef, modules: ModuleTable): LoadedProcessor | Promise<LoadedProcessor> {
  const ref = resolveRef(processor, 'processor', modules);
  const ns = loadedModule(ref.url);
  if (ns !== undefined) return check(ref, exportOf(ns, ref, WHAT));
  return loadModule(ref.url, WHAT).then((m) => check(ref, exportOf(m, ref, WHAT)));
}

/** The entry handed to a processor, and what it did to it. */
export interface EntryBox {
  readonly entry: ProcessorEntry<unknown>;
  assigned: boolean;
  value: unknown;
}

export function newEntry(key: string, value: unknown): EntryBox {
  const box: EntryBox = {
    // an own, enumerable accessor: spreading or JSON-printing the entry shows its value
    entry: {
      key,
      get value() {
        return box.value;
      },
      set value(v: unknown) {
        box.value = v;
        box.assigned = true;
      },
    },
    assigned: false,
    value,
  };
  return box;
}

/** The TimeoutError of a processor whose `ms` ran out (here, or on a member's compute pool: pool.ts); `what` says how. */
export function processorTimeout(ref: { module: string; name: string }, ms: number, what: string): TimeoutError {
  return new TimeoutError(`${WHAT} '${ref.name}' of module '${ref.module}' ${what} (options.compute.processorTimeoutMs: ${ms} ms); the entry is unchanged`, {
    module: ref.module, export: ref.name, timeoutMs: ms,
  });
}

/**
 * The watchdog: vm's `timeout` runs a script under a timer thread that terminates the script's
 * execution when it fires, and the call made inside the script goes with it; vm then throws in
 * this frame, so the caller's finally blocks (the partition lock's release) run. The script calls
 * a non-enumerable global slot: the only way into it without compiling code per call.
 */
const SLOT = Symbol.for('shardgrid.processorCall');
// (once per process: the ESM and the CommonJS build of this file may both be loaded)
if (!Object.hasOwn(globalThis, SLOT)) Object.defineProperty(globalThis, SLOT, { value: undefined, writable: true, enumerable: false });
const WATCHDOG = new Script("globalThis[Symbol.for('shardgrid.processorCall')]()", { filename: 'shardgrid:processor-watchdog' });

/** How a watched call ended: 1 returned `outcome`, 2 threw `outcome`. */
let ended = 0;
let outcome: unknown;

/** Calls the processor within `ms` (throws processorTimeout when stopped); leaves `ended` / `outcome`. */
function watched(p: LoadedProcessor, box: EntryBox, arg: unknown, ms: number): void {
  const slots = globalThis as unknown as Record<symbol, unknown>;
  const outer = slots[SLOT]; // a processor that (wrongly) computes inside another
  ended = 0;
  slots[SLOT] = () => {
    try {
      outcome = p.fn(box.entry, arg);
      ended = 1;
    } catch (e) {
      outcome = e;
      ended = 2;
    }
  };
  try {
    WATCHDOG.runInThisContext({ timeout: ms });
  } catch {
    // the timer fired: stopped inside the processor, unless it had ended by then
    if (ended === 0) throw processorTimeout(p.ref, ms, 'did not return in time and was stopped');
  } finally {
    slots[SLOT] = outer;
  }
}

/**
 * Calls the processor; user exceptions and thenables become ComputeError. `limitMs` > 0: the
 * processor is stopped after that long (TimeoutError); on a pool thread the pool stops the thread
 * instead (0 here).
 */
export function callProcessor(p: LoadedProcessor, box: EntryBox, arg: unknown, limitMs: number): unknown {
  let r: unknown;
  if (limitMs > 0) {
    watched(p, box, arg, limitMs);
    r = outcome;
    outcome = undefined;
    if (ended === 2) throw userError(ComputeError, WHAT, p.ref, r);
  } else {
    try {
      r = p.fn(box.entry, arg);
    } catch (e) {
      throw userError(ComputeError, WHAT, p.ref, e);
    }
  }
  if (isThenable(r)) {
    (r as PromiseLike<unknown>).then(undefined, () => undefined); // its rejection is not unhandled
    throw new ComputeError(`${WHAT} '${p.ref.name}' of module '${p.ref.module}' returned a Promise: processors run under the partition lock and must be synchronous`, {
      module: p.ref.module, url: p.ref.url, export: p.ref.name,
    });
  }
  return r;
}
