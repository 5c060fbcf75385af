/**
 * Raft message and entry shapes, the errors the core returns, and `validateMessage`, the strict
 * check every message decoded from the network must pass before it reaches `RaftNode.step`.
 *
 * Everything here is plain data (strings, integers, booleans, arrays, Uint8Array) so that it
 * crosses the wire msgpack-encoded unchanged. This module imports nothing: `src/raft` is a pure
 * layer (no Node APIs, no timers, no clock, no Math.random).
 */

/** A member identity. Strings so the cluster can use whatever names its members already have. */
export type NodeId = string;

export interface Config {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/** One single-server membership change (Raft thesis §4.1). */
export type ConfChangeKind = 'addVoter' | 'addLearner' | 'remove' | 'promote';
export interface ConfChange {
  readonly kind: ConfChangeKind;
  readonly id: NodeId;
}

/**
 * A log entry. `normal` entries carry the application's opaque bytes (`data` absent for the empty
 * entry a leader appends at the start of its term). `conf` entries carry the change and the full
 * configuration that results from it, so a node rebuilds its configuration from the last conf
 * entry alone (no replay of deltas, and truncating a log restores the previous one for free).
 * The very first entry of a bootstrapped group is a `conf` entry without `change`.
 * Entries are immutable once created: logs of different nodes may share the same objects.
 */
export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly type: 'normal' | 'conf';
  readonly data?: Uint8Array;
  readonly change?: ConfChange;
  readonly config?: Config;
}

export interface Snapshot {
  readonly index: number;
  readonly term: number;
  /** the configuration in force at `index` */
  readonly config: Config;
  readonly data: Uint8Array;
}

/** What must be on stable storage before any message that depends on it is sent. */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId | undefined;
  readonly commit: number;
}

interface Base {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}
/** A pre-vote asks "would you vote for me at `term`?" without anyone changing term (thesis §9.6). */
export interface PreVoteMsg extends Base { readonly type: 'preVote'; readonly lastIndex: number; readonly lastTerm: number }
/** `term` is the pre-vote's term when granted, the voter's own term when rejected. */
export interface PreVoteRespMsg extends Base { readonly type: 'preVoteResp'; readonly reject: boolean }
/** `transfer`: sent on a leader's request (TimeoutNow), so voters skip leader stickiness. */
export interface VoteMsg extends Base { readonly type: 'vote'; readonly lastIndex: number; readonly lastTerm: number; readonly transfer: boolean }
/**
 * `quiet`: when granted, how many of the voter's ticks had passed since it last heard from a
 * leader (any term; 0 when rejected). The winner learns from the smallest how long before its
 * election every earlier leader had surely lost its majority's contact (`RaftNode.electionQuiet`).
 */
export interface VoteRespMsg extends Base { readonly type: 'voteResp'; readonly reject: boolean; readonly quiet: number }
/**
 * `ctx` is the leader's tick counter when it sent the message; the follower echoes it, so the
 * leader knows the follower acknowledged it at or after that tick (quorumContactTick, leases).
 */
export interface AppendMsg extends Base {
  readonly type: 'append';
  readonly prevIndex: number;
  readonly prevTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
  readonly ctx: number;
}
/**
 * Success: `index` is the highest index known to match the leader's log.
 * Rejection: `index` is the rejected prevIndex; (`hintIndex`, `hintTerm`) is the follower's
 * largest index at or below it whose term is at most the leader's prevTerm, so the leader can
 * skip a whole conflicting term per round trip instead of one entry.
 */
export interface AppendRespMsg extends Base {
  readonly type: 'appendResp';
  readonly index: number;
  readonly reject: boolean;
  readonly hintIndex: number;
  readonly hintTerm: number;
  readonly ctx: number;
}
/** Carries no entries; `commit` is at most what the follower is known to have (its match). */
/**
 * `read` is the leader's ReadIndex round counter when it sent the heartbeat (0 before any read);
 * the follower echoes it, and a read is served once a majority echoed a round sent after it
 * arrived (thesis §6.4).
 */
export interface HeartbeatMsg extends Base { readonly type: 'heartbeat'; readonly commit: number; readonly ctx: number; readonly read: number }
export interface HeartbeatRespMsg extends Base { readonly type: 'heartbeatResp'; readonly ctx: number; readonly read: number }
export interface SnapshotMsg extends Base { readonly type: 'snapshot'; readonly snapshot: Snapshot; readonly ctx: number }
/** The leader asks a caught-up voter to campaign now (leadership transfer). */
export interface TimeoutNowMsg extends Base { readonly type: 'timeoutNow' }
/** A follower forwards a read request (ReadIndex) to its leader; `rid` is the application's id for it. */
export interface ReadIndexMsg extends Base { readonly type: 'readIndex'; readonly rid: string }
/** The leader's answer to a forwarded read: serve it once the follower applied `index`. */
export interface ReadIndexRespMsg extends Base { readonly type: 'readIndexResp'; readonly rid: string; readonly index: number }

