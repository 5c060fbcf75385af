/**
 * The protected side of fencing: a resource remembers the newest token it has seen (per resource
 * name) and refuses writes that carry an older one. This is what makes a lock with leases safe:
 * a holder that was paused past its lease still has its old token, and the resource, not the
 * lock, turns it away (Kleppmann, "How to do distributed locking").
 */
import { InvalidArgumentError, StaleTokenError } from '../errors.js';

/** What {@link createFence} returns: the newest fencing token seen, per resource name. */
export interface Fence {
  /**
   * Accepts `token` for `resource` when it is not older than the newest seen (equal is accepted:
   * the same holder writing again), and remembers it. Throws GRID_ERR_STALE_TOKEN otherwise.
   *
   * @param resource - The name of the guarded resource.
   * @param token - The fencing token of the lock the writer holds (an integer > 0).
   * @throws {StaleTokenError} when a newer token was seen for `resource` (GRID_ERR_STALE_TOKEN).
   * @throws {InvalidArgumentError} when `resource` is not a string, or `token` is not a safe integer or bigint > 0 (GRID_ERR_INVALID_ARGUMENT).
   */
  check(resource: string, token: number | bigint): void;
  /** The newest token seen for `resource`, or undefined. */
  highest(resource: string): number | bigint | undefined;
}

/**
 * A fence for the resources one thread or process guards (tokens compared as numbers or bigints).
 * It lives in the memory of this thread: keep it in front of the resource.
 *
 * @returns A new, empty fence.
 *
 * @example
 * ```ts
 * const fence = createFence();
 * async function saveOrder(order: Order, token: number) {
 *   fence.check(`order:${order.id}`, token); // StaleTokenError (GRID_ERR_STALE_TOKEN) for an older token
 *   await db.write(order);
 * }
 * ```
 */
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
