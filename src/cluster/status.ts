/**
 * Cluster status from outside the cluster: a short-lived Transport (not a member: it joins no
 * membership and owns nothing) authenticates to any member with the cluster secret, asks it
 * 'cluster-status' and closes. The member answers for the whole cluster: its own view of the
 * partition table and membership, plus the figures each data member reported (a member that did
 * not answer in time has `error` set and no entries / bytes figures).
 */
import { randomBytes } from 'node:crypto';
import { MEMBER_URL_FORM, SECRET_RULE_MESSAGE, isMemberUrl, isStrongEnoughSecret, tlsMaterialProblem } from '../config.js';
import { InvalidArgumentError, InvalidOptionError, ProtocolError } from '../errors.js';
import { Transport, type TlsOptions } from '../transport/transport.js';
import { memberIdFor } from '../transport/identity.js';
import { safeText } from '../transport/wire.js';
import type { CpCounts } from './metadata/cp-state.js';

/** One member in a {@link ClusterStatus}, as the answering member sees it. */
export interface ClusterMemberStatus {
  /** The member's id. */
  id: string;
  /** The address other members dial to reach it. */
  url: string;
  /** True for a lite member (it owns no partitions). */
  lite: boolean;
  /**
   * Its status in the answering member's view: SWIM's (`alive`, `suspect`, `dead`, `left`), or
   * `unknown` for a member the partition table or the metadata log still names but SWIM never
   * heard of (or forgot). A member that is not alive or suspect is listed as long as the table
   * gives it partitions or the log holds it (until the metadata leader removes it), with its
   * partition counts and `error` set: those partitions are on a member nobody reaches.
   */
  status: 'alive' | 'suspect' | 'dead' | 'left' | 'unknown';
  /** When it started, ms since the epoch (its own clock). */
  startedAt: number;
  /** True for the metadata Raft leader (the coordinator), as the answering member knows it. */
  coordinator: boolean;
  /** Partitions this member is primary of. */
  primaries: number;
  /** Partitions this member holds a backup copy of. */
  backups: number;
  /** Entries in the member's memory, backup copies included (its `grid.stats().entries`). */
  entries?: number;
  /** Bytes of its memory budget in use (its `grid.stats().bytesUsed`). */
  bytesUsed?: number;
  /** Its memory budget in bytes (its `grid.stats().bytesLimit`). */
  bytesLimit?: number;
  /** Set (and the three figures above absent) when this member did not answer. */
  error?: string;
}

/**
 * The CP subsystem in a {@link ClusterStatus}: `grid.cp`'s locks, semaphores and atomics, whose
 * state machine runs on the metadata Raft log (its group is the metadata group: the same leader
 * and term). Counted from the state the answering member applied up to `index` (a lite member
 * asks a data member), so a follower may be a few entries behind the leader.
 */
export interface ClusterCpStatus extends CpCounts {
  /** The leader of the group (the coordinator), as the member that counted knows it. */
  leader?: string;
  /** Its Raft term. */
  term: number;
  /** The last log index applied to the state counted. */
  index: number;
}

/** What {@link fetchClusterStatus} returns: the answering member's view of the whole cluster. */
export interface ClusterStatus {
  /** The member that answered. */
  self: string;
  /** The version of the partition table the answering member applies. */
  tableVersion: number;
  /** The cluster's partition count. */
  partitions: number;
  /** The cluster's `backups` setting. */
  backups: number;
  /** Partitions being migrated now. */
  migrating: number;
  /**
   * The first 32 of those partitions, each with its primary (`from`: it streams the copy; absent
   * when the partition has no owner) and the members a copy is streamed to: what is moving, so
   * that a count that stays can be told from one that goes down.
   */
  migrations?: Array<{ partition: number; from?: string; to: string[] }>;
  /** The metadata Raft leader (the coordinator) as the answering member knows it, and its term. */
  leader?: string;
  /** The Raft term of that leader. */
  term?: number;
  /** Partitions that lost every copy at some point (their data is gone): beyond the configured tolerance. */
  lostPartitions?: number[];
  /** The answering member's metadata view: its Raft role, the voters and learners, its lease (ms left) and safe version. */
  metadata?: { role: string; voters: readonly string[]; learners: readonly string[]; leaseMs: number; safe: number };
  /** The CP subsystem (grid.cp): its Raft group's leader and term, and counts of what it holds; absent when no data member answered. */
  cp?: ClusterCpStatus;
  /**
   * Every member the answering member knows alive or suspect, with the figures each reported, then
   * every other member the partition table or the metadata log still names (dead, left, unknown).
   */
  members: ClusterMemberStatus[];
}

/** The message type a member answers with its ClusterStatus. */
export const CLUSTER_STATUS_REQUEST = 'cluster-status';

