/**
 * What the layers of a member share (native-notes.md, "Cluster layers"): its identity, its
 * connections and its metadata log, as the lifecycle (node.ts) owns them. Layers read them
 * through this interface and never call the lifecycle back: calls go one way, from the map facade
 * (routed-map.ts) through routing (routing.ts) to the partition replicas (replicas.ts), with
 * migration (migration.ts) and the FAST service (fast-serve.ts) beside routing, over metadata.
 */
import type { ShardStore } from '../storage/store.js';
import type { LogFn, Transport } from '../transport/transport.js';
import type { Membership } from './membership.js';
import type { Metadata } from './metadata/metadata.js';

/** How long an operation keeps retrying a moved partition or an unreachable primary. */
export const RETRY_DEADLINE_MS = 15_000;

/**
 * Test-only negative control (never set it in production): primaries serve without checking their
 * lease, and copies apply replicated writes and snapshots without the epoch fence, as before the
 * fencing work. The fault harness must catch it.
 */
export const UNFENCED = process.env.SHARDGRID_UNSAFE_UNFENCED === '1';

/**
 * Test-only negative control for the harness's memory mode (never set it in production): with
 * each key its primary evicted, the eviction journal's drain also ships "absent" for the key this
 * member last replicated in the partition, so copies drop a key the primary still holds.
 * A failover then loses acknowledged writes that no member evicted, which the checker must catch.
 */
export const UNSAFE_SHIP_WRONG_KEY = process.env.SHARDGRID_UNSAFE_SHIP_WRONG_KEY === '1';

/**
 * Test-only negative control for the harness's member clients (never set it in production): a
 * `set` a member makes on a key it is the primary of is acknowledged as soon as it is applied
 * here, and replicated only a second later (asynchronous replication), so a kill -9 of the member
 * within that second loses acknowledged sets. Sets that arrive from other members are untouched:
 * only clients running inside a data member (test/nemesis/member.mjs) can see it.
 */
export const UNSAFE_EARLY_OWN_ACK = process.env.SHARDGRID_UNSAFE_EARLY_OWN_ACK === '1';

/** A request id and the result it produced (dedupe.ts). */
export type Done = [string, unknown];

export interface MemberContext {
  /** This member's id (a new one after each rejoin). */
  readonly memberId: string;
  readonly lite: boolean;
  readonly partitions: number;
  /** Configured backups per partition (cluster.backups). */
  readonly backups: number;
  readonly store: ShardStore;
  readonly transport: Transport;
  readonly membership: Membership;
  readonly meta: Metadata;
  /** Closed for good. */
  readonly closed: boolean;
  /** Removed, until the old identity is torn down: nothing is served. */
  readonly restarting: boolean;
  readonly log: LogFn;
  /** Connects to member `id` if not connected (MemberUnreachableError when it is not alive). */
  ensureLink(id: string): Promise<void>;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
