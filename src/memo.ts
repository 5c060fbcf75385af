/**
 * ReadMemo: one thread's memo of the keys of one map it read last — where each entry is in shared
 * memory, its version, and the decoded value — so that a repeated read returns the decoded value
 * without hashing the key, probing the table or decoding again (native-notes.md, "Life of a get",
 * step 0). A memo entry is served only while it is provably current: while the partition's
 * seqlock (P_SEQ) still holds the value the entry was last validated at, or, once P_SEQ moved,
 * after the entry's table slot and record version were re-checked inside a seqlock window. It is
 * never stale; it can only be absent.
 *
 * What it must never do is cost more than it saves. The previous memo (a Map of one object per
 * key, FIFO queue of keys) made an object, a Map insert, a queue entry and an eviction on every
 * read of a key not held: any scan over more keys than it holds paid all of that for nothing, on
 * every read (issue 12: 25x slower at 50,000 keys round-robin than at 10,000). Here:
 *
 * - **Storage without per-read allocation.** Arrays (typed arrays for
 *   the numbers, two plain arrays for keys and values; doubled when full, up to `capacity`) and
 *   one `Map<string, number>` from key to
 *   entry index. A hit writes one byte (the reference bit); a miss that is not admitted writes two
 *   typed-array slots; only an admitted miss touches the Map.
 * - **CLOCK eviction, O(1) amortized.** A hand sweeps the entries: an entry read since the hand
 *   last passed has its reference bit cleared and survives; the first one without it goes. Hot
 *   entries stay however old they are; FIFO dropped them in creation order.
 * - **Scan-resistant admission.** While the memo has room (in entries and bytes) a small value is
 *   admitted on its first read: nothing has to be evicted for it. Once full — and for any value
 *   over `admitValue` bytes — a key is admitted only on a read that comes *soon enough* after a
 *   previous one: a doorkeeper (4-way set-associative table of slot hashes) records the read and
 *   the value of an admission clock, which advances by one per admission candidate (by more for
 *   large values, in proportion to the bytes they would hold). A later read admits the key if less
 *   than `capacity` went by on that clock: if an entry made at the first read would probably still
 *   be held. A round-robin scan over more keys than the memo holds, or uniform random reads over
 *   a key space much larger than it, therefore never admit, and pay two typed-array probes per
 *   read instead of an insert, an eviction and garbage. Collisions in the doorkeeper only cost
 *   admissions, never correctness.
 *
 * - **A memo that does not pay is skipped.** Even unadmitted, a lookup costs a Map miss and a
 *   doorkeeper probe (two cache misses on a large key space). Every `window` lookups the memo
 *   judges itself: when it was full through the window and fewer than 1 lookup in 8 hit, reads
 *   skip it entirely (one counter decrement) for the next 7 windows, then it is judged again.
 *   Skipping is always safe: an entry not looked at is never served, and one looked at later is
 *   validated as always.
 *
 * One instance per (map, thread); not shared, not thread-safe (a thread never interleaves two
 * reads between `lookup` and `remember`: reads do not await).
 */
import { SEQ_BUSY, type ShardStore } from './storage/store.js';

/** Returned by `get` when the memo holds nothing current for the key. */
export const MEMO_MISS: unique symbol = Symbol('shardgrid.memoMiss');

export interface ReadMemoOptions {
  /** Entries held at most. */
  capacity: number;
  /** Bytes of values plus keys held at most. */
  maxBytes: number;
  /** Values longer than this are never memoized. */
  maxValue: number;
  /** Values longer than this are admitted only on a second read that comes soon enough. */
  admitValue: number;
  /**
   * Lookups per judgement of the memo's worth (0: never bypass). After a window of this many
   * lookups that began and ended with the memo full and had fewer than 1 hit in BYPASS_HIT_RATIO,
   * the next BYPASS_WINDOWS windows' reads skip the memo altogether (see the file comment).
   */
  window: number;
}

/** Defaults per map and thread (the previous memo's bounds). */
export const MEMO_DEFAULTS: Readonly<ReadMemoOptions> = Object.freeze({
  capacity: 16_384,
  maxBytes: 16 * 1024 * 1024,
  maxValue: 64 * 1024,
  admitValue: 1024,
  window: 4096,
});

