/**
 * The CP state machine of a clustered grid: sessions, fenced locks, semaphores, atomicLong and
 * atomicRef, applied from the metadata Raft log (native-notes.md, "CP subsystem on Raft").
 *
 * Like MetaState it is a pure function of the committed commands and their log indexes: no
 * clock, no randomness. Time enters only through commands the leader proposes by its own clock
 * (`expire` a session that missed its TTL, `leaseEnd` a lock hold whose lease passed), so every
 * member computes the same holders, tokens and values.
 *
 * Commands (here objects `{ c: 'cp', o: op, ... }`; on the wire and in log entries the array
 * `[CP_OPS index of o, ...the fields in the order below]`, validated by `parseCpCommand` before
 * apply; s = session id, q = the session's sequence number of the command, a = the session's
 * lowest unanswered sequence number, n = primitive name):
 *
 * ```
 * open     { k, h, t }            open a session: client key k (a retried open with the same k
 *                                 gets the same session), host member h, TTL t ms; id = its stamp
 * expire   { s }                  leader: session s missed its TTL (its locks, permits and waits end)
 * close    { s, q, a }            the client ends session s
 * lock     { s, q, a, n, l, w }   acquire lock n, lease l ms (0: none), w: wait in the FIFO queue
 * unlock   { s, q, a, n }
 * cancel   { s, q, a, n, t }      stop waiting for the lock/acquire of sequence t (or make sure it never applies)
 * leaseEnd { n, t }               leader: the hold with token t of lock n passed its lease
 * acq      { s, q, a, n, k, p, w } semaphore n (p permits when created, -1: must exist): k permits
 * rel      { s, q, a, n, k, p }
 * lset     { s, q, a, n, v }      atomicLong: set / add (d; returns the new value) / compare-and-set
 * ladd     { s, q, a, n, d }
 * lcas     { s, q, a, n, e, v }
 * rset     { s, q, a, n, v }      atomicRef: v = msgpack bytes or null (unset); returns the new version
 * rcas     { s, q, a, n, e, v }   by value (encoded bytes equal)
 * rcasv    { s, q, a, n, e, v }   by version
 * ```
 *
 * Batches: the leader packs the CP commands it proposes within one task into one entry,
 * `{ c: 'cpb', b: [command, ...] }` (at most CP_LIMITS.maxBatch commands and maxBatchBytes
 * encoded bytes; `parseCpBatch`), applied in order; command i of the entry is at *position* i. A
 * lone command is a batch of one (position 0).
 *
 * Exactly once: every session command carries (s, q). The result of each is remembered per
 * session (at most CP_LIMITS.maxResults, and only while the client may still retry it: the client
 * sends `a`, below which it has every answer), so a retry — after a leader change, a lost reply, a
 * timeout — gets the first result and never applies twice. A sequence number below what the
 * session still remembers is refused (GRID_ERR_CP_SESSION: its outcome is unknown), never applied.
 *
 * Tokens: a lock's fencing token is the *stamp* of the command that granted the hold (the
 * `lock` itself, or the `unlock`/`expire`/`leaseEnd`/`close` that handed it to the next waiter):
 * `stamp = index * TOKEN_SLOTS + position`. One command grants at most one hold per name, and
 * stamps strictly increase along the log (index first, then position in the entry; positions are
 * below TOKEN_SLOTS), so tokens strictly increase per name, on every member, across leader changes
 * and snapshots — also when one batch acquires, releases and hands on the same lock. A session's id
 * is the stamp of its `open` (two opens in one batch get two ids).
 */

/**
 * Positions per log index in a stamp (`index * TOKEN_SLOTS + position`). Stamps stay safe integers
 * up to index 2^53 / 1024 ≈ 8.8e12: 28 years of 10,000 entries a second (the log lives as long as
 * its members: nothing is persisted).
 */
export const TOKEN_SLOTS = 1024;

/** The stamp of the command at `position` of the entry at `index`: tokens and session ids. */
export const stampOf = (index: number, position: number): number => index * TOKEN_SLOTS + position;

/** Bounds on what the log may hold: every byte of a command came from the wire. */
export const CP_LIMITS = Object.freeze({
  /** open sessions at once */
  maxSessions: 4096,
  /** names (all kinds) */
  maxPrimitives: 4096,
  /** waiters queued on one lock or semaphore */
  maxWaiters: 1024,
  /** remembered results per session */
  maxResults: 1024,
  /** UTF-8 bytes of a name */
  maxNameBytes: 256,
  /** encoded bytes of an atomicRef value */
  maxValueBytes: 64 * 1024,
  /** a session TTL, ms */
  minTtlMs: 100,
  maxTtlMs: 24 * 3600_000,
  /** a lock lease, ms */
  maxLeaseMs: 365 * 24 * 3600_000,
  /** characters of a session key or member id */
  maxKeyChars: 128,
  /** commands in one batch entry (below TOKEN_SLOTS: a position must fit in a stamp) */
  maxBatch: 256,
  /** encoded bytes of one batch entry (a single command always fits: a name and two refs are < 132 KiB) */
  maxBatchBytes: 1024 * 1024,
});

export type CpKind = 'lock' | 'sem' | 'long' | 'ref';

/** A command's result: a value, "queued" (a waiter), or an error code and message. */
export type CpResult = ['v', number | boolean] | ['q'] | ['e', CpErrorCode, string];
export type CpErrorCode =
  | 'GRID_ERR_CP_SESSION' | 'GRID_ERR_CP_KIND' | 'GRID_ERR_CP_CAPACITY' | 'GRID_ERR_LOCK_NOT_HELD' | 'GRID_ERR_PERMITS_NOT_HELD'
  | 'GRID_ERR_INVALID_ARGUMENT' | 'GRID_ERR_CP_RANGE';

interface Base { c: 'cp'; s: number; q: number; a: number }
export type CpCommand =
  | { c: 'cp'; o: 'open'; k: string; h: string; t: number }
  | { c: 'cp'; o: 'expire'; s: number }
  | { c: 'cp'; o: 'leaseEnd'; n: string; t: number }
  | (Base & { o: 'close' })
  | (Base & { o: 'lock'; n: string; l: number; w: boolean })
  | (Base & { o: 'unlock'; n: string })
  | (Base & { o: 'cancel'; n: string; t: number })
  | (Base & { o: 'acq'; n: string; k: number; p: number; w: boolean })
  | (Base & { o: 'rel'; n: string; k: number; p: number })
  | (Base & { o: 'lset'; n: string; v: number })
  | (Base & { o: 'ladd'; n: string; d: number })
  | (Base & { o: 'lcas'; n: string; e: number; v: number })
  | (Base & { o: 'rset'; n: string; v: Uint8Array | null })
  | (Base & { o: 'rcas'; n: string; e: Uint8Array | null; v: Uint8Array | null })
  | (Base & { o: 'rcasv'; n: string; e: number; v: Uint8Array | null });