export type RaftMessage =
  | PreVoteMsg | PreVoteRespMsg | VoteMsg | VoteRespMsg | AppendMsg | AppendRespMsg
  | HeartbeatMsg | HeartbeatRespMsg | SnapshotMsg | TimeoutNowMsg | ReadIndexMsg | ReadIndexRespMsg;
export type MessageType = RaftMessage['type'];

// ---------------------------------------------------------------------------------------------
// Errors. src/raft may import nothing from the rest of src/, so these classes carry the same
// Symbol.for brand that src/errors.ts reads: `err instanceof GridError` (and
// `instanceof InvalidArgumentError` for bad arguments) holds without an import. The lead can
// register them in the error registry when wiring the core in.

const BRAND = Symbol.for('shardgrid.GridError.codes');

export class RaftError extends Error {
  readonly code: string;
  readonly data: Record<string, unknown> | undefined;
  constructor(code: string, parents: readonly string[], message: string, data?: Record<string, unknown>) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.data = data;
    Object.defineProperty(this, BRAND, { value: [code, ...parents, 'GRID_ERR'], enumerable: false });
  }
}
/** propose / proposeConfChange / transferLeadership on a node that is not the leader. */
export class RaftNotLeaderError extends RaftError {
  constructor(leader: NodeId | undefined) {
    super('GRID_ERR_RAFT_NOT_LEADER', ['GRID_ERR_RAFT'], `not the leader${leader === undefined ? '' : ` (leader: ${leader})`}`, leader === undefined ? undefined : { leader });
  }
}
/** The leader is handing over leadership and accepts no proposals until that ends. */
export class RaftTransferInProgressError extends RaftError {
  constructor(to: NodeId) { super('GRID_ERR_RAFT_TRANSFER', ['GRID_ERR_RAFT'], `leadership transfer to ${to} in progress`, { to }); }
}
/** A membership change is refused while another is uncommitted (or the leader's term has not committed yet). */
export class RaftConfChangePendingError extends RaftError {
  constructor(message: string) { super('GRID_ERR_RAFT_CONF_PENDING', ['GRID_ERR_RAFT'], message); }
}
/** Too many reads wait for their leadership check at once (LIMITS.maxPendingReads). */
export class RaftReadBusyError extends RaftError {
  constructor() { super('GRID_ERR_RAFT_BUSY', ['GRID_ERR_RAFT'], `more than ${LIMITS.maxPendingReads} reads are waiting for a leadership check`); }
}
/** Bad argument or option; shares InvalidArgumentError's code so `instanceof InvalidArgumentError` holds. */
export class RaftInvalidArgumentError extends RaftError {
  constructor(message: string) { super('GRID_ERR_INVALID_ARGUMENT', [], message); }
}

// ---------------------------------------------------------------------------------------------
// validateMessage

/** Bounds applied to decoded messages. */
export const LIMITS = Object.freeze({
  /** ids are short names; a longer string is junk */
  maxIdLength: 128,
  /** entries per append; the leader never sends more (see RaftNode's maxEntriesPerAppend) */
  maxEntries: 1024,
  /** members named in one config */
  maxConfigSize: 256,
  /** bytes of one entry payload */
  maxEntryBytes: 16 * 1024 * 1024,
  /** bytes of one snapshot */
  maxSnapshotBytes: 1024 * 1024 * 1024,
  /** reads (ReadIndex) a leader keeps waiting for their heartbeat round; more are refused or dropped */
  maxPendingReads: 65536,
});

const ID_RE = /^[A-Za-z0-9._:@-]+$/;
const KINDS: ReadonlySet<string> = new Set(['addVoter', 'addLearner', 'remove', 'promote']);
const FIELDS: Readonly<Record<MessageType, readonly string[]>> = {
  preVote: ['lastIndex', 'lastTerm'],
  preVoteResp: ['reject'],
  vote: ['lastIndex', 'lastTerm', 'transfer'],
  voteResp: ['reject', 'quiet'],
  append: ['prevIndex', 'prevTerm', 'entries', 'commit', 'ctx'],
  appendResp: ['index', 'reject', 'hintIndex', 'hintTerm', 'ctx'],
  heartbeat: ['commit', 'ctx', 'read'],
  heartbeatResp: ['ctx', 'read'],
  snapshot: ['snapshot', 'ctx'],
  timeoutNow: [],
  readIndex: ['rid'],
  readIndexResp: ['rid', 'index'],
};

function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}
/** Own keys exactly `allowed` (optional ones may be missing); rejects `__proto__`, extra keys and accessors. */
function hasOnlyKeys(x: Record<string, unknown>, required: readonly string[], optional: readonly string[] = []): boolean {
  const keys = Object.getOwnPropertyNames(x);
  if (keys.length < required.length || keys.length > required.length + optional.length) return false;
  if (Object.getOwnPropertySymbols(x).length !== 0) return false;
  let seen = 0;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    if (required.includes(k)) seen++;
    else if (!optional.includes(k)) return false;
    // data properties only: a getter could answer differently each time the core reads it
    const d = Object.getOwnPropertyDescriptor(x, k) as PropertyDescriptor;
    if (d.get !== undefined || d.set !== undefined) return false;
  }
  return seen === required.length;
}
const isIndex = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
const isId = (x: unknown): x is string => typeof x === 'string' && x.length > 0 && x.length <= LIMITS.maxIdLength && ID_RE.test(x);

