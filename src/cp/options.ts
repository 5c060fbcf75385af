/**
 * Checks of the options objects of grid.cp's calls, shared by the in-process primitives
 * (primitives.ts) and the clustered ones (cluster.ts), so that both refuse the same arguments.
 * An unknown key is refused (GRID_ERR_INVALID_ARGUMENT naming it): `lock({ lease: 10_000 })` or
 * `acquire(1, { timeout: 1_000 })` would otherwise hold forever or wait forever without a word.
 */
import { InvalidArgumentError } from '../errors.js';
import { CP_LIMITS } from '../cluster/metadata/cp-state.js';

/** The keys each kind of options may have. */
export const LOCK_KEYS: readonly string[] = Object.freeze(['leaseMs']);
export const TRY_LOCK_KEYS: readonly string[] = Object.freeze(['leaseMs', 'timeoutMs']);
export const WAIT_KEYS: readonly string[] = Object.freeze(['timeoutMs']);
export const SEMAPHORE_KEYS: readonly string[] = Object.freeze(['permits']);

/** `o` as an options object with only `keys` (undefined: none given). */
export function optionsOf(o: unknown, what: string, keys: readonly string[]): Record<string, unknown> {
  if (o === undefined) return {};
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new InvalidArgumentError(`${what} options must be an object (got ${o === null ? 'null' : Array.isArray(o) ? 'an array' : typeof o})`);
  for (const k of Object.keys(o)) {
    if (!keys.includes(k)) throw new InvalidArgumentError(`unknown ${what} option '${k}' (known: ${keys.join(', ')})`, { option: k });
  }
  return o as Record<string, unknown>;
}

/** options.leaseMs checked (finite, > 0, at most one year, in a cluster as in one process), or undefined when not given. */
export function leaseMsOf(o: unknown, keys: readonly string[] = LOCK_KEYS): number | undefined {
  const v = optionsOf(o, 'lock', keys).leaseMs;
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > CP_LIMITS.maxLeaseMs) throw new InvalidArgumentError(`leaseMs must be a finite number of ms > 0 and <= ${CP_LIMITS.maxLeaseMs} (got ${String(v)})`, { option: 'leaseMs' });
  return v;
}

/** options.timeoutMs checked (finite, >= 0), or `dflt` when not given. */
export function timeoutMsOf(o: unknown, dflt: number, keys: readonly string[] = WAIT_KEYS): number {
  const v = optionsOf(o, 'wait', keys).timeoutMs;
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new InvalidArgumentError(`timeoutMs must be a finite number of ms >= 0 (got ${String(v)})`, { option: 'timeoutMs' });
  return v;
}