/** Several CP commands in one log entry, applied in order (positions 0, 1, ...). */
export interface CpBatch { c: 'cpb'; b: CpCommand[] }

/** A waiter of session s (its command q) granted by this entry: the member hosting s resolves it. */
export interface CpGrant { s: number; q: number; result: CpResult }

/** What applying one CP command changed, for the driver. */
export interface CpApplied {
  /** the result of a session command (s, q) */
  result?: { s: number; q: number; r: CpResult };
  /** a session opened (or found again by its key) */
  opened?: { key: string; id: number };
  /** sessions that ended in this entry */
  ended?: number[];
  grants?: CpGrant[];
  /** holds granted in this entry with a lease: the leader times them (name, token, lease ms) */
  leased?: Array<{ n: string; t: number; l: number }>;
}

interface Session {
  id: number;
  key: string;
  host: string;
  ttl: number;
  /** sequence numbers below this are answered and forgotten (a retry of one is refused) */
  floor: number;
  results: Map<number, CpResult>;
}

interface LockWaiter { s: number; q: number; l: number }
interface SemWaiter { s: number; q: number; k: number }

type Prim =
  | { kind: 'lock'; holder: number; token: number; lease: number; waiters: LockWaiter[] }
  | { kind: 'sem'; total: number; avail: number; holds: Map<number, number>; waiters: SemWaiter[] }
  | { kind: 'long'; v: number }
  | { kind: 'ref'; b: Uint8Array | null; ver: number };

const KEY_RE = /^[A-Za-z0-9._:@-]+$/;
const utf8 = new TextEncoder();

export function isCpName(x: unknown): x is string {
  // not well-formed UTF-16 (a lone surrogate): UTF-8 makes it U+FFFD, the name of another primitive
  if (typeof x !== 'string' || x.length === 0 || x.length > CP_LIMITS.maxNameBytes || !x.isWellFormed()) return false;
  // a UTF-16 code unit encodes to at most 3 UTF-8 bytes: short names need no encoding
  return x.length * 3 <= CP_LIMITS.maxNameBytes || utf8.encode(x).length <= CP_LIMITS.maxNameBytes;
}
const isKey = (x: unknown): x is string => typeof x === 'string' && x.length > 0 && x.length <= CP_LIMITS.maxKeyChars && KEY_RE.test(x);
const isNat = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
const isSafe = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x);
const isBytesOrNull = (x: unknown): x is Uint8Array | null => x === null || (x instanceof Uint8Array && x.length <= CP_LIMITS.maxValueBytes);

function plain(x: unknown): x is Record<string, unknown> {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return false;
  const p = Object.getPrototypeOf(x);
  return p === Object.prototype || p === null;
}
/** Exactly these own keys, data properties only. */
function exactKeys(o: Record<string, unknown>, keys: readonly string[]): boolean {
  const own = Object.getOwnPropertyNames(o);
  if (own.length !== keys.length || Object.getOwnPropertySymbols(o).length !== 0) return false;
  for (const k of own) {
    if (!keys.includes(k)) return false;
    const d = Object.getOwnPropertyDescriptor(o, k) as PropertyDescriptor;
    if (d.get !== undefined || d.set !== undefined) return false;
  }
  return true;
}

/**
 * The CP ops in wire order: a command travels (cp.req, cp.propose) and sits in the log as a
 * msgpack array `[op, ...fields]`, op its index here and the fields in CP_FIELDS order (protocol
 * 5). Positional: no key strings to write, read and check. 64 `ladd` commands: decode and check
 * ~6 µs against ~47 µs as maps, pack ~7 µs against ~17 µs, 2.0 KB against 3.5 KB (native-notes.md,
 * "Positional commands").
 */
export const CP_OPS = ['open', 'expire', 'leaseEnd', 'close', 'lock', 'unlock', 'cancel', 'acq', 'rel', 'lset', 'ladd', 'lcas', 'rset', 'rcas', 'rcasv'] as const;
const S = ['s', 'q', 'a'];
export const CP_FIELDS: ReadonlyArray<readonly string[]> = [
  ['k', 'h', 't'], // open
  ['s'], // expire
  ['n', 't'], // leaseEnd
  S, // close
  [...S, 'n', 'l', 'w'], // lock
  [...S, 'n'], // unlock
  [...S, 'n', 't'], // cancel
  [...S, 'n', 'k', 'p', 'w'], // acq
  [...S, 'n', 'k', 'p'], // rel
  [...S, 'n', 'v'], // lset
  [...S, 'n', 'd'], // ladd
  [...S, 'n', 'e', 'v'], // lcas
  [...S, 'n', 'v'], // rset
  [...S, 'n', 'e', 'v'], // rcas
  [...S, 'n', 'e', 'v'], // rcasv
];
const OP_CODE: ReadonlyMap<string, number> = new Map(CP_OPS.map((o, i) => [o, i]));

/**
 * A command's wire form, `[op, ...fields]` (see CP_OPS; the fields in CP_FIELDS order). Written
 * out per op, as is `fromWire`, instead of a loop over CP_FIELDS: a loop reads and writes through
 * computed keys (keyed accesses that see every op's shape), and this runs for every command on
 * the lite member, and fromWire for every command on every member. `cp-state.test.ts` holds both
 * to CP_FIELDS for every op.
 */
export function cpToWire(cmd: CpCommand): unknown[] {
  const x = cmd as unknown as Record<string, unknown> & { s: number; q: number; a: number; n: string };
  switch (cmd.o) {
    case 'open': return [0, cmd.k, cmd.h, cmd.t];
    case 'expire': return [1, cmd.s];
    case 'leaseEnd': return [2, cmd.n, cmd.t];
    case 'close': return [3, x.s, x.q, x.a];
    case 'lock': return [4, x.s, x.q, x.a, x.n, cmd.l, cmd.w];
    case 'unlock': return [5, x.s, x.q, x.a, x.n];
    case 'cancel': return [6, x.s, x.q, x.a, x.n, cmd.t];
    case 'acq': return [7, x.s, x.q, x.a, x.n, cmd.k, cmd.p, cmd.w];
    case 'rel': return [8, x.s, x.q, x.a, x.n, cmd.k, cmd.p];
    case 'lset': return [9, x.s, x.q, x.a, x.n, cmd.v];
    case 'ladd': return [10, x.s, x.q, x.a, x.n, cmd.d];
    case 'lcas': return [11, x.s, x.q, x.a, x.n, cmd.e, cmd.v];
    case 'rset': return [12, x.s, x.q, x.a, x.n, cmd.v];
    case 'rcas': return [13, x.s, x.q, x.a, x.n, cmd.e, cmd.v];
    case 'rcasv': return [14, x.s, x.q, x.a, x.n, cmd.e, cmd.v];
  }
  throw new TypeError(`not a CP command: ${String((cmd as { o?: unknown }).o).slice(0, 20)}`);
}

