/**
 * The cluster's partition table: for every partition, its owners (owners[p][0] the primary, the
 * rest synchronous backups) and the members still receiving a copy (pending[p]). Tables are
 * states of the metadata Raft log (cluster/metadata): `version` is the log index of the entry
 * that produced the table, and `epochs[p]` the index of the entry that last changed p's primary.
 * Two tables with the same version are the same table; a higher version is always newer.
 *
 * `assign` is consistent hashing with bounded load over member ids (each member places
 * RING_POINTS points on a 32-bit ring; a partition walks clockwise from its own hash and takes
 * the first member under the load cap). Backups continue the same walk, skipping members already
 * chosen. Adding or removing one member moves about 1/N of the partitions.
 *
 * `plan` turns (current table, live members, synced reports) into the next table without ever
 * dropping the last copy of a partition's data: a new owner first appears in `pending`, the
 * primary streams the partition to it, and only once it reported the copy complete does it
 * become an owner (and a new primary take over).
 */
import { HASH_SEED, murmur3 } from './hash.js';
import { firstPointAtOrAfter } from './ring.js';

export interface PartitionTable {
  /** Log index of the metadata entry that produced this table. */
  version: number;
  /** owners[p] = [primary, ...backups]; empty when no data member is alive. */
  owners: string[][];
  /** pending[p] = members receiving a copy of p (they get every replicated write meanwhile). */
  pending: string[][];
  /**
   * epochs[p] = log index of the entry that last changed p's primary. Every replicated write and
   * snapshot of p carries it; a copy applies one only at its own table's epoch (fencing).
   */
  epochs: number[];
  /** lost[p] = log index at which p lost its last copy (0: never). Beyond the configured tolerance. */
  lost: number[];
}

/** An assignment computed by `plan`: owners and pending copies, before the log gives it a version. */
export interface Assignment {
  owners: string[][];
  pending: string[][];
}

const RING_POINTS = 64;
/** A member takes at most ceil(LOAD * P / N) primaries (and as many backups of each rank). */
export const LOAD = 1.05;

const enc = new TextEncoder();
const h = (s: string): number => {
  const b = enc.encode(s);
  return murmur3(b, b.length, HASH_SEED);
};

/** owners[p] = [primary, ...backups] over `members` (data members, any order). */
export function assign(partitions: number, members: readonly string[], backups: number): string[][] {
  const ids = [...members].sort();
  const out: string[][] = Array.from({ length: partitions }, () => []);
  if (ids.length === 0) return out;
  const points: Array<[number, string]> = [];
  for (const id of ids) for (let v = 0; v < RING_POINTS; v++) points.push([h(`${id}#${v}`), id]);
  points.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  const copies = Math.min(backups + 1, ids.length);
  const cap = Math.ceil((LOAD * partitions) / ids.length);
  // load[rank] counts, per member, the partitions it holds at that rank (0 = primary)
  const load: Array<Map<string, number>> = Array.from({ length: copies }, () => new Map(ids.map((id) => [id, 0])));
  for (let p = 0; p < partitions; p++) {
    const ph = h(`partition:${p}`);
    const lo = firstPointAtOrAfter(points, ph);
    const chosen = out[p];
    for (let rank = 0; rank < copies; rank++) {
      const l = load[rank];
      let pick: string | undefined;
      for (let step = 0; step < points.length; step++) {
        const id = points[(lo + step) % points.length][1];
        if (chosen.includes(id)) continue;
        if (l.get(id)! < cap) {
          pick = id;
          break;
        }
      }
      if (pick === undefined) pick = ids.find((id) => !chosen.includes(id))!; // all at cap: cannot happen with cap ≥ P/N
      chosen.push(pick);
      l.set(pick, l.get(pick)! + 1);
    }
  }
  return out;
}

/**
 * `assign`, remembered for the last (partitions, members, backups) it was asked: the leader plans
 * every tick (10 a second) with the same live members nearly always, and the assignment (hashing
 * RING_POINTS points per member, a sort and a walk per partition) cost 1-5 ms of the leader's
 * event loop each time (perf, CP bench, 2026-11-26). The lists are frozen: callers read them only.
 */
let lastAssign: { key: string; out: readonly (readonly string[])[] } | undefined;
export function assignCached(partitions: number, members: readonly string[], backups: number): readonly (readonly string[])[] {
  const key = `${partitions}|${backups}|${[...members].sort().join(',')}`;
  if (lastAssign?.key === key) return lastAssign.out;
  const out = Object.freeze(assign(partitions, members, backups).map((o) => Object.freeze(o)));
  lastAssign = { key, out };
  return out;
}

