/**
 * The cluster's partition table: for every partition, its owners (owners[p][0] the primary, the
 * rest synchronous backups) and the members still receiving a copy (pending[p]). Computed by the
 * coordinator only (the oldest live data member), published with a version; members apply only a
 * newer version (ties broken by the author's rank, see `newer`).
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
  version: number;
  /** Member id of the coordinator that computed this version. */
  author: string;
  /** owners[p] = [primary, ...backups]; empty when no data member is alive. */
  owners: string[][];
  /** pending[p] = members receiving a copy of p (they get every replicated write meanwhile). */
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

/** The first table of a cluster: every partition on its first data member. */
export function initialTable(partitions: number, author: string, dataMembers: readonly string[], backups: number): PartitionTable {
  return { version: 1, author, owners: assign(partitions, dataMembers, backups), pending: Array.from({ length: partitions }, () => []) };
}

/**
 * The next table for `live` data members, given the current one and which pending copies have
 * been reported complete (`synced(p)`). Returns the current table itself when nothing changes.
 */
export function plan(cur: PartitionTable, author: string, live: readonly string[], backups: number, synced: (p: number) => ReadonlySet<string>): PartitionTable {
  const P = cur.owners.length;
  const alive = new Set(live);
  const target = assign(P, live, backups);
  const owners: string[][] = [];
  const pending: string[][] = [];
  let changed = false;
  for (let p = 0; p < P; p++) {
    const held = cur.owners[p].filter((m) => alive.has(m));
    const done = synced(p);
    const have = new Set(held);
    for (const m of cur.pending[p]) if (alive.has(m) && done.has(m)) have.add(m);
    const t = target[p];
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
  if (!changed && cur.author === author) return cur;
  return { version: cur.version + 1, author, owners, pending };
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

/** Partitions that still have a copy in flight. */
export function migrating(t: PartitionTable | undefined): number {
  return t === undefined ? 0 : t.pending.filter((l) => l.length > 0).length;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Whether table `t` should replace `cur`: a higher version, or the same version from an author
 * that ranks before the current one (two coordinators for a moment after a membership change:
 * `rank` orders members as the coordinator election does, lower first).
 */
export function newer(t: PartitionTable, cur: PartitionTable | undefined, rank: (id: string) => number): boolean {
  if (cur === undefined) return true;
  if (t.version !== cur.version) return t.version > cur.version;
  return t.author !== cur.author && rank(t.author) < rank(cur.author);
}

/** Validates a table received from a peer (shape only; ids are opaque strings). */
export function isTable(x: unknown, partitions: number): x is PartitionTable {
  if (x === null || typeof x !== 'object') return false;
  const t = x as Record<string, unknown>;
  if (!Number.isSafeInteger(t.version) || (t.version as number) < 1 || typeof t.author !== 'string') return false;
  const lists = (v: unknown): boolean =>
    Array.isArray(v) && v.length === partitions && v.every((l) => Array.isArray(l) && l.length <= 16 && l.every((m) => typeof m === 'string' && m.length <= 256));
  return lists(t.owners) && lists(t.pending);
}