/** The object of a wire command whose length fits its op (checked by the caller): fields as they are. */
function fromWire(op: number, x: readonly unknown[]): Record<string, unknown> {
  switch (op) {
    case 0: return { c: 'cp', o: 'open', k: x[1], h: x[2], t: x[3] };
    case 1: return { c: 'cp', o: 'expire', s: x[1] };
    case 2: return { c: 'cp', o: 'leaseEnd', n: x[1], t: x[2] };
    case 3: return { c: 'cp', o: 'close', s: x[1], q: x[2], a: x[3] };
    case 4: return { c: 'cp', o: 'lock', s: x[1], q: x[2], a: x[3], n: x[4], l: x[5], w: x[6] };
    case 5: return { c: 'cp', o: 'unlock', s: x[1], q: x[2], a: x[3], n: x[4] };
    case 6: return { c: 'cp', o: 'cancel', s: x[1], q: x[2], a: x[3], n: x[4], t: x[5] };
    case 7: return { c: 'cp', o: 'acq', s: x[1], q: x[2], a: x[3], n: x[4], k: x[5], p: x[6], w: x[7] };
    case 8: return { c: 'cp', o: 'rel', s: x[1], q: x[2], a: x[3], n: x[4], k: x[5], p: x[6] };
    case 9: return { c: 'cp', o: 'lset', s: x[1], q: x[2], a: x[3], n: x[4], v: x[5] };
    case 10: return { c: 'cp', o: 'ladd', s: x[1], q: x[2], a: x[3], n: x[4], d: x[5] };
    case 11: return { c: 'cp', o: 'lcas', s: x[1], q: x[2], a: x[3], n: x[4], e: x[5], v: x[6] };
    case 12: return { c: 'cp', o: 'rset', s: x[1], q: x[2], a: x[3], n: x[4], v: x[5] };
    case 13: return { c: 'cp', o: 'rcas', s: x[1], q: x[2], a: x[3], n: x[4], e: x[5], v: x[6] };
    default: return { c: 'cp', o: 'rcasv', s: x[1], q: x[2], a: x[3], n: x[4], e: x[5], v: x[6] };
  }
}

/**
 * Validates a decoded command in its wire form (an array: the op, then exactly its fields, each of
 * its type and within its bounds) and returns it as an object; undefined when it is not one.
 */
export function parseCpCommand(x: unknown): CpCommand | undefined {
  if (!Array.isArray(x) || x.length < 2) return undefined;
  const op = x[0];
  if (typeof op !== 'number' || !Number.isInteger(op) || op < 0 || op >= CP_OPS.length) return undefined;
  if (x.length !== CP_FIELDS[op].length + 1) return undefined;
  const cmd = fromWire(op, x);
  return validCommand(cmd, CP_OPS[op]) ? (cmd as unknown as CpCommand) : undefined;
}

/** The types and bounds of op `o`'s fields (present, by construction in parseCpCommand). */
function validCommand(x: Record<string, unknown>, o: (typeof CP_OPS)[number]): boolean {
  switch (o) {
    case 'open':
      return isKey(x.k) && isKey(x.h) && isNat(x.t) && x.t >= CP_LIMITS.minTtlMs && x.t <= CP_LIMITS.maxTtlMs;
    case 'expire':
      return isNat(x.s) && x.s > 0;
    case 'leaseEnd':
      return isCpName(x.n) && isNat(x.t) && x.t > 0;
  }
  if (!isNat(x.s) || x.s === 0 || !isNat(x.q) || !isNat(x.a)) return false;
  if (o !== 'close' && !isCpName(x.n)) return false;
  switch (o) {
    case 'close':
    case 'unlock':
      return true;
    case 'lock':
      return isNat(x.l) && x.l <= CP_LIMITS.maxLeaseMs && typeof x.w === 'boolean';
    case 'cancel':
      return isNat(x.t);
    case 'acq':
      return isNat(x.k) && x.k >= 1 && x.k <= 0x7fffffff && isSafe(x.p) && x.p >= -1 && x.p <= 0x7fffffff && typeof x.w === 'boolean';
    case 'rel':
      return isNat(x.k) && x.k >= 1 && x.k <= 0x7fffffff && isSafe(x.p) && x.p >= -1 && x.p <= 0x7fffffff;
    case 'lset':
      return isSafe(x.v);
    case 'ladd':
      return isSafe(x.d);
    case 'lcas':
      return isSafe(x.e) && isSafe(x.v);
    case 'rset':
      return isBytesOrNull(x.v);
    case 'rcas':
      return isBytesOrNull(x.e) && isBytesOrNull(x.v);
    case 'rcasv':
      return isNat(x.e) && isBytesOrNull(x.v);
  }
}

/**
 * Commands parsed strictly from a received message (parseCpCommand on msgpackr's decoding): their
 * strings are well-formed (a string built in this process may hold a lone surrogate, which UTF-8
 * encoding replaces, so the log's bytes would name something else) and they are shared with no
 * caller. The leader may apply these as they are instead of decoding its own entry (OwnCpEntries).
 */
const FROM_WIRE = Symbol('shardgrid.cp.fromWire');
/**
 * A symbol-keyed flag on the command itself (a WeakSet's add showed as ~3 % of the CP leader's
 * main thread: ephemeron write barriers; ~0.5 µs a mark against a few ns for this store). Neither
 * msgpackr's pack (own string keys only) nor parseCpCommand (run before the flag is set; it
 * refuses symbol keys) sees it.
 */
export function markFromWire(cmd: CpCommand): void {
  // a plain store (Object.defineProperty, to make it non-enumerable, cost as much as the WeakSet)
  (cmd as unknown as Record<symbol, boolean>)[FROM_WIRE] = true;
}

/**
 * Whether applying `cmd` itself is the same as applying what the log's bytes of it decode to:
 * parsed from the wire, no byte values (a decoded Uint8Array may be a view of a buffer its
 * receiver reuses), no -0 (msgpack writes it as the integer 0).
 */
export function reusableCpCommand(cmd: CpCommand): boolean {
  if ((cmd as unknown as Record<symbol, unknown>)[FROM_WIRE] !== true) return false;
  const x = cmd as unknown as Record<string, unknown>;
  const op = OP_CODE.get(cmd.o);
  if (op === undefined) return false;
  // its fields: a parsed command has these and `c`, `o` (strings), nothing else
  for (const k of CP_FIELDS[op]) {
    const v = x[k];
    if (typeof v === 'object' && v !== null) return false;
    if (v === 0 && 1 / v < 0) return false;
  }
  return true;
}