/** The table before the first data member joined: no owners. */
export function emptyTable(partitions: number): PartitionTable {
  const none = (): string[][] => Array.from({ length: partitions }, () => []);
  return { version: 0, owners: none(), pending: none(), epochs: new Array<number>(partitions).fill(0), lost: new Array<number>(partitions).fill(0) };
}

/**
 * The table that `next` makes of `cur` at log index `index`: epochs move where the primary
 * changed; a partition whose last owner is gone is marked lost (its data is gone: beyond the
 * configured tolerance; the next plan gives it new, empty owners).
 */
export function tableAt(cur: PartitionTable, next: Assignment, index: number): PartitionTable {
  const P = cur.owners.length;
  const epochs = cur.epochs.slice();
  const lost = cur.lost.slice();
  for (let p = 0; p < P; p++) {
    if (next.owners[p][0] !== cur.owners[p][0]) epochs[p] = index;
    if (cur.owners[p].length > 0 && next.owners[p].length === 0) lost[p] = index;
  }
  return { version: index, owners: next.owners, pending: next.pending, epochs, lost };
}

/**
 * Removes `id` from every owner and pending list: a failed or departed member. The first
 * surviving backup of each of its primaries becomes primary at once (`tableAt` moves the epoch).
 */
export function without(cur: PartitionTable, id: string): Assignment {
  return {
    owners: cur.owners.map((o) => (o.includes(id) ? o.filter((m) => m !== id) : o)),
    pending: cur.pending.map((o) => (o.includes(id) ? o.filter((m) => m !== id) : o)),
  };
}

/**
 * Partitions whose data only `id` holds among `members` (no other owner that is a member): what a
 * removal of `id` would lose.
 */
export function lastCopiesOf(cur: PartitionTable, id: string, members: { has(id: string): boolean }): number[] {
  const out: number[] = [];
  for (let p = 0; p < cur.owners.length; p++) {
    const o = cur.owners[p];
    if (o.includes(id) && !o.some((m) => m !== id && members.has(m))) out.push(p);
  }
  return out;
}

/**
 * Whether `next` keeps, for every partition of `cur` that has an owner in `members`, at least one
 * member that holds its data now — an owner, or a pending copy (which gets every write; the
 * leader's plan promotes one only after its primary reported it complete): the rule that no
 * table ever drops the last copy of a partition's data.
 */
export function keepsData(cur: PartitionTable, next: Assignment, members: ReadonlySet<string>): boolean {
  for (let p = 0; p < cur.owners.length; p++) {
    const held = cur.owners[p].filter((m) => members.has(m));
    if (held.length === 0) continue;
    if (!next.owners[p].some((m) => held.includes(m) || (members.has(m) && cur.pending[p].includes(m)))) return false;
  }
  return true;
}

/**
 * The next assignment for `live` data members, given the current table and which pending copies
 * have been reported complete (`synced(p)`); undefined when nothing changes.
 *
 * `opts.away`: members that are still members but must get nothing (the leader cannot renew their
 * lease: paused, cut off, or dead to SWIM and waiting out the last-copy grace). They are taken
 * out of every partition a live member holds (its backups there become primaries, as a removal
 * would do), and a partition that only they hold is left exactly as it is: recreating it on a live
 * member would start it empty while its data may come back.
 *
 * `opts.blocked(primary, copy)`: the primary recently reported that copy unreachable (a one-way
 * or pairwise partition: both are alive and hold leases, but cannot talk). A target copy blocked
 * for the partition's current primary is replaced by another live member (or the primary itself
 * stays an owner), so the replacement copy can actually be streamed; the balanced target comes
 * back once the block has expired.
 */
