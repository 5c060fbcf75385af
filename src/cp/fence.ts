/**
 * The protected side of fencing: a resource remembers the newest token it has seen (per resource
 * name) and refuses writes that carry an older one. This is what makes a lock with leases safe:
 * a holder that was paused past its lease still has its old token, and the resource, not the
 * lock, turns it away (Kleppmann, "How to do distributed locking").
 */
import { InvalidArgumentError, StaleTokenError } from '../errors.js';

export interface Fence {
  /**
   * Accepts `token` for `resource` when it is not older than the newest seen (equal is accepted:
   * the same holder writing again), and remembers it. Throws GRID_ERR_STALE_TOKEN otherwise.
   */
  check(resource: string, token: number | bigint): void;
  /** The newest token seen for `resource`, or undefined. */
  highest(resource: string): number | bigint | undefined;
}

/** A fence for the resources one thread or process guards (tokens compared as numbers or bigints). */
export function createFence(): Fence {
  const seen = new Map<string, number | bigint>();
  return {
    check(resource: string, token: number | bigint): void {
      if (typeof resource !== 'string') throw new InvalidArgumentError('resource must be a string');
      if (!(typeof token === 'bigint' || (typeof token === 'number' && Number.isSafeInteger(token))) || token <= 0) throw new InvalidArgumentError(`a fencing token is an integer > 0 (got ${String(token)})`);
      const top = seen.get(resource);
      if (top !== undefined && token < top) throw new StaleTokenError(`token ${token} for '${resource}' is older than ${top}, already seen: its lock was lost`, { resource, token: Number(token), highest: Number(top) });
      seen.set(resource, token);
    },
    highest(resource: string): number | bigint | undefined {
      return seen.get(resource);
    },
  };
}