/**
 * Asks the member listening at `url` for the cluster status. Rejects with a GridError:
 * GRID_ERR_MEMBER_UNREACHABLE (nothing listening, connection lost), GRID_ERR_AUTH (wrong secret),
 * GRID_ERR_TIMEOUT (no answer within timeoutMs, connecting included), GRID_ERR_PROTOCOL (the
 * answer is not a status), GRID_ERR_UNSUPPORTED (the member does not serve status);
 * GRID_ERR_INVALID_OPTION naming options.cluster.secret, before anything is sent, when the secret
 * is under 16 bytes (no member accepts one), or naming the part of `tls` that is unusable (as
 * createGrid checks `cluster.tls`: a key that is not PEM or does not match the certificate, an
 * expired certificate, one the CA did not sign).
 *
 * @param url - The ws:// or wss:// URL of any member.
 * @param secret - The cluster secret (at least 16 UTF-8 bytes).
 * @param timeoutMs - How long to wait for the answer, connecting included (a positive integer; default 5000).
 * @param tls - For a wss:// member: this client's key and certificate and the cluster's CA (mutual TLS).
 * @returns The status of the cluster as that member sees it.
 * @throws {MemberUnreachableError} when nothing listens at `url` or the connection is lost (GRID_ERR_MEMBER_UNREACHABLE).
 * @throws {AuthenticationError} when the member refuses the secret (GRID_ERR_AUTH).
 * @throws {TimeoutError} when no answer came within `timeoutMs` (GRID_ERR_TIMEOUT).
 * @throws {ProtocolError} when the answer is not a cluster status (GRID_ERR_PROTOCOL).
 * @throws {UnsupportedError} when the member does not serve status (GRID_ERR_UNSUPPORTED).
 * @throws {InvalidOptionError} when `secret` is under 16 bytes, naming options.cluster.secret, or `tls` is unusable, naming options.cluster.tls.key, .cert or .ca (GRID_ERR_INVALID_OPTION).
 * @throws {InvalidArgumentError} when `timeoutMs` is not a positive integer, `url` is not a member url (ws:// or wss:// and host:port only), or `url` is wss:// and `tls` is not given (GRID_ERR_INVALID_ARGUMENT).
 *
 * @example
 * ```ts
 * const status = await fetchClusterStatus('ws://127.0.0.1:7400', process.env.SHARDGRID_SECRET!);
 * console.log(status.members.map((m) => `${m.id} ${m.status} ${m.primaries}`));
 * ```
 */
export async function fetchClusterStatus(url: string, secret: string, timeoutMs = 5000, tls?: TlsOptions): Promise<ClusterStatus> {
  if (!isStrongEnoughSecret(secret)) throw new InvalidOptionError(`options.cluster.secret ${SECRET_RULE_MESSAGE}`, { option: 'options.cluster.secret' });
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new InvalidArgumentError(`fetchClusterStatus: timeoutMs must be a positive integer (got ${String(timeoutMs)})`);
  // before listening: Transport.connect refuses it too, but this names the function
  if (!isMemberUrl(url)) throw new InvalidArgumentError(`fetchClusterStatus: url must be ${MEMBER_URL_FORM}, got ${safeText(url)}`);
  if (tls === undefined && url.startsWith('wss://')) {
    throw new InvalidArgumentError(`fetchClusterStatus: ${url} is a member with mutual TLS: pass tls (this client's key and certificate and the cluster CA)`);
  }
  if (tls !== undefined && typeof tls === 'object' && tls !== null) {
    const p = tlsMaterialProblem(tls, (part) => `options.cluster.tls.${part}`);
    if (p !== undefined) throw new InvalidOptionError(`options.cluster.tls.${p.part} ${p.message}`, { option: `options.cluster.tls.${p.part}` });
  }
  const deadline = Date.now() + timeoutMs;
  const t = await Transport.listen({
    host: '127.0.0.1',
    port: 0,
    secret,
    memberId: memberIdFor(`status-${randomBytes(8).toString('hex')}`, tls),
    // a wss:// member asks for our certificate (mutual TLS)
    ...(tls === undefined ? {} : { tls }),
    // failures reach the caller as rejections; a CLI must not also print transport warnings
    log: () => undefined,
  });
  try {
    const peer = await t.connect(url, timeoutMs);
    const status = await t.request<unknown>(peer, CLUSTER_STATUS_REQUEST, {}, Math.max(1, deadline - Date.now()));
    if (!isClusterStatus(status)) throw new ProtocolError(`member ${peer} at ${url} answered ${CLUSTER_STATUS_REQUEST} with something that is not a cluster status`, { url });
    return status;
  } finally {
    await t.close();
  }
}

function isClusterStatus(x: unknown): x is ClusterStatus {
  if (typeof x !== 'object' || x === null) return false;
  const s = x as Record<string, unknown>;
  return (
    typeof s.self === 'string' &&
    typeof s.tableVersion === 'number' &&
    typeof s.partitions === 'number' &&
    typeof s.backups === 'number' &&
    typeof s.migrating === 'number' &&
    (s.cp === undefined || isCpStatus(s.cp)) &&
    // the lists the human form walks: a malformed one threw in the CLI ("unexpected error")
    (s.lostPartitions === undefined || (Array.isArray(s.lostPartitions) && s.lostPartitions.every((p) => typeof p === 'number'))) &&
    (s.migrations === undefined || (Array.isArray(s.migrations) && s.migrations.every(isMigration))) &&
    Array.isArray(s.members) &&
    s.members.every((m) => typeof m === 'object' && m !== null && typeof (m as ClusterMemberStatus).id === 'string')
  );
}

function isMigration(x: unknown): boolean {
  if (typeof x !== 'object' || x === null) return false;
  const m = x as Record<string, unknown>;
  return typeof m.partition === 'number' && (m.from === undefined || typeof m.from === 'string') && Array.isArray(m.to) && m.to.every((t) => typeof t === 'string');
}

const CP_COUNTS: ReadonlyArray<keyof ClusterCpStatus> = ['term', 'index', 'sessions', 'locks', 'locksHeld', 'semaphores', 'permitsHeld', 'atomicLongs', 'atomicRefs', 'waiters'];

/** A ClusterCpStatus as it came off the wire: every count a number, the leader a string when present. */
export function isCpStatus(x: unknown): x is ClusterCpStatus {
  if (typeof x !== 'object' || x === null) return false;
  const c = x as Record<string, unknown>;
  return (c.leader === undefined || c.leader === null || typeof c.leader === 'string') && CP_COUNTS.every((k) => typeof c[k] === 'number');
}