/**
 * The leader's memory of which followers must hear at once that its CP entries committed
 * (RaftNodeOptions.commitNotice). Every member applies every entry, but a command's result is
 * delivered only by the member that submitted it (for itself or a lite member), so an entry whose
 * commands only answered their submitters needs a prompt commit notice only at those submitters;
 * the other followers learn of it from the next append or heartbeat tick (100 ms at most). An
 * entry that did more (granted a waiting session, opened or ended one: their hosts wait for that)
 * is announced to every follower. Which it was is known once the leader applied the entry, so the
 * Raft core is told "not yet" for these entries (`notify`), and the leader sends the notices itself
 * after applying (`applied`, then RaftNode.sendCommitTo). Entries not recorded here (tables,
 * membership, entries of an earlier leadership) are announced at once, as before. At c=64 through
 * a lite member attached to the leader this saves a heartbeat and its reply per follower per round.
 */
export class LazyCommits {
  /** index → the followers that submitted its commands, and (once the leader applied it) whom to tell */
  private readonly need = new Map<number, { via: ReadonlySet<string>; tell?: ReadonlySet<string> | 'all' }>();
  /** follower → entries (from, to] found applied and needing no notice to it (notify) */
  private readonly clean = new Map<string, { from: number; to: number }>();
  static readonly MAX = 4096;

  /** After proposing `cmds` at `index`; `via[at + i]` is the member that submitted cmds[i] (undefined: this leader). */
  add(index: number, cmds: readonly CpCommand[], via: readonly (string | undefined)[], at: number): void {
    let members: Set<string> | undefined;
    for (let i = 0; i < cmds.length; i++) {
      const m = via[at + i];
      if (m !== undefined) (members ??= new Set()).add(m);
    }
    if (this.need.size >= LazyCommits.MAX) this.need.delete(this.need.keys().next().value as number);
    this.need.set(index, { via: members ?? NO_MEMBERS });
  }

  /**
   * The leader applied the entry at `index` with these outcomes: the followers to tell now
   * ('all', a set, or undefined when the entry is not one of this leadership's CP entries).
   */
  applied(index: number, outcomes: readonly CpApplied[]): ReadonlySet<string> | 'all' | undefined {
    const rec = this.need.get(index);
    if (rec === undefined) return undefined;
    const all = outcomes.some((a) => a.opened !== undefined || (a.ended?.length ?? 0) > 0 || (a.grants?.length ?? 0) > 0);
    rec.tell = all ? 'all' : rec.via;
    return rec.tell;
  }

  /**
   * Whether follower `to` must be told now that entries (from, upTo] committed (the core's question).
   * The core asks after every acknowledgement, and `from` (what the follower was last told by a
   * heartbeat) only moves on a heartbeat, so the range grows by a round each time: the entries
   * found needing nothing are remembered per follower (`clean`) and not looked at again. (Looking
   * at all of them each time was ~30 µs per round at c=64, 3 % of the leader's CPU.)
   */
  notify(to: string, from: number, upTo: number): boolean {
    if (upTo - from > LazyCommits.MAX) return true;
    let i = from + 1;
    let clean = from; // (from, clean] applied, and none needs to tell `to`
    const c = this.clean.get(to);
    // the remembered range still holds if it covers from + 1 and that entry was not evicted since
    // (eviction takes the oldest index first, so the rest of the range is there too)
    if (c !== undefined && c.from <= from && from < c.to && this.need.has(from + 1)) {
      i = c.to + 1;
      clean = c.to;
    }
    for (; i <= upTo; i++) {
      const rec = this.need.get(i);
      if (rec === undefined) return true;
      // not applied yet (tell undefined): decided, and sent, when the leader applies it
      if (rec.tell === 'all' || rec.tell?.has(to) === true) return true;
      if (rec.tell !== undefined && clean === i - 1) clean = i;
    }
    if (clean > from) this.clean.set(to, { from, to: clean });
    return false;
  }

  clear(): void {
    this.need.clear();
    this.clean.clear();
  }
}
const NO_MEMBERS: ReadonlySet<string> = new Set();

/**
 * The leader's CP entries proposed by this process, kept until applied: the leader applies the
 * commands it packed (each checked by `reusableCpCommand`; an entry with one other command is not
 * kept) instead of decoding and parsing its own bytes again. Found only by index *and* the very
 * Uint8Array proposed: an entry another leader put at that index, or bytes that came back from
 * storage or a snapshot, are decoded and parsed as on every follower.
 */
export class OwnCpEntries {
  private readonly byIndex = new Map<number, { data: Uint8Array; cmd: CpBatch }>();
  /** At most this many entries kept (a leader that proposes without applying for long: the oldest go). */
  static readonly MAX = 4096;

  /** After proposing `data` (packed from `cmds` by packCpEntries) at `index`. */
  remember(index: number, data: Uint8Array, cmds: readonly CpCommand[]): void {
    for (const c of cmds) if (!reusableCpCommand(c)) return;
    if (cmds.length === 0 || cmds.length > CP_LIMITS.maxBatch || data.length > CP_LIMITS.maxBatchBytes) return;
    if (this.byIndex.size >= OwnCpEntries.MAX) this.byIndex.delete(this.byIndex.keys().next().value as number);
    this.byIndex.set(index, { data, cmd: { c: 'cpb', b: cmds.slice() } });
  }

  /** The command to apply for the entry at `index` with `data`, if this process proposed exactly it; forgets it either way. */
  take(index: number, data: Uint8Array): CpBatch | undefined {
    const own = this.byIndex.get(index);
    if (own === undefined) return undefined;
    this.byIndex.delete(index);
    return own.data === data ? own.cmd : undefined;
  }

  /** Everything up to `index` is known (a snapshot): nothing kept at or below it can be applied. */
  forgetTo(index: number): void {
    for (const i of this.byIndex.keys()) if (i <= index) this.byIndex.delete(i);
  }

  get size(): number {
    return this.byIndex.size;
  }
}

/**
 * An upper bound of what a (parsed) command's names, keys and values take encoded, for batch
 * bounds: 3 bytes per UTF-16 unit of its strings, the bytes of its refs, 64 for the rest.
 */
export function cpCommandBytes(c: CpCommand): number {
  let b = 64;
  const x = c as { n?: unknown; k?: unknown; h?: unknown; v?: unknown; e?: unknown };
  if (typeof x.n === 'string') b += x.n.length * 3;
  if (typeof x.k === 'string') b += x.k.length * 3;
  if (typeof x.h === 'string') b += x.h.length * 3;
  if (x.v instanceof Uint8Array) b += x.v.length;
  if (x.e instanceof Uint8Array) b += x.e.length;
  return b;
}

/**
 * An encoded batch entry starts with a map header of 2 entries (fixmap 0x82, or map16/map32, which
 * packr writes) and then key 'c' = 'cpb': `isOversizedCpBatch` looks at these bytes before decoding.
 */
const BATCH_TAIL = Uint8Array.of(0xa1, 0x63, 0xa3, 0x63, 0x70, 0x62);

