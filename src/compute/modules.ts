/**
 * User compute modules: registered by name at start, loaded by name. A grid's registry
 * (options.compute.modules, resolved in config.ts to name → file: URL href of an existing file) is
 * handed to its other threads in the grid handle; a call names a registered module and one of its
 * exports, `{ module: 'procs', name: 'addToCart' }`, and only that name ever crosses a thread or
 * the wire. Every receiver resolves the name through its own registry: a name it does not have is
 * refused (UnknownModuleError), and nothing in a call is ever used as a location to import.
 *
 * A module is imported once per thread (Node's loader caches it too, so it is evaluated once per
 * thread and never reloaded). Loaded namespaces are kept in a plain Map so that a warm lookup is
 * synchronous: a processor call never pays an extra await for a module it already has.
 */
import type { ModuleTable } from '../config.js';
import { InvalidArgumentError, ModuleLoadError, UnknownModuleError } from '../errors.js';

export type { ModuleTable } from '../config.js';

export interface ModuleRef {
  /** The registered name. */
  readonly module: string;
  /** The file: URL it was registered with, in this thread's registry. */
  readonly url: string;
  /** The export. */
  readonly name: string;
}

type Namespace = Record<string, unknown>;

const loaded = new Map<string, Namespace>();
const loading = new Map<string, Promise<Namespace>>();

/** A name from a call, shortened for a message (it may come from another member). */
const shown = (s: string): string => (s.length > 80 ? `${s.slice(0, 80)}…` : s);

/**
 * Validates `{ module, name }` (InvalidArgumentError) and resolves the module name through
 * `table` (UnknownModuleError when this grid did not register it).
 */
export function resolveRef(ref: unknown, what: string, table: ModuleTable): ModuleRef {
  const { module, name } = refNames(ref, what);
  const url = Object.hasOwn(table, module) ? table[module] : undefined;
  if (url === undefined) {
    throw new UnknownModuleError(
      `${what} module '${shown(module)}' is not registered in this grid: register it at start with options.compute.modules ` +
        '(CLI: --compute-module name=path), under the same name on every member; a call names a module, it never gives its location',
      { module: shown(module), export: shown(name) },
    );
  }
  return { module, url, name };
}

/** `{ module, name }` as it travels (threads, the wire): only the two names. InvalidArgumentError when malformed. */
export function refNames(ref: unknown, what: string): { module: string; name: string } {
  if (typeof ref !== 'object' || ref === null || ref instanceof URL) {
    throw new InvalidArgumentError(`${what} must be { module, name }: the name of a module registered in options.compute.modules and the name of one of its exports`);
  }
  const { module, name } = ref as { module?: unknown; name?: unknown };
  if (typeof module !== 'string' || module.length === 0) {
    throw new InvalidArgumentError(`${what}.module must be the name of a module registered in options.compute.modules (a non-empty string); paths and URLs are not accepted in calls`);
  }
  if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError(`${what}.name must be the name of an export of the module (a non-empty string)`);
  return { module, name };
}

/** The module's namespace if this thread has loaded it already, else undefined. */
export function loadedModule(url: string): Namespace | undefined {
  return loaded.get(url);
}

/** Imports the module (once per thread). Rejects with ModuleLoadError when it cannot be loaded. */
export function loadModule(url: string, what: string): Promise<Namespace> {
  const ns = loaded.get(url);
  if (ns !== undefined) return Promise.resolve(ns);
  // registries hold file: URLs only (config.ts); anything else is refused here too
  if (!url.startsWith('file:')) return Promise.reject(new ModuleLoadError(`refusing to load ${what} module from ${shown(url)}: only registered file: URLs are loaded`, { module: shown(url) }));
  let p = loading.get(url);
  if (p === undefined) {
    p = (import(url) as Promise<Namespace>).then(
      (m) => {
        loading.delete(url);
        loaded.set(url, m);
        return m;
      },
      (e: unknown) => {
        loading.delete(url); // not cached: a module that appears later can still be loaded
        const err = e as { name?: string; message?: string; code?: string } | undefined;
        throw new ModuleLoadError(`cannot load ${what} module ${url}: ${err?.message ?? String(e)}`, {
          module: url, errorName: err?.name ?? typeof e, errorMessage: err?.message ?? String(e), errorCode: err?.code,
        });
      },
    );
    loading.set(url, p);
  }
  return p;
}

/** The named export of a loaded namespace, or ModuleLoadError when it is missing. */
export function exportOf(ns: Namespace, ref: ModuleRef, what: string): unknown {
  const v = Object.hasOwn(ns, ref.name) ? ns[ref.name] : undefined;
  if (v === undefined) {
    throw new ModuleLoadError(`${what} module '${ref.module}' (${ref.url}) has no export '${shown(ref.name)}'`, { module: ref.module, url: ref.url, export: shown(ref.name) });
  }
  return v;
}

/** Builds the ComputeError for user code that threw; keeps the original name and message. */
export function userError(ctor: new (m: string, d?: Record<string, unknown>) => Error, what: string, ref: ModuleRef, e: unknown, extra?: Record<string, unknown>): Error {
  const err = e as { name?: unknown; message?: unknown } | null | undefined;
  const isObj = typeof err === 'object' && err !== null;
  const errorName = isObj && typeof err.name === 'string' ? err.name : typeof e;
  const errorMessage = isObj && typeof err.message === 'string' ? err.message : String(e);
  return new ctor(`${what} '${ref.name}' of module '${ref.module}' threw ${errorName}: ${errorMessage}`, {
    module: ref.module, url: ref.url, export: ref.name, errorName, errorMessage, ...extra,
  });
}

export function isThenable(x: unknown): boolean {
  return (typeof x === 'object' || typeof x === 'function') && x !== null && typeof (x as { then?: unknown }).then === 'function';
}