export function plan(
  cur: PartitionTable,
  live: readonly string[],
  backups: number,
  synced: (p: number) => ReadonlySet<string>,
  opts: { away?: ReadonlySet<string>; blocked?: (primary: string, copy: string) => boolean } = {},
): Assignment | undefined {
  const { away, blocked } = opts;
  const P = cur.owners.length;
  const alive = new Set(live);
  const target = assignCached(P, live, backups);
  const owners: string[][] = [];
  const pending: string[][] = [];
  let changed = false;
  for (let p = 0; p < P; p++) {
    const held = cur.owners[p].filter((m) => alive.has(m));
    const done = synced(p);
    const have = new Set(held);
    for (const m of cur.pending[p]) if (alive.has(m) && done.has(m)) have.add(m);
    if (held.length === 0 && away !== undefined && cur.owners[p].some((m) => away.has(m))) {
      owners.push(cur.owners[p]);
      const pend = cur.pending[p].filter((m) => alive.has(m));
      pending.push(pend);
      if (!sameList(pend, cur.pending[p])) changed = true;
      continue;
    }
    const t = blocked === undefined || held.length === 0 ? target[p] : unblocked(target[p], held[0], live, blocked);
    let o: string[];
    if (held.length === 0) {
      // every copy is gone (or the cluster just started): the target owns it, empty
      o = t.slice();
    } else if (have.has(t[0])) {
      o = t.filter((m) => have.has(m));
      // keep old copies as extra backups until the target's own backups hold the data
      for (const m of held) if (o.length < t.length && !o.includes(m)) o.push(m);
    } else {
      o = held; // primary stays until the target primary holds a copy
    }
    const pend = t.filter((m) => !o.includes(m));
    owners.push(o);
    pending.push(pend);
    if (!sameList(o, cur.owners[p]) || !sameList(pend, cur.pending[p])) changed = true;
  }
  return changed ? { owners, pending } : undefined;
}

/** `t` with each member blocked for `primary` replaced by the primary itself or another live member that is not. */
function unblocked(t: readonly string[], primary: string, live: readonly string[], blocked: (primary: string, copy: string) => boolean): readonly string[] {
  if (!t.some((m) => m !== primary && blocked(primary, m))) return t;
  const out: string[] = [];
  for (const m of t) {
    if (m === primary || !blocked(primary, m)) {
      if (!out.includes(m)) out.push(m);
      continue;
    }
    const r = !t.includes(primary) && !out.includes(primary) ? primary : live.find((x) => x !== primary && !t.includes(x) && !out.includes(x) && !blocked(primary, x));
    out.push(r ?? m);
  }
  return out;
}

/** How many partitions `id` is primary of and backup of in table `t` (none when t is undefined). */
export function ownedBy(t: PartitionTable | undefined, id: string): { primaries: number; backups: number } {
  let primaries = 0;
  let backups = 0;
  if (t !== undefined) {
    for (const o of t.owners) {
      const i = o.indexOf(id);
      if (i === 0) primaries++;
      else if (i > 0) backups++;
    }
  }
  return { primaries, backups };
}

/** Every member the table names (as an owner or a copy in flight), in first-named order. */
export function namedIn(t: PartitionTable | undefined): string[] {
  const ids = new Set<string>();
  if (t !== undefined) for (const l of [...t.owners, ...t.pending]) for (const id of l) ids.add(id);
  return [...ids];
}

/** Partitions that still have a copy in flight. */
export function migrating(t: PartitionTable | undefined): number {
  return t === undefined ? 0 : t.pending.filter((l) => l.length > 0).length;
}

/** The first `max` partitions with a copy in flight: the primary streaming it and the copies it streams to. */
export function migrations(t: PartitionTable | undefined, max: number): Array<{ partition: number; from?: string; to: string[] }> {
  const out: Array<{ partition: number; from?: string; to: string[] }> = [];
  if (t === undefined) return out;
  for (let p = 0; p < t.pending.length && out.length < max; p++) {
    if (t.pending[p].length === 0) continue;
    const from = t.owners[p][0];
    out.push(from === undefined ? { partition: p, to: [...t.pending[p]] } : { partition: p, from, to: [...t.pending[p]] });
  }
  return out;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Validates a table received from a peer (shape only; ids are opaque strings). */
export function isTable(x: unknown, partitions: number): x is PartitionTable {
  if (x === null || typeof x !== 'object') return false;
  const t = x as Record<string, unknown>;
  if (!Number.isSafeInteger(t.version) || (t.version as number) < 1) return false;
  const v = t.version as number;
  return isAssignment(t, partitions) && indexes(t.epochs, partitions, v) && indexes(t.lost, partitions, v);
}

/** Validates owners and pending lists of a received assignment (shape only; ids are opaque strings). */
export function isAssignment(x: unknown, partitions: number): x is Assignment {
  if (x === null || typeof x !== 'object') return false;
  const t = x as Record<string, unknown>;
  const lists = (v: unknown): boolean =>
    Array.isArray(v) && v.length === partitions && v.every((l) => Array.isArray(l) && l.length <= 16 && l.every((m) => typeof m === 'string' && m.length > 0 && m.length <= 256));
  return lists(t.owners) && lists(t.pending);
}

function indexes(v: unknown, partitions: number, max: number): boolean {
  return Array.isArray(v) && v.length === partitions && v.every((e) => Number.isSafeInteger(e) && e >= 0 && e <= max);
}