/**
 * Whether `data` is an encoded batch entry larger than CP_LIMITS.maxBatchBytes, known by its first
 * bytes: refused undecoded. (A batch encoded otherwise, keys reordered, is decoded, bounded by the
 * Raft core's entry limit, and refused after: `cpBatchTooBig`.)
 */
export function isOversizedCpBatch(data: Uint8Array): boolean {
  if (data.length <= CP_LIMITS.maxBatchBytes) return false;
  const h = data[0] === 0x82 ? 1 : data[0] === 0xde && data[1] === 0 && data[2] === 2 ? 3 : data[0] === 0xdf && data[1] === 0 && data[2] === 0 && data[3] === 0 && data[4] === 2 ? 5 : 0;
  if (h === 0) return false;
  for (let i = 0; i < BATCH_TAIL.length; i++) if (data[h + i] !== BATCH_TAIL[i]) return false;
  return true;
}

/** Whether a decoded entry is a batch whose encoding (`bytes` long) is over CP_LIMITS.maxBatchBytes. */
export const cpBatchTooBig = (cmd: { c: string } | undefined, bytes: number): boolean => cmd?.c === 'cpb' && bytes > CP_LIMITS.maxBatchBytes;

/**
 * Validates a decoded batch entry: exactly `{ c: 'cpb', b }` with 1 … maxBatch commands in their
 * wire form, each one valid (`parseCpCommand`); returns the batch of parsed commands, or undefined
 * when not (the whole entry is refused). The length is checked before anything is built.
 */
export function parseCpBatch(x: unknown): CpBatch | undefined {
  if (!plain(x) || x.c !== 'cpb' || !exactKeys(x, BATCH_KEYS)) return undefined;
  const b = x.b;
  if (!Array.isArray(b) || b.length === 0 || b.length > CP_LIMITS.maxBatch) return undefined;
  const cmds = new Array<CpCommand>(b.length);
  for (let i = 0; i < b.length; i++) {
    const cmd = parseCpCommand(b[i]);
    if (cmd === undefined) return undefined;
    cmds[i] = cmd;
  }
  return { c: 'cpb', b: cmds };
}
const BATCH_KEYS = ['c', 'b'];

/**
 * The entries that carry `cmds` in order, in as few as the bounds allow: at most maxBatch commands
 * and maxBatchBytes encoded bytes each (a chunk over the bytes is halved; a single command always
 * fits), each `{ c: 'cpb', b: [wire command, ...] }` (one command too). `pack` is the log's encoder.
 */
