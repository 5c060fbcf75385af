/**
 * A Map whose entries come and go at a high rate (about one per write in flight), kept in the young
 * generation of V8's heap (native-notes.md, "Maps that churn, and the scavenges they slowed").
 *
 * V8 rehashes a Map's hash table into a new table of the same generation as the old one. With
 * entries added and deleted all the time, a table fills with deleted entries and is replaced every
 * `capacity` inserts or so. Once a long-lived Map's table has been promoted to the old generation,
 * every replacement is allocated there too, and each replaced table is old garbage that still
 * points at the entries that were live when it was replaced. Until the next full collection those
 * pointers are roots for every scavenge: the young entries they name (and all they reference)
 * survive and are promoted, and the promoted ones hold more young objects in turn. On a data member
 * under replicated sets this kept ~10 % of all allocated bytes alive through each scavenge (1.4 MB
 * of 13 MB; the pre-Raft code, without these maps: 12 KB), and a scavenge took 4.5 ms instead of
 * 1.2 ms.
 *
 * So the Map is swapped for a fresh copy (its table young again) every RENEW inserts, or every four
 * times its size when it is larger: the copy costs O(size) per at least 4 × size inserts.
 * Iteration is over the Map of the moment: a `set` while iterating may swap it (then the iterator
 * goes on over the old one); callers here do not set while iterating.
 */
const RENEW = 1024;

/** Whether a Map or Set of `size` entries, `inserts` inserts after its last copy, is due for a fresh one. */
function due(inserts: number, size: number): boolean {
  return inserts >= RENEW && inserts >= 4 * size;
}

export class ChurnMap<K, V> {
  private m = new Map<K, V>();
  private inserts = 0;

  get size(): number {
    return this.m.size;
  }

  get(k: K): V | undefined {
    return this.m.get(k);
  }

  has(k: K): boolean {
    return this.m.has(k);
  }

  set(k: K, v: V): this {
    if (due(++this.inserts, this.m.size)) {
      this.inserts = 0;
      this.m = new Map(this.m);
    }
    this.m.set(k, v);
    return this;
  }

  delete(k: K): boolean {
    return this.m.delete(k);
  }

  /** A new empty Map: clear() on the old one would allocate its next table in the old one's generation. */
  clear(): void {
    this.m = new Map();
    this.inserts = 0;
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.m.entries();
  }

  values(): IterableIterator<V> {
    return this.m.values();
  }
}

/** ChurnMap's Set: members added and removed at a high rate, the table kept young the same way. */
export class ChurnSet<T> {
  private s = new Set<T>();
  private inserts = 0;

  get size(): number {
    return this.s.size;
  }

  has(x: T): boolean {
    return this.s.has(x);
  }

  add(x: T): this {
    if (due(++this.inserts, this.s.size)) {
      this.inserts = 0;
      this.s = new Set(this.s);
    }
    this.s.add(x);
    return this;
  }

  delete(x: T): boolean {
    return this.s.delete(x);
  }

  /** A new empty Set: clear() on the old one would allocate its next table in the old one's generation. */
  clear(): void {
    this.s = new Set();
    this.inserts = 0;
  }
}