/** Doorkeeper: slots per entry of capacity, in sets of DOOR_WAYS. */
const DOOR_PER_ENTRY = 2;
const DOOR_WAYS = 4;
/** Bypass: a window with fewer than 1 hit in this many lookups is not worth its lookups... */
const BYPASS_HIT_RATIO = 8;
/** ...and is followed by this many windows that skip the memo (then one more judged window). */
const BYPASS_WINDOWS = 7;
/** Entries allocated at first; doubled when full, up to capacity. */
const INITIAL_ENTRIES = 256;

function grown<T extends Int32Array | Uint32Array | Float64Array | Uint8Array>(a: T, n: number): T {
  const b = new (a.constructor as new (n: number) => T)(n);
  b.set(a);
  return b;
}

export class ReadMemo {
  readonly capacity: number;
  readonly maxBytes: number;
  readonly maxValue: number;
  readonly admitValue: number;
  readonly window: number;
  // Worth of the memo (bypass): lookups and hits in the current window, whether it began full,
  // and how many more lookups skip the memo.
  private looks = 0;
  private hits = 0;
  private fullAtStart = false;
  private skip = 0;
  /** True when the last get skipped the memo: the remember that follows skips it too. */
  private bypassed = false;
  /** Key → entry index. */
  private readonly index = new Map<string, number>();
  // Entry fields, by entry index (see native-notes.md "Life of a get" for what each one proves).
  // Allocated for INITIAL_ENTRIES and doubled when full, up to capacity (a map read by few keys
  // on a thread costs a few KiB, not the ~1 MiB of a full memo).
  private keys: Array<string | null>;
  private values: unknown[];
  private part: Int32Array;
  private tref: Uint32Array;
  private slot: Int32Array;
  private off: Uint32Array;
  private ver: Uint32Array;
  private exp: Float64Array;
  /** P_SEQ at the last validation: always an even value readBegin returned, never SEQ_BUSY. */
  private seq: Int32Array;
  /** LRU clock value of the entry's last access-map stamp: stamp again only when it ticked. */
  private tick: Int32Array;
  /** Bytes this entry counts against maxBytes (value and key). */
  private cost: Int32Array;
  /** CLOCK reference bits: 1 when read since the hand last passed. */
  private refd: Uint8Array;
  /** Entry indexes not in use (a stack), and how many. */
  private free: Int32Array;
  private nfree = 0;
  private hand = 0;
  private bytes = 0;
  // Doorkeeper (admission), made on first use: [slot hash, admission clock] pairs of the last
  // unadmitted reads, in sets of DOOR_WAYS (clock 0: empty way). The clock is 32 bits and wraps.
  private door: Uint32Array | null = null;
  private admitClock = 1;
  /** Admission clock units per byte of an admitted value (capacity / maxBytes). */
  private readonly unitsPerByte: number;
  /** Entry index `get` found for its key (-1: none): `remember` and `forget` of the same key use it. */
  last = -1;

  constructor(options: Partial<ReadMemoOptions> = {}) {
    const o = { ...MEMO_DEFAULTS, ...options };
    const n = (this.capacity = o.capacity);
    this.maxBytes = o.maxBytes;
    this.maxValue = o.maxValue;
    this.admitValue = o.admitValue;
    this.window = o.window;
    const m = Math.min(n, INITIAL_ENTRIES);
    this.keys = new Array<string | null>(m).fill(null);
    this.values = new Array<unknown>(m).fill(undefined);
    this.part = new Int32Array(m);
    this.tref = new Uint32Array(m);
    this.slot = new Int32Array(m);
    this.off = new Uint32Array(m);
    this.ver = new Uint32Array(m);
    this.exp = new Float64Array(m);
    this.seq = new Int32Array(m);
    this.tick = new Int32Array(m);
    this.cost = new Int32Array(m);
    this.refd = new Uint8Array(m);
    this.free = new Int32Array(m);
    this.addFree(0, m);
    this.unitsPerByte = n / o.maxBytes;
  }

  /** Entries held. */
  get size(): number {
    return this.keys.length - this.nfree;
  }

  /** Bytes of values and keys held. */
  get heldBytes(): number {
    return this.bytes;
  }

  has(key: string): boolean {
    return this.index.has(key);
  }

  /** [key, { value }] of every entry held (tests and diagnostics; allocates). */
  *[Symbol.iterator](): IterableIterator<[string, { value: unknown }]> {
    for (const [k, i] of this.index) yield [k, { value: this.values[i] }];
  }