export function packCpEntries(cmds: readonly CpCommand[], pack: (x: unknown) => Uint8Array, parts?: Array<readonly CpCommand[]>, received?: readonly (unknown[] | undefined)[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  const wire = new Array<unknown[]>(cmds.length);
  for (let i = 0; i < cmds.length; i++) wire[i] = received?.[i] ?? cpToWire(cmds[i]);
  const chunk = (from: number, to: number): void => {
    const data = pack({ c: 'cpb', b: wire.slice(from, to) });
    if (data.length <= CP_LIMITS.maxBatchBytes || to - from === 1) {
      out.push(data);
      parts?.push(cmds.slice(from, to));
      return;
    }
    const h = (from + to) >> 1;
    chunk(from, h);
    chunk(h, to);
  };
  for (let i = 0; i < cmds.length; i += CP_LIMITS.maxBatch) chunk(i, Math.min(cmds.length, i + CP_LIMITS.maxBatch));
  return out;
}

/**
 * Texts of refusals that the single-process primitives (src/cp) give too, so that both read the
 * same, to a library caller and to a RESP client (CP.ACQUIRE, CP.RELEASE) alike.
 */
export const noSuchSemaphore = (name: string): string =>
  `semaphore '${name}' does not exist yet: the call that creates it gives its number of permits (options.permits; PERMITS n in CP.ACQUIRE over RESP)`;
/** `holder`: who asked, 'this session' or 'this thread'. */
export const permitsNotHeld = (holder: string, held: number, name: string, n: number): string =>
  `${holder} holds ${held} permit${held === 1 ? '' : 's'} of semaphore '${name}', cannot release ${n}`;

const err = (code: CpErrorCode, msg: string): CpResult => ['e', code, msg];
const val = (v: number | boolean): CpResult => ['v', v];
const QUEUED: CpResult = Object.freeze(['q']) as unknown as CpResult;

function bytesEqual(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class CpState {
  private readonly sessions = new Map<number, Session>();
  private readonly byKey = new Map<string, number>();
  private readonly prims = new Map<string, Prim>();

  // ── reads (after ReadIndex; never change state) ───────────────────────────────────────────────

  hasSession(id: number): boolean { return this.sessions.has(id); }

  /** The member hosting session `id` (undefined when it is not open). */
  sessionHost(id: number): string | undefined { return this.sessions.get(id)?.host; }

  /** Sessions open now: id, TTL and host (the leader times them). */
  sessionList(): Array<{ id: number; ttl: number; host: string }> {
    return [...this.sessions.values()].map((s) => ({ id: s.id, ttl: s.ttl, host: s.host }));
  }

  /** Holds with a lease now (the leader times them after an election). */
  leasedHolds(): Array<{ n: string; t: number; l: number }> {
    const out: Array<{ n: string; t: number; l: number }> = [];
    for (const [n, p] of this.prims) if (p.kind === 'lock' && p.holder !== 0 && p.lease > 0) out.push({ n, t: p.token, l: p.lease });
    return out;
  }

  /** Counts for `shardgrid status` (cluster/status.ts, ClusterCpStatus): one pass over the primitives (at most CP_LIMITS.maxPrimitives), no names. */
  summary(): CpCounts {
    const out: CpCounts = { sessions: this.sessions.size, locks: 0, locksHeld: 0, semaphores: 0, permitsHeld: 0, atomicLongs: 0, atomicRefs: 0, waiters: 0 };
    for (const p of this.prims.values()) {
      switch (p.kind) {
        case 'lock':
          out.locks++;
          if (p.holder !== 0) out.locksHeld++;
          out.waiters += p.waiters.length;
          break;
        case 'sem':
          out.semaphores++;
          for (const n of p.holds.values()) out.permitsHeld += n;
          out.waiters += p.waiters.length;
          break;
        case 'long': out.atomicLongs++; break;
        case 'ref': out.atomicRefs++; break;
      }
    }
    return out;
  }

  /** The kind of `name`, undefined when unused. */
  kindOf(name: string): CpKind | undefined { return this.prims.get(name)?.kind; }

  lockState(name: string): { holder: number; token: number } {
    const p = this.prims.get(name);
    return p?.kind === 'lock' ? { holder: p.holder, token: p.token } : { holder: 0, token: 0 };
  }

  longValue(name: string): number {
    const p = this.prims.get(name);
    return p?.kind === 'long' ? p.v : 0;
  }

  refValue(name: string): { b: Uint8Array | null; ver: number } {
    const p = this.prims.get(name);
    return p?.kind === 'ref' ? { b: p.b, ver: p.ver } : { b: null, ver: 0 };
  }

  /** Available permits; `permits` for a semaphore not created yet (-1 when not given). */
  semAvailable(name: string, permits: number): number {
    const p = this.prims.get(name);
    return p?.kind === 'sem' ? p.avail : permits;
  }

  semHeld(name: string, s: number): number {
    const p = this.prims.get(name);
    return p?.kind === 'sem' ? (p.holds.get(s) ?? 0) : 0;
  }

  // ── apply ──────────────────────────────────────────────────────────────────────────────────────

  /** Applies the command at `position` of the entry at `index` (0 for a single-command entry). */
  apply(index: number, cmd: CpCommand, position = 0): CpApplied {
    const at = stampOf(index, position);
    switch (cmd.o) {
      case 'open': return this.open(at, cmd.k, cmd.h, cmd.t);
      case 'expire': {
        if (!this.sessions.has(cmd.s)) return {};
        const out: CpApplied = {};
        this.endSession(at, cmd.s, out);
        return out;
      }
      case 'leaseEnd': {
        const p = this.prims.get(cmd.n);
        if (p?.kind !== 'lock' || p.holder === 0 || p.token !== cmd.t || p.lease === 0) return {};
        const out: CpApplied = {};
        this.handOff(at, cmd.n, p, out);
        return out;
      }
    }
    const s = this.sessions.get(cmd.s);
    const out: CpApplied = {};
    if (s === undefined) {
      out.result = { s: cmd.s, q: cmd.q, r: err('GRID_ERR_CP_SESSION', `CP session ${cmd.s} expired or never existed`) };
      return out;
    }
    // forget the answers the client has (everything below its lowest unanswered sequence)
    if (cmd.a > s.floor) {
      s.floor = cmd.a;
      for (const q of s.results.keys()) if (q < cmd.a) s.results.delete(q);
    }
    const known = s.results.get(cmd.q);
    if (known !== undefined) {
      out.result = { s: cmd.s, q: cmd.q, r: known };
      return out;
    }
    if (cmd.q < s.floor) {
      out.result = { s: cmd.s, q: cmd.q, r: err('GRID_ERR_CP_SESSION', `command ${cmd.q} of CP session ${cmd.s} is too old to know its outcome`) };
      return out;
    }
    let r: CpResult;
    if (cmd.o === 'close') {
      this.endSession(at, s.id, out);
      out.result = { s: cmd.s, q: cmd.q, r: val(true) };
      return out;
    }
    if (cmd.o === 'cancel') {
      r = this.cancel(s, cmd.n, cmd.t, out);
    } else {
      r = this.run(at, s, cmd, out);
    }
    this.remember(s, cmd.q, r);
    out.result = { s: cmd.s, q: cmd.q, r };
    return out;
  }

  /** A new session's id is the stamp of its open. */
  private open(at: number, key: string, host: string, ttl: number): CpApplied {
    const known = this.byKey.get(key);
    if (known !== undefined) return { opened: { key, id: known } };
    if (this.sessions.size >= CP_LIMITS.maxSessions) return { opened: { key, id: 0 } }; // refused: the client gets CP_CAPACITY
    this.sessions.set(at, { id: at, key, host, ttl, floor: 0, results: new Map() });
    this.byKey.set(key, at);
    return { opened: { key, id: at } };
  }

  private remember(s: Session, q: number, r: CpResult): void {
    s.results.set(q, r);
    if (s.results.size > CP_LIMITS.maxResults) {
      // the oldest answer goes; a retry of it (or of anything older that is not remembered) is
      // refused from now on. A wait still queued (['q']) is not an answer: its client waits on, and
      // its retry (a lite member asking again, a resend after a leader change) and its cancel need
      // the record. Before, a member that waited for a lock while it ran 1,024 other commands
      // had its wait refused as "too old", dropped its live session and got the lock a TTL late (a
      // timed-out tryLock's cancel left the waiter queued: the lock went to nobody, for good). Only
      // a session with more queued waits than maxResults loses the oldest of them.
      let min = Infinity;
      let minSettled = Infinity;
      for (const [k, r] of s.results) {
        if (k < min) min = k;
        if (k < minSettled && r[0] !== 'q') minSettled = k;
      }
      const gone = minSettled === Infinity ? min : minSettled;
      s.results.delete(gone);
      s.floor = Math.max(s.floor, gone + 1);
    }
  }

  /** A granted waiter: its remembered result becomes the grant, and its host is told. */
  private grant(s: number, q: number, r: CpResult, out: CpApplied): void {
    const sess = this.sessions.get(s);
    if (sess !== undefined && sess.results.has(q)) sess.results.set(q, r);
    (out.grants ??= []).push({ s, q, result: r });
  }

  private prim<K extends CpKind>(name: string, kind: K, make: () => Extract<Prim, { kind: K }>): Extract<Prim, { kind: K }> | CpResult {
    const p = this.prims.get(name);
    if (p !== undefined) {
      if (p.kind !== kind) return err('GRID_ERR_CP_KIND', `'${name}' is a ${p.kind}, not a ${kind}`);
      return p as Extract<Prim, { kind: K }>;
    }
    if (this.prims.size >= CP_LIMITS.maxPrimitives) return err('GRID_ERR_CP_CAPACITY', `the cluster holds ${CP_LIMITS.maxPrimitives} CP primitives already`);
    const made = make();
    this.prims.set(name, made);
    return made;
  }

  /** `at`: the command's stamp (the token of a hold it grants). */
  private run(at: number, s: Session, cmd: Exclude<CpCommand, { o: 'open' | 'expire' | 'leaseEnd' | 'close' | 'cancel' }>, out: CpApplied): CpResult {
    switch (cmd.o) {
      case 'lock': {
        const p = this.prim(cmd.n, 'lock', () => ({ kind: 'lock', holder: 0, token: 0, lease: 0, waiters: [] }));
        if (Array.isArray(p)) return p;
        if (p.holder === 0) {
          p.holder = s.id;
          p.token = at;
          p.lease = cmd.l;
          if (cmd.l > 0) (out.leased ??= []).push({ n: cmd.n, t: at, l: cmd.l });
          return val(at);
        }
        if (!cmd.w) return val(0);
        if (p.waiters.length >= CP_LIMITS.maxWaiters) return err('GRID_ERR_CP_CAPACITY', `lock '${cmd.n}' has ${CP_LIMITS.maxWaiters} waiters already`);
        p.waiters.push({ s: s.id, q: cmd.q, l: cmd.l });
        return QUEUED;
      }
      case 'unlock': {
        const p = this.prims.get(cmd.n);
        if (p !== undefined && p.kind !== 'lock') return err('GRID_ERR_CP_KIND', `'${cmd.n}' is a ${p.kind}, not a lock`);
        if (p === undefined || p.holder !== s.id) return err('GRID_ERR_LOCK_NOT_HELD', `lock '${cmd.n}' is not held by this member (its lease or session may have ended)`);
        this.handOff(at, cmd.n, p, out);
        return val(true);
      }
      case 'acq': {
        const p = this.semaphore(cmd.n, cmd.p);
        if (Array.isArray(p)) return p;
        if (cmd.k > p.total) return err('GRID_ERR_INVALID_ARGUMENT', `semaphore '${cmd.n}' has ${p.total} permits in all: ${cmd.k} can never be granted`);
        if (p.waiters.length === 0 && p.avail >= cmd.k) {
          p.avail -= cmd.k;
          p.holds.set(s.id, (p.holds.get(s.id) ?? 0) + cmd.k);
          return val(true);
        }
        if (!cmd.w) return val(false);
        if (p.waiters.length >= CP_LIMITS.maxWaiters) return err('GRID_ERR_CP_CAPACITY', `semaphore '${cmd.n}' has ${CP_LIMITS.maxWaiters} waiters already`);
        p.waiters.push({ s: s.id, q: cmd.q, k: cmd.k });
        return QUEUED;
      }
      case 'rel': {
        const p = this.semaphore(cmd.n, cmd.p);
        if (Array.isArray(p)) return p;
        const held = p.holds.get(s.id) ?? 0;
        // the holder is the CP session the command came in (a member's, an attached thread's, a RESP connection's)
        if (held < cmd.k) return err('GRID_ERR_PERMITS_NOT_HELD', permitsNotHeld('this session', held, cmd.n, cmd.k));
        if (held === cmd.k) p.holds.delete(s.id);
        else p.holds.set(s.id, held - cmd.k);
        p.avail += cmd.k;
        this.grantPermits(p, out);
        return val(true);
      }
      case 'lset':
      case 'ladd':
      case 'lcas': {
        const p = this.prim(cmd.n, 'long', () => ({ kind: 'long', v: 0 }));
        if (Array.isArray(p)) return p;
        if (cmd.o === 'lset') {
          p.v = cmd.v;
          return val(true);
        }
        if (cmd.o === 'lcas') {
          if (p.v !== cmd.e) return val(false);
          p.v = cmd.v;
          return val(true);
        }
        const next = p.v + cmd.d;
        if (!Number.isSafeInteger(next)) return err('GRID_ERR_CP_RANGE', `atomicLong '${cmd.n}': ${p.v} + ${cmd.d} leaves the safe-integer range (±${Number.MAX_SAFE_INTEGER})`);
        p.v = next;
        return val(next);
      }
      case 'rset':
      case 'rcas':
      case 'rcasv': {
        const p = this.prim(cmd.n, 'ref', () => ({ kind: 'ref', b: null, ver: 0 }));
        if (Array.isArray(p)) return p;
        if (cmd.o === 'rcas' && !bytesEqual(p.b, cmd.e)) return val(false);
        if (cmd.o === 'rcasv' && p.ver !== cmd.e) return val(false);
        p.b = cmd.v === null ? null : cmd.v.slice();
        p.ver++;
        return cmd.o === 'rset' ? val(p.ver) : val(true);
      }
    }
  }

  private semaphore(name: string, permits: number): Extract<Prim, { kind: 'sem' }> | CpResult {
    const p = this.prims.get(name);
    if (p === undefined && permits < 0) return err('GRID_ERR_INVALID_ARGUMENT', noSuchSemaphore(name));
    const sem = this.prim(name, 'sem', () => ({ kind: 'sem', total: permits, avail: permits, holds: new Map(), waiters: [] }));
    if (Array.isArray(sem)) return sem;
    if (permits >= 0 && permits !== sem.total) return err('GRID_ERR_INVALID_ARGUMENT', `semaphore '${name}' was created with ${sem.total} permits, not ${permits}`);
    return sem;
  }

  /** Waiters in arrival order while the head fits (a big request is not overtaken by small ones). */
  private grantPermits(p: Extract<Prim, { kind: 'sem' }>, out: CpApplied): void {
    while (p.waiters.length > 0 && p.waiters[0].k <= p.avail) {
      const w = p.waiters.shift() as SemWaiter;
      p.avail -= w.k;
      p.holds.set(w.s, (p.holds.get(w.s) ?? 0) + w.k);
      this.grant(w.s, w.q, val(true), out);
    }
  }

  /** The hold of lock `name` ends: the oldest waiter gets it, with this command's stamp `at` as its token. */
  private handOff(at: number, name: string, p: Extract<Prim, { kind: 'lock' }>, out: CpApplied): void {
    const w = p.waiters.shift();
    if (w === undefined) {
      p.holder = 0;
      p.lease = 0;
      return;
    }
    p.holder = w.s;
    p.token = at;
    p.lease = w.l;
    if (w.l > 0) (out.leased ??= []).push({ n: name, t: at, l: w.l });
    this.grant(w.s, w.q, val(at), out);
  }

  private cancel(s: Session, name: string, t: number, out: CpApplied): CpResult {
    const known = s.results.get(t);
    if (known === undefined) {
      // the command has not applied yet (it may still arrive): record its outcome now, so it never will
      if (t >= s.floor) this.remember(s, t, val(false));
      // or it queued and its record was forgotten (more queued waits than maxResults): a waiter
      // left in the queue would be granted a hold that nobody waits for
      else this.dropWaiter(s.id, name, t, out);
      return val(false);
    }
    if (known[0] !== 'q') return known; // granted (a token, or true) or failed before the cancel
    this.dropWaiter(s.id, name, t, out);
    s.results.set(t, val(false));
    return val(false);
  }

  /** Takes the wait (session, sequence) out of the queue of `name`, if it is there. */
  private dropWaiter(session: number, name: string, t: number, out: CpApplied): void {
    const p = this.prims.get(name);
    if (p?.kind === 'lock' || p?.kind === 'sem') {
      const ws = p.waiters as Array<{ s: number; q: number }>;
      const i = ws.findIndex((w) => w.s === session && w.q === t);
      if (i >= 0) ws.splice(i, 1);
      // a semaphore head that left may unblock the ones behind it
      if (p.kind === 'sem' && i === 0) this.grantPermits(p, out);
    }
  }

  /** Session `id` ends: its holds are handed on, its permits returned, its waits dropped. */
  private endSession(at: number, id: number, out: CpApplied): void {
    const s = this.sessions.get(id) as Session;
    this.sessions.delete(id);
    this.byKey.delete(s.key);
    (out.ended ??= []).push(id);
    for (const [name, p] of this.prims) {
      if (p.kind === 'lock') {
        p.waiters = p.waiters.filter((w) => w.s !== id);
        if (p.holder === id) this.handOff(at, name, p, out);
      } else if (p.kind === 'sem') {
        const before = p.waiters.length;
        p.waiters = p.waiters.filter((w) => w.s !== id);
        const held = p.holds.get(id) ?? 0;
        p.holds.delete(id);
        p.avail += held;
        if (held > 0 || p.waiters.length !== before) this.grantPermits(p, out);
      }
    }
  }

  // ── snapshot / restore ────────────────────────────────────────────────────────────────────────

  snapshot(): CpSnapshot {
    const sessions: CpSnapshot['sessions'] = [];
    for (const s of this.sessions.values()) sessions.push([s.id, s.key, s.host, s.ttl, s.floor, [...s.results].map(([q, r]) => [q, r])]);
    const prims: CpSnapshot['prims'] = [];
    for (const [n, p] of this.prims) {
      switch (p.kind) {
        case 'lock': prims.push([n, 'lock', p.holder, p.token, p.lease, p.waiters.map((w) => [w.s, w.q, w.l])]); break;
        case 'sem': prims.push([n, 'sem', p.total, p.avail, [...p.holds], p.waiters.map((w) => [w.s, w.q, w.k])]); break;
        case 'long': prims.push([n, 'long', p.v]); break;
        case 'ref': prims.push([n, 'ref', p.b, p.ver]); break;
      }
    }
    return { sessions, prims };
  }

  restore(snap: CpSnapshot): void {
    this.sessions.clear();
    this.byKey.clear();
    this.prims.clear();
    for (const [id, key, host, ttl, floor, results] of snap.sessions) {
      this.sessions.set(id, { id, key, host, ttl, floor, results: new Map(results.map(([q, r]) => [q, r])) });
      this.byKey.set(key, id);
    }
    for (const e of snap.prims) {
      const n = e[0];
      switch (e[1]) {
        case 'lock': this.prims.set(n, { kind: 'lock', holder: e[2], token: e[3], lease: e[4], waiters: e[5].map(([s, q, l]) => ({ s, q, l })) }); break;
        case 'sem': this.prims.set(n, { kind: 'sem', total: e[2], avail: e[3], holds: new Map(e[4]), waiters: e[5].map(([s, q, k]) => ({ s, q, k })) }); break;
        case 'long': this.prims.set(n, { kind: 'long', v: e[2] }); break;
        case 'ref': this.prims.set(n, { kind: 'ref', b: e[2], ver: e[3] }); break;
      }
    }
  }
}

/** What the CP state machine holds, counted (CpState.summary): no names, no values. */
export interface CpCounts {
  /** CP sessions open (one per member that used grid.cp, plus each grid.cp.session()). */
  sessions: number;
  /** Lock names in use, and how many of them are held now. */
  locks: number;
  locksHeld: number;
  /** Semaphore names in use, and the permits their holders hold now. */
  semaphores: number;
  permitsHeld: number;
  /** AtomicLong and AtomicRef names in use. */
  atomicLongs: number;
  atomicRefs: number;
  /** Calls queued on a lock or a semaphore. */
  waiters: number;
}

export interface CpSnapshot {
  sessions: Array<[number, string, string, number, number, Array<[number, CpResult]>]>;
  prims: Array<
    | [string, 'lock', number, number, number, Array<[number, number, number]>]
    | [string, 'sem', number, number, Array<[number, number]>, Array<[number, number, number]>]
    | [string, 'long', number]
    | [string, 'ref', Uint8Array | null, number]
  >;
}

const ERROR_CODES: ReadonlySet<string> = new Set(['GRID_ERR_CP_SESSION', 'GRID_ERR_CP_KIND', 'GRID_ERR_CP_CAPACITY', 'GRID_ERR_LOCK_NOT_HELD', 'GRID_ERR_PERMITS_NOT_HELD', 'GRID_ERR_INVALID_ARGUMENT', 'GRID_ERR_CP_RANGE']);

/** A CP result as the wire may carry it (a snapshot's, a data member's answer to a lite member): a registered error code and a message of at most 1024 characters. */
export function isCpResult(x: unknown): x is CpResult {
  if (!Array.isArray(x)) return false;
  if (x[0] === 'q') return x.length === 1;
  if (x[0] === 'v') return x.length === 2 && (typeof x[1] === 'boolean' || isSafe(x[1]));
  return x[0] === 'e' && x.length === 3 && typeof x[1] === 'string' && ERROR_CODES.has(x[1]) && typeof x[2] === 'string' && x[2].length <= 1024;
}
const isTriples = (x: unknown): x is Array<[number, number, number]> =>
  Array.isArray(x) && x.length <= CP_LIMITS.maxWaiters && x.every((w) => Array.isArray(w) && w.length === 3 && w.every(isNat));

/** Validates a CP snapshot received from the log (InstallSnapshot): shapes, bounds, cross-references. */
export function isCpSnapshot(x: unknown): x is CpSnapshot {
  if (!plain(x) || !exactKeys(x, ['sessions', 'prims'])) return false;
  const { sessions, prims } = x;
  if (!Array.isArray(sessions) || sessions.length > CP_LIMITS.maxSessions || !Array.isArray(prims) || prims.length > CP_LIMITS.maxPrimitives) return false;
  const ids = new Set<number>();
  const keys = new Set<string>();
  for (const s of sessions) {
    if (!Array.isArray(s) || s.length !== 6) return false;
    const [id, key, host, ttl, floor, results] = s as unknown[];
    if (!isNat(id) || id === 0 || ids.has(id) || !isKey(key) || keys.has(key) || !isKey(host) || !isNat(ttl) || !isNat(floor)) return false;
    if (!Array.isArray(results) || results.length > CP_LIMITS.maxResults) return false;
    for (const r of results) if (!Array.isArray(r) || r.length !== 2 || !isNat(r[0]) || !isCpResult(r[1])) return false;
    ids.add(id);
    keys.add(key);
  }
  const names = new Set<string>();
  for (const p of prims) {
    if (!Array.isArray(p) || !isCpName(p[0]) || names.has(p[0])) return false;
    names.add(p[0]);
    switch (p[1]) {
      case 'lock':
        if (p.length !== 6 || !isNat(p[2]) || !isNat(p[3]) || !isNat(p[4]) || !isTriples(p[5])) return false;
        break;
      case 'sem':
        if (p.length !== 6 || !isNat(p[2]) || !isNat(p[3]) || !isTriples(p[5])) return false;
        if (!Array.isArray(p[4]) || p[4].length > CP_LIMITS.maxSessions || !p[4].every((h: unknown) => Array.isArray(h) && h.length === 2 && isNat(h[0]) && isNat(h[1]))) return false;
        break;
      case 'long':
        if (p.length !== 3 || !isSafe(p[2])) return false;
        break;
      case 'ref':
        if (p.length !== 4 || !isBytesOrNull(p[2]) || !isNat(p[3])) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}
