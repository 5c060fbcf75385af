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

export const DEDUPE_TTL_MS = 120_000;
export const DEDUPE_MAX_PER_PARTITION = 4096;
/** Longest request id accepted from a peer. */
export const MAX_REQUEST_ID = 64;

interface Done {
  readonly result: unknown;
  readonly at: number;
}

/** A record: its Done, or just the time applied when the result is undefined (a set: no object per write). */
type Rec = Done | number;

/** One record as shipped in replicated writes and snapshots: [request id, result, wall-clock ms when applied]. */
export type DedupeEntry = [string, unknown, number];

export function isRequestId(x: unknown): x is string {
  return typeof x === 'string' && x.length > 0 && x.length <= MAX_REQUEST_ID;
}

export class Dedupe {
  private readonly parts: Array<Map<string, Rec> | undefined>;
  /** Per partition, the ids of its records in insertion order (a ring once full). */
  private readonly rings: Array<{ ids: string[]; head: number } | undefined>;
  /** Requests being applied now on this primary: a retry that arrives meanwhile waits for the first. */
  private readonly running = new Map<string, Promise<unknown>>();

  constructor(partitions: number) {
    this.parts = new Array(partitions).fill(undefined);
    this.rings = new Array(partitions).fill(undefined);
  }

  /** The recorded result of request `id` on partition p, or undefined. */
  get(p: number, id: string): { result: unknown } | undefined {
    const m = this.parts[p];
    const d = m?.get(id);
    if (d === undefined) return undefined;
    if (Date.now() - (typeof d === 'number' ? d : d.at) > DEDUPE_TTL_MS) {
      m!.delete(id);
      return undefined;
    }
    return typeof d === 'number' ? { result: undefined } : d;
  }

  /** Whether request `id` was applied on partition p (and its record still lives). */
  has(p: number, id: string): boolean {
    return this.get(p, id) !== undefined;
  }

  put(p: number, id: string, result: unknown, at = Date.now()): void {
    let m = this.parts[p];
    if (m === undefined) this.parts[p] = m = new Map();
    const rec: Rec = result === undefined ? at : { result, at };
    if (m.has(id)) {
      m.set(id, rec); // a record again (a retry's): keeps its place in the eviction order
      return;
    }
    // the oldest record goes when the partition is full: a ring of ids in insertion order (taking
    // the Map's first key instead costs a scan over every deleted slot before it, O(capacity))
    let ring = this.rings[p];
    if (ring === undefined) this.rings[p] = ring = { ids: [], head: 0 };
    if (ring.ids.length < DEDUPE_MAX_PER_PARTITION) ring.ids.push(id);
    else {
      m.delete(ring.ids[ring.head]);
      ring.ids[ring.head] = id;
      ring.head = (ring.head + 1) % DEDUPE_MAX_PER_PARTITION;
    }
    m.set(id, rec);
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

  /** The live records of p, for a snapshot. */
  entries(p: number): DedupeEntry[] {
    const m = this.parts[p];
    if (m === undefined) return [];
    const now = Date.now();
    const out: DedupeEntry[] = [];
    for (const [id, d] of m) {
      const at = typeof d === 'number' ? d : d.at;
      if (now - at <= DEDUPE_TTL_MS) out.push([id, typeof d === 'number' ? undefined : d.result, at]);
    }
    return out;
  }

  clear(p: number): void {
    this.parts[p] = undefined;
    this.rings[p] = undefined;
  }

  clearAll(): void {
    this.parts.fill(undefined);
    this.rings.fill(undefined);
  }
}

/** Validates records received in a snapshot; undefined when malformed. */
export function parseDedupeEntries(x: unknown): DedupeEntry[] | undefined {
  if (x === undefined) return [];
  if (!Array.isArray(x) || x.length > DEDUPE_MAX_PER_PARTITION) return undefined;
  for (const e of x) if (!Array.isArray(e) || e.length !== 3 || !isRequestId(e[0]) || !Number.isFinite(e[2])) return undefined;
  return x as DedupeEntry[];
}