  /**
   * The memoized value of `key` when it is current; MEMO_MISS otherwise. Leaves the key's entry
   * index (or -1) in `last` for a following remember/forget of the same key.
   */
  get(key: string, st: ShardStore): unknown {
    if (this.skip !== 0) {
      this.skip--;
      this.last = -1;
      this.bypassed = true;
      return MEMO_MISS;
    }
    this.bypassed = false;
    if (++this.looks === this.window) this.judge();
    const i = this.index.get(key);
    if (i === undefined) {
      this.last = -1;
      return MEMO_MISS;
    }
    this.last = i;
    const p = this.part[i];
    const s = st.readBegin(p);
    const exp = this.exp[i];
    if (exp !== 0 && exp <= Date.now()) return MEMO_MISS;
    if (s === this.seq[i]) {
      // Nothing in p was written since the entry was last validated (s is even: a writer makes it
      // SEQ_BUSY). Stamp the access map once per LRU tick, not on every hit.
      if (st.clock() !== this.tick[i]) this.tick[i] = st.touch(this.off[i]);
      this.refd[i] = 1;
      this.hits++;
      return this.values[i];
    }
    const off = this.off[i];
    if (s === SEQ_BUSY || !st.slotHolds(p, this.tref[i], this.slot[i], off) || st.versionOf(off) !== this.ver[i]) return MEMO_MISS;
    const tick = st.touch(off);
    if (!st.readValid(p, s)) return MEMO_MISS;
    this.seq[i] = s;
    this.tick[i] = tick;
    this.refd[i] = 1;
    this.hits++;
    return this.values[i];
  }

  /** Whether the memo is full (entries or bytes) for the purpose of judging its worth. */
  private get full(): boolean {
    return this.size >= this.capacity || this.bytes >= this.maxBytes - (this.maxBytes >>> 4);
  }

  /**
   * End of a window of lookups: when the memo was full throughout and was hit by fewer than one
   * lookup in BYPASS_HIT_RATIO, its lookups (a Map miss and a doorkeeper probe each) cost more
   * than its hits save: skip it for the next BYPASS_WINDOWS windows, then judge again.
   */
  private judge(): void {
    const full = this.full;
    if (this.fullAtStart && full && this.hits * BYPASS_HIT_RATIO < this.looks) this.skip = this.window * BYPASS_WINDOWS;
    this.looks = 0;
    this.hits = 0;
    this.fullAtStart = full;
  }

  /** True while reads skip the memo (it was judged not worth its lookups; see judge). */
  get bypassing(): boolean {
    return this.skip !== 0;
  }

  /**
   * Records the read of `key` that just validated: partition p, table ref, slot, record offset,
   * version, expiry, the P_SEQ of its window and its access stamp, the decoded value and its
   * length in bytes. `ksh` is the key's slot hash (the doorkeeper's identity for it). Call right
   * after get(key) missed. Updates the key's entry when it has one; otherwise admits it or not.
   */
  remember(key: string, ksh: number, p: number, tref: number, slot: number, off: number, ver: number, exp: number, seq: number, tick: number, value: unknown, len: number): void {
    if (this.bypassed) return;
    let i = this.last;
    if (len > this.maxValue) {
      if (i >= 0) this.dropAt(i);
      return;
    }
    const cost = len + key.length;
    if (i >= 0) {
      this.bytes += cost - this.cost[i];
    } else {
      if (!this.admit(ksh, len, cost)) return;
      i = this.take();
      this.keys[i] = key;
      this.index.set(key, i);
      this.bytes += cost;
    }
    this.part[i] = p;
    this.tref[i] = tref;
    this.slot[i] = slot;
    this.off[i] = off;
    this.ver[i] = ver;
    this.exp[i] = exp;
    this.seq[i] = seq;
    this.tick[i] = tick;
    this.cost[i] = cost;
    this.values[i] = value;
    this.refd[i] = 0; // the hand takes an entry never read again first
    this.last = i;
    // an update to a larger value, or an admission, may have passed the byte bound
    while (this.bytes > this.maxBytes && this.evictOne(i));
  }