function isIdList(x: unknown): x is NodeId[] {
  if (!Array.isArray(x) || x.length > LIMITS.maxConfigSize) return false;
  const seen = new Set<string>();
  for (let i = 0; i < x.length; i++) {
    if (!(i in x) || !isId(x[i]) || seen.has(x[i])) return false;
    seen.add(x[i]);
  }
  return true;
}
export function isConfig(x: unknown): x is Config {
  if (!isPlainObject(x) || !hasOnlyKeys(x, ['voters', 'learners'])) return false;
  if (!isIdList(x.voters) || !isIdList(x.learners)) return false;
  const v = x.voters as string[];
  return !(x.learners as string[]).some((l) => v.includes(l));
}
function isBytes(x: unknown, max: number): x is Uint8Array {
  return x instanceof Uint8Array && x.byteLength <= max;
}
function isEntry(x: unknown): x is Entry {
  if (!isPlainObject(x)) return false;
  if (!isIndex(x.index) || x.index === 0 || !isIndex(x.term)) return false;
  if (x.type === 'normal') {
    if (!hasOnlyKeys(x, ['index', 'term', 'type'], ['data'])) return false;
    return x.data === undefined || isBytes(x.data, LIMITS.maxEntryBytes);
  }
  if (x.type === 'conf') {
    if (!hasOnlyKeys(x, ['index', 'term', 'type', 'config'], ['change'])) return false;
    if (!isConfig(x.config)) return false;
    if (x.change === undefined) return true;
    const c = x.change;
    return isPlainObject(c) && hasOnlyKeys(c, ['kind', 'id']) && typeof c.kind === 'string' && KINDS.has(c.kind) && isId(c.id);
  }
  return false;
}
function isSnapshot(x: unknown): x is Snapshot {
  return isPlainObject(x) && hasOnlyKeys(x, ['index', 'term', 'config', 'data']) && isIndex(x.index) && isIndex(x.term) &&
    isConfig(x.config) && isBytes(x.data, LIMITS.maxSnapshotBytes);
}

/**
 * Returns `x` typed as a RaftMessage when it has exactly the shape of one (own data properties
 * only, plain objects, safe non-negative integers, bounded ids, arrays and byte lengths, entries
 * with consecutive indexes), and `undefined` otherwise. `RaftNode.step` never throws on a message
 * that passed this check. It does not check membership: the node ignores non-members itself.
 */
export function validateMessage(x: unknown): RaftMessage | undefined {
  if (!isPlainObject(x) || typeof x.type !== 'string' || !Object.prototype.hasOwnProperty.call(FIELDS, x.type)) return undefined;
  const type = x.type as MessageType;
  if (!hasOnlyKeys(x, ['type', 'from', 'to', 'term', ...FIELDS[type]])) return undefined;
  if (!isId(x.from) || !isId(x.to) || x.from === x.to || !isIndex(x.term)) return undefined;
  switch (type) {
    case 'preVote':
    case 'vote':
      if (!isIndex(x.lastIndex) || !isIndex(x.lastTerm)) return undefined;
      if (type === 'vote' && typeof x.transfer !== 'boolean') return undefined;
      break;
    case 'preVoteResp':
      if (typeof x.reject !== 'boolean') return undefined;
      break;
    case 'voteResp':
      if (typeof x.reject !== 'boolean' || !isIndex(x.quiet)) return undefined;
      break;
    case 'append': {
      if (!isIndex(x.prevIndex) || !isIndex(x.prevTerm) || !isIndex(x.commit) || !isIndex(x.ctx)) return undefined;
      const es = x.entries;
      if (!Array.isArray(es) || es.length > LIMITS.maxEntries) return undefined;
      let prevTerm = x.prevTerm as number;
      for (let i = 0; i < es.length; i++) {
        const e = es[i];
        if (!isEntry(e) || e.index !== (x.prevIndex as number) + 1 + i || e.term < prevTerm || e.term > (x.term as number)) return undefined;
        prevTerm = e.term;
      }
      break;
    }
    case 'appendResp':
      if (!isIndex(x.index) || typeof x.reject !== 'boolean' || !isIndex(x.hintIndex) || !isIndex(x.hintTerm) || !isIndex(x.ctx)) return undefined;
      break;
    case 'heartbeat':
      if (!isIndex(x.commit) || !isIndex(x.ctx) || !isIndex(x.read)) return undefined;
      break;
    case 'heartbeatResp':
      if (!isIndex(x.ctx) || !isIndex(x.read)) return undefined;
      break;
    case 'readIndex':
      if (!isId(x.rid)) return undefined;
      break;
    case 'readIndexResp':
      if (!isId(x.rid) || !isIndex(x.index)) return undefined;
      break;
    case 'snapshot':
      if (!isSnapshot(x.snapshot) || !isIndex(x.ctx) || (x.snapshot as Snapshot).term > (x.term as number)) return undefined;
      break;
    case 'timeoutNow':
      break;
  }
  return x as unknown as RaftMessage;
}
