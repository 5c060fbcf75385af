/**
 * The metadata state machine: what the Raft log of the data members decides (native-notes.md,
 * "Metadata on Raft"). Every data member applies the same committed commands in the same order,
 * so every member computes the same members, the same table and the same epochs; nothing here
 * reads a clock, a random number or anything outside the command and its log index.
 *
 * Commands (msgpack-encoded in log entries, validated with `parseCommand` before apply):
 *
 * ```
 * join   { c: 'join', id, url }              a data member joins (first join of an id only)
 * remove { c: 'remove', id, why }            a member left or was found dead: it leaves every
 *                                            owner and pending list in the same entry, so its
 *                                            backups are primaries at this entry's index
 * table  { c: 'table', base, owners, pending } an assignment the leader planned from the table
 *                                            of version `base`; ignored unless `base` is still
 *                                            the current version and it keeps every
 *                                            partition's data (`keepsData`)
 * drop   { c: 'drop', p, m, epoch }          copy m of p (a backup or a pending copy, never the
 *                                            primary) missed a replicated write at `epoch`: it
 *                                            stops being a copy; the next plan lists it as a
 *                                            pending copy again, streamed afresh
 * ```
 *
 * cpb    { c: 'cpb', b: [cp command, ...] }  commands of the CP subsystem (sessions, locks,
 *                                            semaphores, atomics), each in its wire form
 *                                            `[op, ...fields]`, applied in order (cp-state.ts)
 * ```
 *
 * The table's version is the index of the entry that last changed it; epochs[p] the index of
 * the entry that last changed p's primary (ring/table.ts `tableAt`).
 */
import { emptyTable, isAssignment, keepsData, tableAt, without, type Assignment, type PartitionTable } from '../../ring/table.js';
import { isMemberUrl } from '../../config.js';
import { isMemberIdName } from '../../transport/wire.js';
import { CpState, isCpSnapshot, parseCpBatch, type CpApplied, type CpBatch, type CpSnapshot } from './cp-state.js';

/** Data members the log admits; a join beyond this is ignored (a secret holder cannot flood it). */
export const MAX_MEMBERS = 256;
/** Removed ids remembered (never admitted again): the most recent ones. */
export const MAX_REMOVED = 4096;
export const MAX_ID_CHARS = 256;

export interface MemberRecord {
  readonly id: string;
  readonly url: string;
  /** Log index of its join. */
  readonly joined: number;
}

export type Command =
  | { c: 'join'; id: string; url: string }
  | { c: 'remove'; id: string; why: 'dead' | 'left' | 'removed' }
  | { c: 'table'; base: number; owners: string[][]; pending: string[][] }
  | { c: 'drop'; p: number; m: string; epoch: number }
  | CpBatch;

/** What applying one command changed. */
export interface Applied {
  joined?: MemberRecord;
  removed?: { id: string; why: string };
  /** Set when the table changed (a new version). */
  table?: PartitionTable;
  /** Partitions whose last copy this entry removed. */
  lost?: number[];
  /** What the CP command(s) of the entry did, in order. */
  cp?: CpApplied[];
}

export interface StateSnapshot {
  index: number;
  members: Array<[string, string, number]>;
  removed: string[];
  table: PartitionTable;
  cp: CpSnapshot;
}

/** A member id the log takes: the transport's rule (with TLS, ids carry `@` and their certificate's principal, identity.ts). */
export function isMemberId(x: unknown): x is string {
  return isMemberIdName(x);
}

/** Validates a decoded command; undefined when it is not one. */
export function parseCommand(x: unknown, partitions: number): Command | undefined {
  if (x === null || typeof x !== 'object' || Array.isArray(x)) return undefined;
  const o = x as Record<string, unknown>;
  switch (o.c) {
    case 'join':
      return isMemberId(o.id) && isMemberUrl(o.url) ? { c: 'join', id: o.id, url: o.url } : undefined;
    case 'remove':
      return isMemberId(o.id) && (o.why === 'dead' || o.why === 'left' || o.why === 'removed') ? { c: 'remove', id: o.id, why: o.why } : undefined;
    case 'table':
      return Number.isSafeInteger(o.base) && (o.base as number) >= 0 && isAssignment(o, partitions)
        ? { c: 'table', base: o.base as number, owners: o.owners as string[][], pending: o.pending as string[][] }
        : undefined;
    case 'cpb':
      return parseCpBatch(x);
    case 'drop':
      return Number.isInteger(o.p) && (o.p as number) >= 0 && (o.p as number) < partitions && isMemberId(o.m) && Number.isSafeInteger(o.epoch) && (o.epoch as number) >= 0
        ? { c: 'drop', p: o.p as number, m: o.m, epoch: o.epoch as number }
        : undefined;
    default:
      return undefined;
  }
}

export class MetaState {
  readonly partitions: number;
  /** Data members in join order. */
  readonly members = new Map<string, MemberRecord>();
  private readonly removedIds = new Set<string>();
  private _table: PartitionTable;
  /** The CP subsystem's state (cp-state.ts). */
  readonly cp = new CpState();
  /** Index of the last entry applied. */
  index = 0;

