/**
 * Loading user compute modules. A reference `{ module, name }` is resolved to a file URL and the
 * module imported once per thread (Node's loader caches it too, so a module is evaluated once per
 * thread and never reloaded). Loaded namespaces are kept in a plain Map so that a warm lookup is
 * synchronous: a processor call never pays an extra await for a module it already has.
 */
import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import { InvalidArgumentError, ModuleLoadError } from '../errors.js';

export interface ModuleRef {
  readonly url: string;
  readonly name: string;
}

type Namespace = Record<string, unknown>;

const hrefOf = new Map<string, string>();
const loaded = new Map<string, Namespace>();
const loading = new Map<string, Promise<Namespace>>();

function toHref(module: unknown, what: string): string {
  if (module instanceof URL) {
    if (module.protocol !== 'file:') throw new InvalidArgumentError(`${what}.module must be a file URL (got ${module.protocol} URL)`);
    return module.href;
  }
  if (typeof module !== 'string') throw new InvalidArgumentError(`${what}.module must be an absolute file URL or an absolute path of an ES module`);
  const known = hrefOf.get(module);
  if (known !== undefined) return known;
  let href: string;
  if (module.startsWith('file:')) {
    try {
      href = new URL(module).href;
    } catch {
      throw new InvalidArgumentError(`${what}.module is not a valid file URL: '${module}'`);
    }
  } else if (isAbsolute(module)) {
    href = pathToFileURL(module).href;
  } else {
    throw new InvalidArgumentError(`${what}.module must be an absolute file URL or an absolute path of an ES module (got '${module}')`);
  }
  if (hrefOf.size > 1000) hrefOf.clear();
  hrefOf.set(module, href);
  return href;
}

/** Validates `{ module, name }` (InvalidArgumentError) and resolves the module to a file URL. */
export function resolveRef(ref: unknown, what: string): ModuleRef {
  if (typeof ref !== 'object' || ref === null || ref instanceof URL) {
    throw new InvalidArgumentError(`${what} must be { module, name }: an ES module (absolute file URL or path) and the name of one of its exports`);
  }
  const { module, name } = ref as { module?: unknown; name?: unknown };
  if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError(`${what}.name must be the name of an export of the module (a non-empty string)`);
  return { url: toHref(module, what), name };
}

/** The module's namespace if this thread has loaded it already, else undefined. */
export function loadedModule(url: string): Namespace | undefined {
  return loaded.get(url);
}

/** Imports the module (once per thread). Rejects with ModuleLoadError when it cannot be loaded. */
export function loadModule(url: string, what: string): Promise<Namespace> {
  const ns = loaded.get(url);
  if (ns !== undefined) return Promise.resolve(ns);
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
    throw new ModuleLoadError(`${what} module ${ref.url} has no export '${ref.name}'`, { module: ref.url, export: ref.name });
  }
  return v;
}

/** Builds the ComputeError for user code that threw; keeps the original name and message. */
export function userError(ctor: new (m: string, d?: Record<string, unknown>) => Error, what: string, ref: ModuleRef, e: unknown, extra?: Record<string, unknown>): Error {
  const err = e as { name?: unknown; message?: unknown } | null | undefined;
  const isObj = typeof err === 'object' && err !== null;
  const errorName = isObj && typeof err.name === 'string' ? err.name : typeof e;
  const errorMessage = isObj && typeof err.message === 'string' ? err.message : String(e);
  return new ctor(`${what} '${ref.name}' of ${ref.url} threw ${errorName}: ${errorMessage}`, {
    module: ref.url, export: ref.name, errorName, errorMessage, ...extra,
  });
}

export function isThenable(x: unknown): boolean {
  return (typeof x === 'object' || typeof x === 'function') && x !== null && typeof (x as { then?: unknown }).then === 'function';
}
