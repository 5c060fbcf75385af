/**
 * Exactly-once retries of writes (set, delete, increment, compute, setIfAbsent, compareAndSet;
 * not setMany): the caller gives each operation a request id and reuses it on every retry; the
 * primary remembers, per partition, the result of each request id it applied, and ships that
 * record to every copy with the key's new state (and in partition snapshots), so a primary that
 * takes over after a failover answers a retry with the first result instead of applying it again.
 *
 * Records live for DEDUPE_TTL_MS (far longer than a caller's retry deadline, RETRY_DEADLINE_MS)
 * and at most DEDUPE_MAX_PER_PARTITION per partition (the oldest go first): memory is bounded.
 */
import { ChurnMap } from '../churn.js';

export const DEDUPE_TTL_MS = 120_000;
export const DEDUPE_MAX_PER_PARTITION = 4096;
/** Longest request id accepted from a peer. */
export const MAX_REQUEST_ID = 64;

/** One record as shipped in replicated writes and snapshots: [request id, result, wall-clock ms when applied]. */
export type DedupeEntry = [string, unknown, number];

export function isRequestId(x: unknown): x is string {
  return typeof x === 'string' && x.length > 0 && x.length <= MAX_REQUEST_ID;
}

/**
 * One client's records in a partition. A client numbers its requests in order, so the records of
 * one partition usually arrive in increasing order too: those are kept in a ring (`qSeq`/`qSlot`,
 * oldest first, the order the partition's own ring evicts them in), found by a range check and a
 * binary search, added and evicted at its ends — no hash table that churns with every record. A
 * record that arrives out of order (a retry, a hand-over, concurrent routes) goes to `extra`.
 */
class Client {
  /**
   * The in-order records as pairs in one array (a record's two numbers share a cache line: with
   * ~1M records a member reads them from cold memory): [2i] the counter, increasing from the
   * oldest (at qHead); [2i+1] its slot in the partition's ring, -1 when forgotten (expired) but
   * not yet at the front.
   */
  q: Float64Array = new Float64Array(8);
  qHead = 0;
  qLen = 0;
  /**
   * The counters of the oldest and the newest in-order record (when qLen > 0), kept here as well:
   * the common look-up, a new counter above every record, then reads this object only, not the
   * ring's memory (a primary checks every write's id before applying it).
   */
  lo = 0;
  hi = 0;
  /** Records that arrived out of order: counter → slot. */
  extra: Map<number, number> | undefined;

  constructor(readonly prefix: string) {}

  /** The slot of counter `seq`, or -1. */
  find(seq: number): number {
    if (this.qLen > 0 && seq >= this.lo && seq <= this.hi) {
      const i = this.search(seq);
      if (i >= 0 && this.q[(i << 1) + 1] >= 0) return this.q[(i << 1) + 1];
    }
    const x = this.extra?.get(seq);
    return x === undefined ? -1 : x;
  }