  constructor(partitions: number) {
    this.partitions = partitions;
    this._table = emptyTable(partitions);
  }

  get table(): PartitionTable {
    return this._table;
  }

  wasRemoved(id: string): boolean {
    return this.removedIds.has(id);
  }

  /** Applies the command of entry `index` (an entry that is not a valid command changes nothing). */
  apply(index: number, cmd: Command | undefined): Applied {
    this.index = index;
    if (cmd === undefined) return {};
    switch (cmd.c) {
      case 'cpb': {
        const cp = new Array<CpApplied>(cmd.b.length);
        for (let i = 0; i < cmd.b.length; i++) cp[i] = this.cp.apply(index, cmd.b[i], i);
        return { cp };
      }
      case 'join': {
        if (this.members.has(cmd.id) || this.removedIds.has(cmd.id) || this.members.size >= MAX_MEMBERS) return {};
        const rec: MemberRecord = { id: cmd.id, url: cmd.url, joined: index };
        this.members.set(cmd.id, rec);
        return { joined: rec };
      }
      case 'remove': {
        if (!this.members.has(cmd.id)) return {};
        this.members.delete(cmd.id);
        this.remember(cmd.id);
        const next = without(this._table, cmd.id);
        return { removed: { id: cmd.id, why: cmd.why }, ...this.setTable(next, index) };
      }
      case 'table': {
        if (cmd.base !== this._table.version) return {};
        // owners and pending copies must be members; no partition may lose its data
        const ok = (l: string[]) => l.every((m) => this.members.has(m)) && new Set(l).size === l.length;
        for (let p = 0; p < this.partitions; p++) {
          if (!ok(cmd.owners[p]) || !ok(cmd.pending[p]) || cmd.pending[p].some((m) => cmd.owners[p].includes(m))) return {};
          if (this.members.size > 0 && cmd.owners[p].length === 0) return {};
        }
        if (!keepsData(this._table, cmd, new Set(this.members.keys()))) return {};
        return this.setTable(cmd, index);
      }
      case 'drop': {
        const t = this._table;
        const o = t.owners[cmd.p];
        const i = o.indexOf(cmd.m);
        const pi = t.pending[cmd.p].indexOf(cmd.m);
        // a stale report, the primary itself, or not a copy: nothing to do
        if (t.epochs[cmd.p] !== cmd.epoch || i === 0 || (i < 0 && pi < 0)) return {};
        const owners = t.owners.slice();
        owners[cmd.p] = o.filter((m) => m !== cmd.m);
        const pending = t.pending.slice();
        pending[cmd.p] = t.pending[cmd.p].filter((m) => m !== cmd.m);
        return this.setTable({ owners, pending }, index);
      }
    }
  }

  private setTable(next: Assignment, index: number): Applied {
    const before = this._table;
    const t = tableAt(before, next, index);
    this._table = t;
    const lost: number[] = [];
    for (let p = 0; p < this.partitions; p++) if (t.lost[p] === index) lost.push(p);
    return lost.length > 0 ? { table: t, lost } : { table: t };
  }

  private remember(id: string): void {
    this.removedIds.add(id);
    if (this.removedIds.size > MAX_REMOVED) {
      const first = this.removedIds.values().next().value as string;
      this.removedIds.delete(first);
    }
  }

  snapshot(): StateSnapshot {
    return {
      index: this.index,
      members: [...this.members.values()].map((m) => [m.id, m.url, m.joined]),
      removed: [...this.removedIds],
      table: this._table,
      cp: this.cp.snapshot(),
    };
  }

  restore(s: StateSnapshot): void {
    this.members.clear();
    this.removedIds.clear();
    for (const [id, url, joined] of s.members) this.members.set(id, { id, url, joined });
    for (const id of s.removed) this.removedIds.add(id);
    this._table = s.table;
    this.cp.restore(s.cp);
    this.index = s.index;
  }
}

/** Validates a state snapshot received from the log (InstallSnapshot). */
export function isStateSnapshot(x: unknown, partitions: number, isTable: (t: unknown, n: number) => boolean): x is StateSnapshot {
  if (x === null || typeof x !== 'object') return false;
  const s = x as Record<string, unknown>;
  if (!Number.isSafeInteger(s.index) || (s.index as number) < 0) return false;
  if (!Array.isArray(s.members) || s.members.length > MAX_MEMBERS) return false;
  for (const m of s.members) if (!Array.isArray(m) || m.length !== 3 || !isMemberId(m[0]) || !isMemberUrl(m[1]) || !Number.isSafeInteger(m[2])) return false;
  if (!Array.isArray(s.removed) || s.removed.length > MAX_REMOVED || !s.removed.every(isMemberId)) return false;
  if (!isCpSnapshot(s.cp)) return false;
  return (s.table as PartitionTable | undefined)?.version === 0 || isTable(s.table, partitions);
}