  /** Drops the memo of `key` (the key is gone, or its value is not memoized any more). */
  forget(key: string): void {
    const i = this.last >= 0 && this.keys[this.last] === key ? this.last : (this.index.get(key) ?? -1);
    if (i >= 0) this.dropAt(i);
  }

  /** Drops every entry (the doorkeeper keeps its history). */
  clear(): void {
    for (const i of this.index.values()) this.dropAt(i);
  }

  /**
   * Whether a key not held is admitted now. Small values are while the memo has room; otherwise a
   * key is admitted on a read that comes less than `capacity` admission-clock units after its
   * previous one (see the file comment).
   */
  private admit(ksh: number, len: number, cost: number): boolean {
    if (len <= this.admitValue && this.size < this.capacity && this.bytes + cost <= this.maxBytes) return true;
    let d = this.door;
    if (d === null) {
      let sets = 1;
      while (sets * DOOR_WAYS < this.capacity * DOOR_PER_ENTRY) sets *= 2;
      d = this.door = new Uint32Array(sets * DOOR_WAYS * 2);
    }
    // a set's 4 ways are [hash, clock] pairs in 32 consecutive bytes: one cache line per probe
    const b = (ksh & (d.length / (DOOR_WAYS * 2) - 1)) * DOOR_WAYS * 2;
    const now = this.admitClock;
    let victim = b;
    let oldest = 0;
    for (let j = b; j < b + DOOR_WAYS * 2; j += 2) {
      const at = d[j + 1];
      if (d[j] === ksh && at !== 0) {
        d[j + 1] = 0;
        if (((now - at) >>> 0) < this.capacity) return true;
        victim = j;
        break;
      }
      // the way least recently written (an empty one first): wrap-safe age on the 32-bit clock
      const age = at === 0 ? 0xffffffff : (now - at) >>> 0;
      if (age >= oldest) {
        oldest = age;
        victim = j;
      }
    }
    let next = (now + (len <= this.admitValue ? 1 : Math.max(1, Math.ceil(cost * this.unitsPerByte)))) >>> 0;
    if (next === 0) next = 1; // 0 marks an empty way
    this.admitClock = next;
    d[victim] = ksh;
    d[victim + 1] = next;
    return false;
  }

  /** A free entry index, evicting one when there is none. */
  private take(): number {
    if (this.nfree === 0) {
      if (this.keys.length < this.capacity) this.grow();
      else this.evictOne(-1);
    }
    return this.free[--this.nfree];
  }

  /** Doubles the entry arrays (up to capacity); indexes held in `index` stay valid. */
  private grow(): void {
    const old = this.keys.length;
    const n = Math.min(this.capacity, old * 2);
    for (let i = old; i < n; i++) {
      this.keys.push(null);
      this.values.push(undefined);
    }
    this.part = grown(this.part, n);
    this.tref = grown(this.tref, n);
    this.slot = grown(this.slot, n);
    this.off = grown(this.off, n);
    this.ver = grown(this.ver, n);
    this.exp = grown(this.exp, n);
    this.seq = grown(this.seq, n);
    this.tick = grown(this.tick, n);
    this.cost = grown(this.cost, n);
    this.refd = grown(this.refd, n);
    this.free = grown(this.free, n);
    this.addFree(old, n);
  }

  /** Pushes entries [from, to) on the free stack, lowest index on top. */
  private addFree(from: number, to: number): void {
    for (let i = to - 1; i >= from; i--) this.free[this.nfree++] = i;
  }

  /**
   * CLOCK: clears reference bits until the hand reaches an entry without one, and drops it (never
   * `keep`, the entry being made). False when nothing but `keep` is held.
   */
  private evictOne(keep: number): boolean {
    if (this.size <= (keep >= 0 ? 1 : 0)) return false;
    const n = this.keys.length;
    for (;;) {
      const i = this.hand;
      this.hand = i + 1 === n ? 0 : i + 1;
      if (this.keys[i] === null || i === keep) continue;
      if (this.refd[i] !== 0) {
        this.refd[i] = 0;
        continue;
      }
      this.dropAt(i);
      return true;
    }
  }

  private dropAt(i: number): void {
    this.index.delete(this.keys[i]!);
    this.keys[i] = null;
    this.values[i] = undefined;
    this.bytes -= this.cost[i];
    this.refd[i] = 0;
    this.free[this.nfree++] = i;
    if (this.last === i) this.last = -1;
  }
}