  /** The ring index of counter `seq` among the in-order records, or -1. */
  private search(seq: number): number {
    const q = this.q;
    const mask = this.mask();
    let lo = 0;
    let hi = this.qLen - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const i = (this.qHead + mid) & mask;
      const v = q[i << 1];
      if (v === seq) return i;
      if (v < seq) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** The ring's index mask: it holds q.length / 2 pairs, a power of two. */
  private mask(): number {
    return (this.q.length >> 1) - 1;
  }

  /** Whether counter `seq` is newer than every in-order record: `add` appends it (`find` need not search). */
  isNext(seq: number): boolean {
    return this.qLen === 0 || seq > this.hi;
  }

  /** Records counter `seq` (not held: find gave -1) at `slot`. */
  add(seq: number, slot: number): void {
    const n = this.qLen;
    if (!this.isNext(seq)) {
      (this.extra ??= new Map()).set(seq, slot);
      return;
    }
    if (n === this.q.length >> 1) this.grow();
    const i = ((this.qHead + n) & this.mask()) << 1;
    this.q[i] = seq;
    this.q[i + 1] = slot;
    this.qLen = n + 1;
    if (n === 0) this.lo = seq;
    this.hi = seq;
  }

  private grow(): void {
    const n = this.qLen;
    const cap = this.q.length >> 1;
    const q = new Float64Array(cap * 4);
    for (let k = 0; k < n; k++) {
      const i = ((this.qHead + k) & (cap - 1)) << 1;
      q[k << 1] = this.q[i];
      q[(k << 1) + 1] = this.q[i + 1];
    }
    this.q = q;
    this.qHead = 0;
  }

  /** Forgets the record of counter `seq` at `slot` (if it is still that one's); true when the client holds none now. */
  remove(seq: number, slot: number): boolean {
    if (this.qLen > 0 && this.q[(this.qHead << 1) + 1] === slot) {
      this.shift();
      // forgotten records behind it go too: the front is always a live one
      while (this.qLen > 0 && this.q[(this.qHead << 1) + 1] < 0) this.shift();
    } else if (this.extra !== undefined && this.extra.get(seq) === slot) {
      this.extra.delete(seq);
    } else {
      const i = this.search(seq);
      if (i >= 0 && this.q[(i << 1) + 1] === slot) this.q[(i << 1) + 1] = -1; // not at the front: marked, dropped once it is
    }
    return this.qLen === 0 && (this.extra === undefined || this.extra.size === 0);
  }

  private shift(): void {
    this.qHead = (this.qHead + 1) & this.mask();
    if (--this.qLen > 0) this.lo = this.q[this.qHead << 1];
  }
}

/**
 * The sequence number of a request id of the form `<client>.<base-36 counter>` (routed-map.ts
 * makes them so), when the counter is canonical (lowercase, no leading zero, at most 10 digits:
 * exact in a double, and `seq.toString(36)` gives the same text back); else -1.
 */
function seqOf(id: string, from: number): number {
  const n = id.length - from;
  if (n < 1 || n > 10 || (n > 1 && id.charCodeAt(from) === 48)) return -1;
  let v = 0;
  for (let i = from; i < id.length; i++) {
    const c = id.charCodeAt(i);
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 122 ? c - 87 : -1;
    if (d < 0) return -1;
    v = v * 36 + d;
  }
  return v;
}

/**
 * How an id splits: `prefix` (the client, up to its last '.') and `seq` (its counter), or seq -1
 * (kept whole). The prefix of the last id split is reused when the next id starts with it, so the
 * common case — one client's ids, one after the other — slices and hashes no new string.
 */
class Split {
  prefix = '';
  seq = -1;
  private last = '\u0000';
  /** The id split last: a write's `has` then `put` (and put's `add`) split it once. */
  private input: string | undefined;

  of(id: string): void {
    if (id === this.input) return;
    this.input = id;
    const l = this.last;
    const n = l.length;
    if (id.length > n + 1 && id.charCodeAt(n) === 46 && id.startsWith(l)) {
      const s = seqOf(id, n + 1);
      // a counter of digits and letters has no '.': the last '.' of id is the one after the prefix
      if (s >= 0) {
        this.prefix = l;
        this.seq = s;
        return;
      }
    }
    const dot = id.lastIndexOf('.');
    const s = dot < 0 ? -1 : seqOf(id, dot + 1);
    this.seq = s;
    if (s >= 0) this.prefix = this.last = id.slice(0, dot);
  }
}

/**
 * One partition's records, in a ring of slots in insertion order (the oldest evicted first once
 * DEDUPE_MAX_PER_PARTITION are held). A record of an id `<client>.<counter>` is a number in a
 * typed array and an entry of its Client: no object per record, so records that live for
 * minutes leave little for the garbage collector (bench/dedupe-memory.mjs). Other ids (a peer
 * may send any short string) are kept whole.
 */
class Part {
  /** Records held; slots [0, n) are used. */
  n = 0;
  /** Once full: the slot of the oldest record. */
  head = 0;
  /**
   * Per slot, two numbers side by side (one cache line for both): [2·slot] the counter of a
   * `<client>.<counter>` id, [2·slot+1] the wall-clock ms when the record was put.
   */
  sa: Float64Array = new Float64Array(32);
  /** The client of each slot whose id is `<client>.<counter>`. */
  owners: Array<Client | undefined> = [];
  /** Whole ids, for the other slots. */
  strs: Array<string | undefined> = [];
  /** Results by slot (a set records none). */
  results: unknown[] | undefined;
  /** Client prefix → its records. */
  readonly clients = new Map<string, Client>();
  /** Whole id → slot. */
  readonly whole = new Map<string, number>();
  /** The client last looked up (most ids of a partition come from one client in a row). */
  private lastClient: Client | undefined;

