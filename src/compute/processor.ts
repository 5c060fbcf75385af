/**
 * Entry processors: loading (before any lock is taken) and calling (under the partition lock, on
 * the calling thread). GridMap.computeLocal does the locking, reading and writing; this file only
 * knows about user code.
 */
import { ComputeError, ModuleLoadError } from '../errors.js';
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

/** Calls the processor; user exceptions and thenables become ComputeError. */
export function callProcessor(p: LoadedProcessor, box: EntryBox, arg: unknown): unknown {
  let r: unknown;
  try {
    r = p.fn(box.entry, arg);
  } catch (e) {
    throw userError(ComputeError, WHAT, p.ref, e);
  }
  if (isThenable(r)) {
    (r as PromiseLike<unknown>).then(undefined, () => undefined); // its rejection is not unhandled
    throw new ComputeError(`${WHAT} '${p.ref.name}' of module '${p.ref.module}' returned a Promise: processors run under the partition lock and must be synchronous`, {
      module: p.ref.module, url: p.ref.url, export: p.ref.name,
    });
  }
  return r;
}