  constructor(private readonly split: Split) {}

  private client(prefix: string): Client | undefined {
    const c = this.lastClient;
    if (c !== undefined && c.prefix === prefix) return c;
    const d = this.clients.get(prefix);
    if (d !== undefined) this.lastClient = d;
    return d;
  }

  /** The slot of `id`, or -1. */
  find(id: string): number {
    const sp = this.split;
    sp.of(id);
    if (sp.seq < 0) {
      const slot = this.whole.get(id);
      return slot === undefined ? -1 : slot;
    }
    const c = this.client(sp.prefix);
    return c === undefined ? -1 : c.find(sp.seq);
  }

  /** A new slot for `id` (not held: find gave -1), evicting the oldest record when full. */
  add(id: string): number {
    let slot: number;
    if (this.n < DEDUPE_MAX_PER_PARTITION) {
      slot = this.n++;
      if (slot << 1 === this.sa.length) this.sa = grow(this.sa);
    } else {
      slot = this.head;
      this.head = (slot + 1) % DEDUPE_MAX_PER_PARTITION;
      this.unlink(slot);
    }
    const sp = this.split;
    sp.of(id);
    const seq = sp.seq;
    if (seq < 0) {
      this.whole.set(id, slot);
      this.owners[slot] = undefined;
      this.strs[slot] = id;
    } else {
      const prefix = sp.prefix;
      let c = this.client(prefix);
      if (c === undefined) {
        this.clients.set(prefix, (c = new Client(prefix)));
        this.lastClient = c;
      }
      c.add(seq, slot);
      this.owners[slot] = c;
      this.sa[slot << 1] = seq;
      if (this.strs.length > slot) this.strs[slot] = undefined;
    }
    if (this.results !== undefined && this.results.length > slot) this.results[slot] = undefined;
    return slot;
  }

  /** Makes the record of `slot` found by no id (an id put again since has a slot of its own: left alone). */
  unlink(slot: number): void {
    const s = this.strs[slot];
    if (s !== undefined) {
      if (this.whole.get(s) === slot) this.whole.delete(s);
      return;
    }
    const c = this.owners[slot];
    if (c === undefined) return;
    this.owners[slot] = undefined;
    if (c.remove(this.sa[slot << 1], slot) && this.clients.get(c.prefix) === c) {
      this.clients.delete(c.prefix);
      if (this.lastClient === c) this.lastClient = undefined;
    }
  }

  /** When the record of a used slot was put (wall-clock ms). */
  atOf(slot: number): number {
    return this.sa[(slot << 1) + 1];
  }

  /** Sets when the record of `slot` was put; -Infinity: forgotten (expired), skipped by `entries`. */
  setAt(slot: number, at: number): void {
    this.sa[(slot << 1) + 1] = at;
  }

  /** The id of a used slot. */
  idAt(slot: number): string {
    const s = this.strs[slot];
    return s !== undefined ? s : `${this.owners[slot]!.prefix}.${this.sa[slot << 1].toString(36)}`;
  }
}

function grow(a: Float64Array): Float64Array {
  const b = new Float64Array(Math.min(a.length * 2, 2 * DEDUPE_MAX_PER_PARTITION));
  b.set(a);
  return b;
}

export class Dedupe {
  private readonly parts: Array<Part | undefined>;
  /** Requests being applied now on this primary: a retry that arrives meanwhile waits for the first. */
  private readonly running = new ChurnMap<string, Promise<unknown>>();
  /** Splits ids into client and counter, remembering the last client's prefix (shared by every partition). */
  private readonly split = new Split();

  constructor(partitions: number) {
    this.parts = new Array(partitions).fill(undefined);
  }

  /**
   * The id last looked up and not found, and its partition: a write checks its id (`has`) before
   * it records it (`put`), and with ~1M records a member looks in cold memory each time (~1 µs).
   */
  private missed: string | undefined;
  private missedIn: Part | undefined;

  /** The live slot of request `id` in partition part `pt`, or -1 (an expired record is forgotten). */
  private live(pt: Part | undefined, id: string): number {
    if (pt === undefined) return -1;
    const slot = pt.find(id);
    if (slot < 0) {
      this.missed = id;
      this.missedIn = pt;
      return -1;
    }
    if (Date.now() - pt.atOf(slot) > DEDUPE_TTL_MS) {
      pt.unlink(slot); // expired: stays in the ring until its turn, found by no id
      pt.setAt(slot, -Infinity);
      return -1;
    }
    return slot;
  }

  /** The recorded result of request `id` on partition p, or undefined. */
  get(p: number, id: string): { result: unknown } | undefined {
    const pt = this.parts[p];
    const slot = this.live(pt, id);
    return slot < 0 ? undefined : { result: pt!.results?.[slot] };
  }

  /** Whether request `id` was applied on partition p (and its record still lives). */
  has(p: number, id: string): boolean {
    return this.live(this.parts[p], id) >= 0;
  }

  put(p: number, id: string, result: unknown, at = Date.now()): void {
    let pt = this.parts[p];
    if (pt === undefined) this.parts[p] = pt = new Part(this.split);
    let slot = id === this.missed && pt === this.missedIn ? -1 : pt.find(id);
    this.missed = undefined;
    // a record again (a retry's) keeps its place in the eviction order
    if (slot < 0) slot = pt.add(id);
    pt.setAt(slot, at);
    if (result !== undefined) (pt.results ??= [])[slot] = result;
    else if (pt.results !== undefined && pt.results.length > slot) pt.results[slot] = undefined;
  }

  /**
   * Runs `apply` once per request id: a second call with the same id while the first runs waits
   * for it and gets its result; a later one gets the recorded result without running `apply`.
   */
  once<T>(p: number, id: string, apply: () => Promise<T>, again: (result: T) => Promise<unknown> | undefined): Promise<T> {
    const done = this.get(p, id);
    if (done !== undefined) {
      // the copies may have missed the record if the first attempt failed while replicating
      const r = again(done.result as T);
      return r === undefined ? Promise.resolve(done.result as T) : r.then(() => done.result as T);
    }
    const key = `${p}:${id}`;
    const run = this.running.get(key);
    if (run !== undefined) return run as Promise<T>;
    const pr = apply().finally(() => this.running.delete(key));
    this.running.set(key, pr);
    return pr;
  }

  /** The live records of p, for a snapshot, oldest first. */
  entries(p: number): DedupeEntry[] {
    const pt = this.parts[p];
    if (pt === undefined) return [];
    const now = Date.now();
    const out: DedupeEntry[] = [];
    const full = pt.n === DEDUPE_MAX_PER_PARTITION;
    for (let i = 0; i < pt.n; i++) {
      const slot = full ? (pt.head + i) % DEDUPE_MAX_PER_PARTITION : i;
      const at = pt.atOf(slot);
      if (now - at <= DEDUPE_TTL_MS) out.push([pt.idAt(slot), pt.results?.[slot], at]);
    }
    return out;
  }

  clear(p: number): void {
    this.parts[p] = undefined;
    this.missed = undefined;
  }

  clearAll(): void {
    this.parts.fill(undefined);
    this.missed = undefined;
  }
}

/** Validates records received in a snapshot; undefined when malformed. */
export function parseDedupeEntries(x: unknown): DedupeEntry[] | undefined {
  if (x === undefined) return [];
  if (!Array.isArray(x) || x.length > DEDUPE_MAX_PER_PARTITION) return undefined;
  for (const e of x) if (!Array.isArray(e) || e.length !== 3 || !isRequestId(e[0]) || !Number.isFinite(e[2])) return undefined;
  return x as DedupeEntry[];
}
