/**
 * ShardStore: one thread's view of a member's shard stores (layout in ./layout.ts).
 *
 * Every thread of the process (main thread, virtual nodes, attached workers, piscina tasks) builds
 * its own ShardStore over the same three SharedArrayBuffers. Reads are lock-free and optimistic
 * (partition seqlock); writes run between `beginWrite`/`endWrite` while the caller holds the
 * partition mutex (src/sync/mutex.ts). Nothing here posts a message.
 *
 * The hot paths are written against typed-array views created once and refreshed only when the
 * growable heap has grown (fixed-length views over a growable SharedArrayBuffer are as fast as
 * over a plain one; length-tracking views measured ~10x slower on Node 20, see native-notes.md).
 */
import {
  ACCESS_BYTES_SHIFT, ACCESS_SHIFT, CLOCK_MASK, CLOCK_TICK_MS, E_EXPIRES, E_FLAGS, E_HASH, E_HEADER, E_KEYMAP, E_TYPE, E_VALLEN, E_VERSION, EMPTY,
  F_LIVE, F_REWRITE, F_TABLE, FREE, G_CLOCK, G_CLOSED, G_FREE_HINT, G_GROW_STEP, G_HEAP_LOCK, G_JOURNAL_SLOTS, G_LEASE_END, G_LAYOUT, G_MAGIC,
  G_MAP_COUNT, G_MAP_LOCK, G_MAX_KEY, G_MAX_MAPS, G_MAX_VALUE, G_PAGE_SHIFT, G_PAGES_FREE, G_PAGES_GROWN,
  G_PAGES_MAX, G_PARTITIONS, G_RESERVE, G_THREAD_NEXT, KIND_RUN_HEAD, KIND_RUN_TAIL, KIND_SMALL,
  LAYOUT_VERSION, M_NAME, M_NAME_HASH, M_NAME_LEN, M_OPTS, M_STRIDE, M_TTL, MO_NO_CACHE, MO_SET, MAGIC, MAX_MAP_NAME_BYTES, MAX_THREAD_LINKS, MAX_THREAD_SLOTS,
  P_COUNT, P_EVICTIONS, P_EXPIRATIONS, P_HEAD_PAGE, P_LIVE_BYTES, P_LOCK, P_OPEN_PAGE, P_OWNER, P_PAGES, P_PRIMARY_HERE, P_UNSETTLED,
  P_REPAIRS, P_SEQ, P_STRIDE, P_TABLE, P_TABLE_CAP, P_TOMBS, P_TTL_COUNT, P_WRITE_SEQ, PART_BASE,
  PG_KIND, PG_LIVE, PG_NEXT, PG_OWNER, PG_PREV, PG_RUN, PG_STRIDE, PG_USED, T_HITS, T_MISSES, T_NUMBER, T_OWNER,
  T_STRIDE, TOMB, align8, geometry, touchSlots, type Geometry,
} from './layout.js';
import { HASH_SEED, fmix32, murmur3, murmur3Ascii } from '../ring/hash.js';
import { sharedNow } from '../sync/clock.js';
import { SELF_ID, forceTake, holderOf, lockSync, tryLock, unlock } from '../sync/mutex.js';
import { LockTimeoutError } from '../errors.js';
import { EvictionJournal, J_TOUCHED } from './journal.js';
import { EVICTION_LOG, logEviction } from './eviction-log.js';

/** The three SharedArrayBuffers of a grid's shard stores, carried by {@link GridHandle.buffers}. */
export interface StoreBuffers {
  /** The global and partition headers (locks, seqlocks), the page table, the map registry and the counters. */
  control: SharedArrayBuffer;
  /** The pages that hold the records (entries and the partitions' tables). */
  heap: SharedArrayBuffer;
  /** The access map (LRU stamps). */
  access: SharedArrayBuffer;
}

export interface StoreInit {
  partitions: number;
  memory: number;
  maxMaps: number;
  maxKeyBytes: number;
  maxValueBytes: number;
  reservePages: number;
  /** Eviction journal slots (storage/journal.ts): JOURNAL_SLOTS for a cluster data member, else 0. */
  journalSlots?: number;
  /**
   * True for a lite cluster member, which owns no partitions: no pages, so an empty heap and access
   * map, and a control buffer without a page table (its map registry, thread slots and clock are
   * still used). `memory` is then ignored.
   */
  noPages?: boolean;
}

/** Spins of an optimistic read before it falls back to taking the lock. */
export const READ_SPIN_LIMIT = 2000;
interface Utf8Writer {
  utf8Write(s: string, offset: number, length: number): number;
  latin1Write(s: string, offset: number, length: number): number;
}

/** readBegin's answer while a writer is active (odd, so no real even P_SEQ value equals it). */
export const SEQ_BUSY = -1;
/** Returned by reads that could not get a stable snapshot; the caller retries under the lock. */
export const NEED_LOCK = -2;
/** setKey: the key is not well-formed UTF-16 (a lone surrogate). */
export const KEY_MALFORMED = -2;
const MIN_TABLE = 16;
/** How long evacuateWindow spins for each other partition's lock (tryLockFor). */
const WINDOW_LOCK_MS = 5;
const EVICT_SAMPLES = 5;
/** Partitions makeRoom and the virtual nodes' pressure eviction compare by the age of their entries. */
const VICTIM_PARTITIONS = 8;
/**
 * A copy on a cluster data member never makes room by evicting a primary's entry accessed within
 * this many clock ticks (1 s): it evicts copies, or drops the key it brings (makeRoom).
 */
const COPY_FLOOR = 10;
/**
 * The virtual nodes' background eviction (releaseInBackground) never takes an entry accessed
 * within this many clock ticks (200 ms at the default expiryInterval): it runs ahead of need, so
 * a writer that finds no free page evicts inline by makeRoom's rules instead.
 */
const BACKGROUND_FLOOR = 2;
/**
 * makeRoom's first-pass floor for candidate i of victimOrder (ages: victimAges): it gives up only
 * entries older than the next candidate's oldest sample; the last, than half its own.
 */
function firstPassFloor(ages: readonly number[], i: number): number {
  return i + 1 < ages.length ? ages[i + 1] : ages[i] >>> 1;
}
/** Pages a thread remembers having freed, where findFree looks first (a power of two). */
const RECENT_FREE = 8;
/** Most pages one compaction copies from (to free one page, it may copy five). */
const COMPACT_MAX_VICTIMS = 6;
/** Room left for the gap at the end of each page a compaction fills (records do not split). */
const COMPACT_PAGE_GAP = 256;

/** Chooses page size and page budget for a memory budget; control and access maps count against it. */
export function planMemory(init: StoreInit): { pageShift: number; maxPages: number; geo: Geometry; total: number } {
  const per = init.memory / (init.partitions * 16);
  let pageShift = 12;
  while (pageShift < 16 && 2 ** (pageShift + 1) <= per) pageShift++;
  const page = 2 ** pageShift;
  let maxPages = init.noPages === true ? 0 : Math.floor(init.memory / page);
  for (;;) {
    const geo = geometry(init.partitions, pageShift, maxPages, init.maxMaps, init.journalSlots ?? 0);
    const accessBytes = (maxPages * page) >>> ACCESS_BYTES_SHIFT;
    const total = geo.controlBytes + accessBytes + maxPages * page;
    if (total <= init.memory || maxPages === 0) return { pageShift, maxPages, geo, total };
    maxPages = Math.max(0, maxPages - Math.ceil((total - init.memory) / page));
  }
}

export function createStoreBuffers(init: StoreInit): StoreBuffers {
  const { pageShift, maxPages, geo } = planMemory(init);
  const page = 2 ** pageShift;
  const control = new SharedArrayBuffer(geo.controlBytes);
  const growStep = Math.max(1, Math.min(maxPages, Math.ceil((4 * 1024 * 1024) / page), Math.ceil(maxPages / 16)));
  const initial = Math.min(maxPages, Math.max(growStep, init.partitions + init.reservePages));
  const heap = new SharedArrayBuffer(initial * page, { maxByteLength: maxPages * page });
  const access = new SharedArrayBuffer((maxPages * page) >>> ACCESS_BYTES_SHIFT);
  const ci = new Int32Array(control);
  ci[G_MAGIC] = MAGIC;
  ci[G_LAYOUT] = LAYOUT_VERSION;
  ci[G_PARTITIONS] = init.partitions;
  ci[G_PAGE_SHIFT] = pageShift;
  ci[G_PAGES_MAX] = maxPages;
  ci[G_PAGES_GROWN] = initial;
  ci[G_PAGES_FREE] = initial;
  ci[G_RESERVE] = init.reservePages;
  ci[G_MAX_MAPS] = init.maxMaps;
  ci[G_MAX_KEY] = init.maxKeyBytes;
  ci[G_MAX_VALUE] = init.maxValueBytes;
  ci[G_GROW_STEP] = growStep;
  ci[G_CLOCK] = nowClock();
  for (let p = 0; p < init.partitions; p++) {
    const b = PART_BASE + p * P_STRIDE;
    ci[b + P_OPEN_PAGE] = -1;
    ci[b + P_HEAD_PAGE] = -1;
  }
  for (let g = 0; g < maxPages; g++) ci[geo.pageBase + g * PG_STRIDE + PG_OWNER] = FREE;
  EvictionJournal.init(ci, geo.journalBase, init.journalSlots ?? 0);
  EvictionJournal.init(ci, geo.touchBase, touchSlots(init.journalSlots ?? 0), false);
  return { control, heap, access };
}

export const nowClock = (): number => Math.floor(Date.now() / CLOCK_TICK_MS) & CLOCK_MASK;

export class ShardStore {
  readonly ci: Int32Array;
  /** The control buffer as bytes, for its few unaligned Float64 fields (the map registry's M_TTL). */
  private readonly controlView: DataView;
  readonly cu: Uint32Array;
  readonly tf: Float64Array;
  u8!: Uint8Array;
  u32!: Uint32Array;
  f64!: Float64Array;
  buf!: Buffer;
  readonly acc: Uint16Array;
  readonly geo: Geometry;
  readonly partitions: number;
  readonly pageShift: number;
  readonly pageSize: number;
  /** Pages of the last run allocRun could find no window for (0: it failed for want of room, or did not fail); see fullMessage. */
  private noWindow = 0;
  readonly smallMax: number;
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
  readonly lockTimeout: number;
  private readonly statBase: number;
  private pageBase: number;
  /** Single pages this thread freed last (a ring; -1 empty), findFree's first guesses. */
  private readonly recentFree = new Int32Array(RECENT_FREE).fill(-1);
  private recentNext = 0;
  /** compactionVictims' scratch: the sparsest pages of a partition and their live bytes. */
  private readonly sparsest = new Int32Array(COMPACT_MAX_VICTIMS);
  private readonly sparsestLive = new Int32Array(COMPACT_MAX_VICTIMS);
  /** What compactionVictims' last null fell short by: bytes to free before asking again (0: ask again at once). */
  private compactShort = 0;
  /** Hash tables of a run this thread moved out of a window before emptying it (moveTablesOut; tests, scripts). */
  tableMoves = 0;
  /** Times moveTablesOut found a table of the window with nowhere to go, after room was made for it (tests, scripts). */
  tableMovesFailed = 0;
  /** victimOrder's scratch: the partitions holding the most pages and their page counts. */
  private readonly richest = new Int32Array(VICTIM_PARTITIONS);
  private readonly richestPages = new Int32Array(VICTIM_PARTITIONS);
  /** The sampled age of each partition of victimOrder's last answer, in its order. */
  private victimAges: number[] = [];

  // The current key (set by setKey): UTF-8 bytes, partition, and slot hash.
  readonly kbuf: Uint8Array;
  private readonly kview: Buffer;
  klen = 0;
  /** The current key when it is all ASCII (its bytes are its char codes), else null (bytes in kbuf). */
  private kstr: string | null = null;
  kpart = 0;
  ksh = 0;
  /** Table slot index of the last successful probe. */
  private slotIdx = -1;
  private firstFree = -1;
  /**
   * Keys evicted from partitions this cluster member is primary for, for its main thread to ship
   * to their copies (journal.ts). No slots outside a cluster data member.
   */
  readonly journal: EvictionJournal;
  /** The touch sweep's ring (journalTouched), drained with the journal; none where the journal has no slots. */
  readonly touches: EvictionJournal;
  /** Entries the last journalTouched put into the journal. */
  touchesJournaled = 0;
  /**
   * Times this thread rebuilt a table or made room (evicting, compacting): anything after which
   * a probe made before may be stale. The partition a writer holds changes only on its thread.
   */
  private reshapes = 0;

  constructor(readonly buffers: StoreBuffers, lockTimeout = 5000) {
    this.ci = new Int32Array(buffers.control);
    this.controlView = new DataView(buffers.control);
    this.cu = new Uint32Array(buffers.control);
    if (this.ci[G_MAGIC] !== MAGIC || this.ci[G_LAYOUT] !== LAYOUT_VERSION) throw new Error('not a shardgrid control buffer');
    this.partitions = this.ci[G_PARTITIONS];
    this.pageShift = this.ci[G_PAGE_SHIFT];
    this.pageSize = 2 ** this.pageShift;
    this.smallMax = this.pageSize >>> 1;
    this.geo = geometry(this.partitions, this.pageShift, this.ci[G_PAGES_MAX], this.ci[G_MAX_MAPS], this.ci[G_JOURNAL_SLOTS]);
    this.pageBase = this.geo.pageBase;
    this.tf = new Float64Array(buffers.control);
    this.acc = new Uint16Array(buffers.access);
    this.maxKeyBytes = this.ci[G_MAX_KEY];
    this.maxValueBytes = this.ci[G_MAX_VALUE];
    this.lockTimeout = lockTimeout;
    this.statBase = this.geo.threadBase + this.statSlot() * T_STRIDE;
    this.kbuf = new Uint8Array(this.maxKeyBytes + 8);
    this.kview = Buffer.from(this.kbuf.buffer, 0, this.kbuf.length);
    this.journal = new EvictionJournal(this.ci, this.geo.journalBase, this.maxKeyBytes);
    this.touches = new EvictionJournal(this.ci, this.geo.touchBase, this.maxKeyBytes, touchSlots(this.ci[G_JOURNAL_SLOTS]));
    this.refresh();
  }

  /**
   * This thread's hit/miss counter slot: the one it owns already (an earlier attachment of this
   * thread), else a free one, claimed. Each thread writes its own with plain stores, so two live
   * threads must not share one; only when all MAX_THREAD_SLOTS are owned (by live threads, or
   * by dead ones no recovery saw) are slots shared round robin, and counts may then be lost.
   */
  private statSlot(): number {
    const ci = this.ci;
    const owner = (t: number): number => (this.geo.threadBase + t * T_STRIDE + T_OWNER) * 2;
    for (let t = 0; t < MAX_THREAD_SLOTS; t++) if (Atomics.load(ci, owner(t)) === SELF_ID) return t;
    for (let t = 0; t < MAX_THREAD_SLOTS; t++) if (Atomics.compareExchange(ci, owner(t), 0, SELF_ID) === 0) return t;
    return Atomics.add(ci, G_THREAD_NEXT, 1) % MAX_THREAD_SLOTS;
  }

  /** Frees the counter slot of dead thread `tid` (its counts stay: see statSlot). */
  private freeStatSlot(tid: number): void {
    for (let t = 0; t < MAX_THREAD_SLOTS; t++) Atomics.compareExchange(this.ci, (this.geo.threadBase + t * T_STRIDE + T_OWNER) * 2, tid + 1, 0);
  }

  /** Re-creates the heap views after the growable heap grew (any thread may have grown it). */
  refresh(): void {
    const h = this.buffers.heap;
    const len = h.byteLength;
    this.u8 = new Uint8Array(h, 0, len);
    this.u32 = new Uint32Array(h, 0, len >>> 2);
    this.f64 = new Float64Array(h, 0, len >>> 3);
    this.buf = Buffer.from(h, 0, len);
  }

  inBounds(end: number): boolean {
    if (end <= this.u8.length) return true;
    this.refresh();
    return end <= this.u8.length;
  }

  // ── keys ──────────────────────────────────────────────────────────────────────────────────────

  /**
   * Encodes `key` into the key buffer and computes its partition and slot hash for `mapId`.
   * Returns the key's UTF-8 length, -1 when it exceeds maxKeyBytes, or KEY_MALFORMED when it is
   * not well-formed UTF-16 (a lone surrogate).
   */
  setKey(key: string, mapId: number): number {
    const n = key.length;
    let h = -1;
    let len = n;
    // ASCII keys (the common case) hash straight from their char codes; no encoding pass.
    if (n <= this.maxKeyBytes) h = murmur3Ascii(key, HASH_SEED);
    if (h >= 0) {
      this.kstr = key;
    } else {
      if (Buffer.byteLength(key, 'utf8') > this.maxKeyBytes) return -1;
      // UTF-8 turns every lone surrogate into U+FFFD: such keys would share one entry
      if (!key.isWellFormed()) return KEY_MALFORMED;
      len = this.kview.write(key, 0, 'utf8');
      h = murmur3(this.kbuf, len, HASH_SEED);
      this.kstr = null;
    }
    this.klen = len;
    this.kpart = h % this.partitions;
    this.ksh = fmix32(h ^ Math.imul(mapId + 1, 0x9e3779b1));
    return len;
  }

  /**
   * setKey for a key given as UTF-8 bytes `src[off..off+len)` (a key received from another
   * member): same hash and partition as setKey of the decoded string. Returns len, or -1 when it
   * exceeds maxKeyBytes.
   */
  setKeyBytes(src: Uint8Array, off: number, len: number, mapId: number): number {
    if (len > this.maxKeyBytes) return -1;
    const kb = this.kbuf;
    for (let i = 0; i < len; i++) kb[i] = src[off + i];
    const h = murmur3(kb, len, HASH_SEED);
    this.kstr = null;
    this.klen = len;
    this.kpart = h % this.partitions;
    this.ksh = fmix32(h ^ Math.imul(mapId + 1, 0x9e3779b1));
    return len;
  }

  /**
   * Makes an ASCII `key` current again from its partition and slot hash as setKey computed them
   * for the same map (no hashing). Only for a key setKey found to be ASCII (UTF-8 length = length).
   */
  useAsciiKey(key: string, part: number, ksh: number): void {
    this.kstr = key;
    this.klen = key.length;
    this.kpart = part;
    this.ksh = ksh;
  }

  private keyEquals(at: number): boolean {
    const u8 = this.u8;
    const n = this.klen;
    const s = this.kstr;
    if (s !== null) {
      for (let i = 0; i < n; i++) if (u8[at + i] !== s.charCodeAt(i)) return false;
      return true;
    }
    const kb = this.kbuf;
    for (let i = 0; i < n; i++) if (u8[at + i] !== kb[i]) return false;
    return true;
  }

  /** Writes the current key's bytes at `at`. */
  private writeKey(at: number): void {
    const u8 = this.u8;
    const n = this.klen;
    const s = this.kstr;
    if (s !== null) {
      for (let i = 0; i < n; i++) u8[at + i] = s.charCodeAt(i);
    } else if (n <= 32) {
      const kb = this.kbuf;
      for (let i = 0; i < n; i++) u8[at + i] = kb[i];
    } else {
      u8.set(this.kbuf.subarray(0, n), at);
    }
  }

  // ── lookup ────────────────────────────────────────────────────────────────────────────────────

  /**
   * Finds the current key of `mapId` in partition `p`. Returns its record offset or -1; sets
   * slotIdx (found) or firstFree (first reusable slot on the probe path, for inserts). Safe to call
   * without the lock: every offset is bounds-checked and the probe length is bounded, so a torn
   * view can only produce a wrong answer, which the seqlock check then discards.
   */
  probe(p: number, mapId: number): number {
    const pb = PART_BASE + p * P_STRIDE;
    const tref = this.cu[pb + P_TABLE];
    const cap = this.cu[pb + P_TABLE_CAP];
    this.firstFree = -1;
    if (tref === 0 || cap === 0) return -1;
    const tword = (((tref - 1) * 8 + E_HEADER) >>> 2);
    if (!this.inBounds((tword + cap * 2) * 4)) return -1;
    const u32 = this.u32;
    const sh = this.ksh;
    const km = (this.klen | (mapId << 16)) >>> 0;
    const mask = cap - 1;
    let i = sh & mask;
    for (let n = 0; n < cap; n++) {
      const ref = u32[tword + 2 * i + 1];
      if (ref === EMPTY) {
        if (this.firstFree < 0) this.firstFree = i;
        return -1;
      }
      if (ref === TOMB) {
        if (this.firstFree < 0) this.firstFree = i;
      } else if (u32[tword + 2 * i] === sh) {
        const off = (ref - 1) * 8;
        // this.u32, not the local: inBounds may just have refreshed the views (the record lies
        // in pages another thread's growth added), and the local one ends before it
        if (this.inBounds(off + E_HEADER + this.klen) && this.u32[(off + E_KEYMAP) >>> 2] === km && this.keyEquals(off + E_HEADER)) {
          this.slotIdx = i;
          return off;
        }
      }
      i = (i + 1) & mask;
    }
    return -1;
  }

  /** Table slot of the last successful probe (valid until the next probe on this thread). */
  get lastSlot(): number {
    return this.slotIdx;
  }

  /** Ref of partition p's hash-table record: changes whenever the table is rebuilt or moved. */
  tableRef(p: number): number {
    return this.cu[PART_BASE + p * P_STRIDE + P_TABLE];
  }

  /**
   * True when slot `slot` of table `tref` (still partition p's table) points at record `off`:
   * the table is authoritative, so the record is then the key's current one. A rewrite, delete,
   * eviction, expiry or compaction changes the slot's ref (or the table). Call inside a seqlock window.
   */
  slotHolds(p: number, tref: number, slot: number, off: number): boolean {
    if (this.cu[PART_BASE + p * P_STRIDE + P_TABLE] !== tref) return false;
    const i = (((tref - 1) * 8 + E_HEADER) >>> 2) + 2 * slot + 1;
    return i < this.u32.length && this.u32[i] === (off >>> 3) + 1;
  }

  valueOffset(off: number): number {
    return off + E_HEADER + align8(this.u32[(off + E_KEYMAP) >>> 2] & 0xffff);
  }

  // ── optimistic reads ──────────────────────────────────────────────────────────────────────────

  /**
   * Partition seqlock value to start an optimistic read with, or SEQ_BUSY while a writer is
   * active. Any other value, negative ones included, is a real (even) P_SEQ: the counter is an
   * Int32 that Atomics.add wraps to negative values after 2^31 writes to the partition.
   */
  readBegin(p: number): number {
    const s = Atomics.load(this.ci, PART_BASE + p * P_STRIDE + P_SEQ);
    return (s & 1) === 0 ? s : SEQ_BUSY;
  }

  /** True when no writer touched the partition since readBegin returned `s`. */
  readValid(p: number, s: number): boolean {
    return Atomics.load(this.ci, PART_BASE + p * P_STRIDE + P_SEQ) === s;
  }

  isExpired(off: number, now: number): boolean {
    const e = this.f64[(off + E_EXPIRES) >>> 3];
    return e !== 0 && e <= now;
  }

  expiresAt(off: number): number {
    return this.f64[(off + E_EXPIRES) >>> 3];
  }

  typeOf(off: number): number {
    return this.u8[off + E_TYPE];
  }

  versionOf(off: number): number {
    return this.u32[(off + E_VERSION) >>> 2];
  }

  valueLength(off: number): number {
    return this.u32[(off + E_VALLEN) >>> 2];
  }

  /**
   * Marks an access for the approximate LRU (see ACCESS_SHIFT in layout.ts for why this is safe).
   * Returns the clock value stamped.
   */
  touch(off: number): number {
    const c = this.ci[G_CLOCK];
    const u = off >>> ACCESS_SHIFT;
    if (this.acc[u] !== c) this.acc[u] = c;
    return c;
  }

  /** The LRU clock (a plain read: ticks every CLOCK_TICK_MS, written by the virtual nodes). */
  clock(): number {
    return this.ci[G_CLOCK];
  }

  hit(): void {
    this.tf[this.statBase + T_HITS]++;
  }

  miss(): void {
    this.tf[this.statBase + T_MISSES]++;
  }

  // ── locking ───────────────────────────────────────────────────────────────────────────────────

  lockIndex(p: number): number {
    return PART_BASE + p * P_STRIDE + P_LOCK;
  }

  beginWrite(p: number): void {
    Atomics.add(this.ci, PART_BASE + p * P_STRIDE + P_SEQ, 1);
    // viewsForLocked, written out: as a call, sets measured ~5 % slower (bench/ab-inproc.mjs set,
    // 10,000 keys, B ÷ A 1.055 and 1.067 against 1.009 written out, 2026-11-28)
    if (this.u8.length < this.ci[G_PAGES_GROWN] * this.pageSize) this.refresh();
  }

  /**
   * Called holding a partition's lock before reading its table or records: another thread may
   * have grown the heap and put the partition's table or records beyond this thread's views. The
   * grower records the pages it grew (G_PAGES_GROWN) before it releases the partition lock this
   * thread now holds, so a plain read sees them; a growable buffer's byteLength getter, the check
   * this replaces, cost ~20 ns a write (native-notes.md, "Measured costs"). A walk that read past
   * its views took each undefined slot for a record (the touch sweep, before 2026-11-28).
   * beginWrite does the same check inline.
   */
  private viewsForLocked(): void {
    if (this.u8.length < this.ci[G_PAGES_GROWN] * this.pageSize) this.refresh();
  }

  endWrite(p: number): void {
    Atomics.add(this.ci, PART_BASE + p * P_STRIDE + P_SEQ, 1);
  }

  // ── writes (caller holds the partition lock and called beginWrite) ───────────────────────────

  /**
   * Stores the current key of `mapId` with a value: `src[0..vlen)` (or the number `num` when
   * type is T_NUMBER). Returns the new record's offset, or -1 when memory is exhausted and nothing
   * could be evicted. The previous record of the key, if any, is freed.
   */
  put(p: number, mapId: number, type: number, src: Uint8Array | string | null, vlen: number, num: number, expiresAt: number): number {
    const size = E_HEADER + align8(this.klen) + align8(vlen);
    let cur = -1;
    const reshapes = this.reshapes;
    if (size <= this.smallMax) {
      // Same-size overwrite (the common cache update): rewrite the record where it is. Its memory
      // is hot in cache, nothing is allocated or freed, and the slot keeps pointing at it; the new
      // version tells memoized readers it changed, the seqlock fences optimistic ones.
      cur = this.probe(p, mapId);
      if (cur >= 0 && this.recordSize(cur) === size) {
        this.rewriteValue(p, mapId, cur, type, src, vlen, num, expiresAt);
        return cur;
      }
    }
    if (!this.ensureTableRoom(p)) return -1;
    const off = this.alloc(p, size);
    if (off < 0) return -1;
    this.writeRecord(p, off, mapId, type, src, vlen, num, expiresAt);
    // The first probe still holds (its record, slot, first free slot) unless the table was
    // rebuilt or something was evicted or moved since: then probe afresh. (A fresh key in a full
    // grid needs room about once a page, and probed twice on every insert before.)
    const old = size <= this.smallMax && this.reshapes === reshapes ? cur : this.probe(p, mapId);
    if (old >= 0) {
      this.setSlot(p, this.slotIdx, this.ksh, off);
      if (this.f64[(old + E_EXPIRES) >>> 3] !== 0) this.countTtl(p, mapId, -1);
      this.freeRecord(p, old);
    } else {
      this.insertSlot(p, mapId, off);
    }
    if (expiresAt !== 0) this.countTtl(p, mapId, 1);
    return off;
  }

  /**
   * Same-size overwrite of the live record `off` of the current key, in place: the slot, the
   * key bytes, slot hash and key/map word stay as they are; a new version tells memoized readers
   * it changed (the caller is inside beginWrite, which fences optimistic readers).
   */
  private rewriteValue(p: number, mapId: number, off: number, type: number, src: Uint8Array | string | null, vlen: number, num: number, expiresAt: number): void {
    const pb = PART_BASE + p * P_STRIDE;
    const u32 = this.u32;
    const w = off >>> 2;
    const eo = (off + E_EXPIRES) >>> 3;
    // a thread can die anywhere in here (worker.terminate()): until the flag is cleared the
    // record is neither the old value nor the new one, and the repair drops it
    this.u8[off + E_FLAGS] = F_LIVE | F_REWRITE;
    if ((this.f64[eo] !== 0) !== (expiresAt !== 0)) this.countTtl(p, mapId, expiresAt !== 0 ? 1 : -1);
    u32[w + (E_VERSION >>> 2)] = ++this.cu[pb + P_WRITE_SEQ];
    this.f64[eo] = expiresAt;
    u32[w + (E_VALLEN >>> 2)] = vlen;
    this.u8[off + E_TYPE] = type;
    this.writeValue(off + E_HEADER + align8(this.klen), type, src, vlen, num);
    this.acc[off >>> ACCESS_SHIFT] = this.ci[G_CLOCK];
    this.u8[off + E_FLAGS] = F_LIVE;
  }

  private writeRecord(p: number, off: number, mapId: number, type: number, src: Uint8Array | string | null, vlen: number, num: number, expiresAt: number): void {
    const pb = PART_BASE + p * P_STRIDE;
    const u32 = this.u32;
    const w = off >>> 2;
    u32[w + (E_HASH >>> 2)] = this.ksh;
    u32[w + (E_VERSION >>> 2)] = ++this.cu[pb + P_WRITE_SEQ];
    this.f64[(off + E_EXPIRES) >>> 3] = expiresAt;
    u32[w + (E_KEYMAP >>> 2)] = (this.klen | (mapId << 16)) >>> 0;
    u32[w + (E_VALLEN >>> 2)] = vlen;
    this.u8[off + E_TYPE] = type;
    this.u8[off + E_FLAGS] = F_LIVE;
    this.writeKey(off + E_HEADER);
    this.writeValue(off + E_HEADER + align8(this.klen), type, src, vlen, num);
    this.acc[off >>> ACCESS_SHIFT] = this.ci[G_CLOCK];
  }

  /** Writes a value at heap offset `vo`: the number `num`, or src[0..vlen) (a string as UTF-8). */
  private writeValue(vo: number, type: number, src: Uint8Array | string | null, vlen: number, num: number): void {
    if (type === T_NUMBER) this.f64[vo >>> 3] = num;
    else if (vlen > 0 && src !== null) {
      if (typeof src === 'string') {
        // byte length == char count means all ASCII: latin1Write then writes the same bytes as
        // UTF-8, at about half the cost of utf8Write here.
        if (vlen === src.length) (this.buf as unknown as Utf8Writer).latin1Write(src, vo, vlen);
        else (this.buf as unknown as Utf8Writer).utf8Write(src, vo, vlen);
      }
      else this.copyIn(src, vlen, vo);
    }
  }

  /** Copies src[0..n) to heap offset `to` (a byte loop for small values: no view allocation). */
  private copyIn(src: Uint8Array, n: number, to: number): void {
    const u8 = this.u8;
    if (n <= 32) {
      for (let i = 0; i < n; i++) u8[to + i] = src[i];
    } else {
      u8.set(n === src.length ? src : new Uint8Array(src.buffer, src.byteOffset, n), to);
    }
  }

  /** In-place update of a number record (one aligned 8-byte store; readers are fenced by the seqlock). */
  setNumberInPlace(p: number, off: number, n: number): void {
    this.u32[(off + E_VERSION) >>> 2] = ++this.cu[PART_BASE + p * P_STRIDE + P_WRITE_SEQ];
    this.f64[this.valueOffset(off) >>> 3] = n;
    this.acc[off >>> ACCESS_SHIFT] = this.ci[G_CLOCK];
  }

  /** Removes the current key of `mapId` if present; returns whether it was (and was not expired). */
  remove(p: number, mapId: number, now: number): boolean {
    const off = this.probe(p, mapId);
    if (off < 0) return false;
    const expired = this.isExpired(off, now);
    this.unlinkAt(p, this.slotIdx, off, mapId);
    if (expired) this.ci[PART_BASE + p * P_STRIDE + P_EXPIRATIONS]++;
    return !expired;
  }

  /**
   * Drops the current key of `mapId` as an eviction (p locked, inside beginWrite): a cluster copy
   * that found no room for the key's new value. A key the copy did not hold is counted and
   * recorded as evicted too (the test-only eviction log): the copy lacks it from now on, as if it
   * had held it and evicted it. Returns whether it was present.
   */
  evictKey(p: number, mapId: number): boolean {
    const off = this.probe(p, mapId);
    if (off >= 0) {
      this.evicted(p, this.slotIdx, off);
      return true;
    }
    this.countEviction(p, mapId, this.kstr === null ? this.kbuf : Buffer.from(this.kstr, 'latin1'), 0, this.klen);
    return false;
  }

  /** Drops an expired record found under the lock (lazy expiry). */
  expireAt(p: number, mapId: number, off: number): void {
    this.unlinkAt(p, this.slotIdx, off, mapId);
    this.ci[PART_BASE + p * P_STRIDE + P_EXPIRATIONS]++;
  }

  private unlinkAt(p: number, slot: number, off: number, mapId: number): void {
    const pb = PART_BASE + p * P_STRIDE;
    const tword = (((this.cu[pb + P_TABLE] - 1) * 8 + E_HEADER) >>> 2);
    const u32 = this.u32;
    const mask = this.ci[pb + P_TABLE_CAP] - 1;
    if (u32[tword + 2 * ((slot + 1) & mask) + 1] === EMPTY) {
      // No probe goes past an empty slot, so this one can be empty too, and so can the tombstones
      // right before it: fewer tombstones, shorter probes for absent keys, fewer table rebuilds
      // (a full grid under churn evicts an entry for every insert).
      u32[tword + 2 * slot + 1] = EMPTY;
      let freed = 0;
      for (let i = (slot - 1) & mask; i !== slot && u32[tword + 2 * i + 1] === TOMB; i = (i - 1) & mask) {
        u32[tword + 2 * i + 1] = EMPTY;
        freed++;
      }
      this.ci[pb + P_TOMBS] -= freed;
    } else {
      u32[tword + 2 * slot + 1] = TOMB;
      this.ci[pb + P_TOMBS]++;
    }
    this.ci[pb + P_COUNT]--;
    this.ci[this.geo.countBase + p * this.geo.maxMaps + mapId]--;
    if (this.f64[(off + E_EXPIRES) >>> 3] !== 0) this.countTtl(p, mapId, -1);
    this.freeRecord(p, off);
  }

  /**
   * A new expiry for the live record `off` of map `mapId` (0: none), its value and type as they
   * are; a new version, so memoized readers read the record again (the caller holds the lock and
   * called beginWrite).
   */
  retime(p: number, mapId: number, off: number, expiresAt: number): void {
    const eo = (off + E_EXPIRES) >>> 3;
    if ((this.f64[eo] !== 0) !== (expiresAt !== 0)) this.countTtl(p, mapId, expiresAt !== 0 ? 1 : -1);
    this.u32[(off + E_VERSION) >>> 2] = ++this.cu[PART_BASE + p * P_STRIDE + P_WRITE_SEQ];
    this.f64[eo] = expiresAt;
  }

  /** Entries with an expiry: partition p's count (the expiry sweep's filter) and map mapId's in it. */
  private countTtl(p: number, mapId: number, d: number): void {
    this.ci[PART_BASE + p * P_STRIDE + P_TTL_COUNT] += d;
    this.ci[this.geo.ttlBase + p * this.geo.maxMaps + mapId] += d;
  }

  private setSlot(p: number, slot: number, sh: number, off: number): void {
    const tword = (((this.cu[PART_BASE + p * P_STRIDE + P_TABLE] - 1) * 8 + E_HEADER) >>> 2);
    this.u32[tword + 2 * slot] = sh;
    this.u32[tword + 2 * slot + 1] = off / 8 + 1; // the ref store commits the slot
  }

  private insertSlot(p: number, mapId: number, off: number): void {
    const pb = PART_BASE + p * P_STRIDE;
    const slot = this.firstFree;
    const tword = (((this.cu[pb + P_TABLE] - 1) * 8 + E_HEADER) >>> 2);
    if (this.u32[tword + 2 * slot + 1] === TOMB) this.ci[pb + P_TOMBS]--;
    this.setSlot(p, slot, this.ksh, off);
    this.ci[pb + P_COUNT]++;
    this.ci[this.geo.countBase + p * this.geo.maxMaps + mapId]++;
  }

  /** Grows (or rebuilds, when tombstones dominate) the table so one more insert keeps load ≤ 3/4. */
  private ensureTableRoom(p: number): boolean {
    const pb = PART_BASE + p * P_STRIDE;
    const cap = this.ci[pb + P_TABLE_CAP];
    const used = this.ci[pb + P_COUNT] + this.ci[pb + P_TOMBS] + 1;
    if (cap !== 0 && used * 4 <= cap * 3) return true;
    this.reshapes++;
    let ncap = MIN_TABLE;
    while (ncap * 3 < (this.ci[pb + P_COUNT] + 1) * 4 * 2) ncap *= 2;
    const toff = this.alloc(p, E_HEADER + ncap * 8);
    if (toff < 0) return false;
    const u32 = this.u32;
    const w = toff >>> 2;
    u32.fill(0, w, w + (E_HEADER + ncap * 8) / 4);
    u32[w + (E_VALLEN >>> 2)] = ncap * 8;
    this.u8[toff + E_FLAGS] = F_LIVE | F_TABLE;
    // The old table is read after alloc: alloc may have relocated it.
    const oref = this.cu[pb + P_TABLE];
    const ocap = this.ci[pb + P_TABLE_CAP];
    const nword = w + (E_HEADER >>> 2);
    if (oref !== 0) {
      const oword = (((oref - 1) * 8 + E_HEADER) >>> 2);
      const mask = ncap - 1;
      for (let i = 0; i < ocap; i++) {
        const ref = u32[oword + 2 * i + 1];
        if (ref === EMPTY || ref === TOMB) continue;
        const sh = u32[oword + 2 * i];
        let j = sh & mask;
        while (u32[nword + 2 * j + 1] !== EMPTY) j = (j + 1) & mask;
        u32[nword + 2 * j] = sh;
        u32[nword + 2 * j + 1] = ref;
      }
    }
    // Publish: ref then cap. A reader that sees one without the other fails its seqlock check.
    this.cu[pb + P_TABLE] = toff / 8 + 1;
    this.ci[pb + P_TABLE_CAP] = ncap;
    this.ci[pb + P_TOMBS] = 0;
    if (oref !== 0) this.freeRecord(p, (oref - 1) * 8);
    return true;
  }

  // ── memory: pages, allocation, reclamation ────────────────────────────────────────────────────

  private pg(page: number, field: number): number {
    return this.pageBase + page * PG_STRIDE + field;
  }

  /** Allocates `size` bytes for partition `p`; evicts and compacts as needed. -1 when impossible. */
  alloc(p: number, size: number): number {
    if (size > this.smallMax) return this.allocRun(p, size);
    const pb = PART_BASE + p * P_STRIDE;
    const ci = this.ci;
    for (let attempt = 0; attempt < 4096; attempt++) {
      const op = ci[pb + P_OPEN_PAGE];
      if (op >= 0) {
        const used = ci[this.pg(op, PG_USED)];
        if (used + size <= this.pageSize) {
          ci[this.pg(op, PG_USED)] = used + size;
          ci[this.pg(op, PG_LIVE)] += size;
          ci[pb + P_LIVE_BYTES] += size;
          return op * this.pageSize + used;
        }
      }
      const np = this.takePages(p, 1, false);
      if (np >= 0) {
        ci[pb + P_OPEN_PAGE] = np;
        continue;
      }
      // Memory is full: evict from the partition whose entries look least recently used.
      if (this.makeRoom(p, size)) continue;
      return -1;
    }
    return -1;
  }

  /**
   * A run of contiguous pages for a record over half a page (p locked, inside beginWrite). When
   * none is free: first make sure the budget has n pages to spare (evicting approximately LRU, as
   * for small records), then empty the window of n pages that costs the fewest live entries
   * (`evacuateWindow`). Before, it evicted sampled entries anywhere until n freed pages happened
   * to lie side by side; every partition's hash table pins a page, so in a full heap that rarely
   * happened: a 1 MB write into a full 64 MB grid evicted 85 % of its entries and then failed.
   * Now a run that no window can give fails before anything is evicted.
   */
  private allocRun(p: number, size: number): number {
    const n = Math.ceil(size / this.pageSize);
    const pb = PART_BASE + p * P_STRIDE;
    this.noWindow = 0;
    for (let attempt = 0; attempt < 8; attempt++) {
      let first = this.takePages(p, n, false);
      if (first < 0) {
        // a window may hold hash tables of a run when each has somewhere to go outside it
        // (bestWindow) and its owner is not busy (tableOwnersFree), both checked before anything
        // is evicted for it; else only the windows without a table are left, as before
        let w = this.bestWindow(n, true);
        const tables = w >= 0 && this.tableOwnersFree(p, w, n);
        if (w >= 0 && !tables) w = this.bestWindow(n, false);
        if (w < 0) {
          this.noWindow = n;
          return -1;
        }
        if (!this.roomForWindow(p, n, w)) return -1;
        first = this.takePages(p, n, false);
        if (first < 0) {
          // the window's tables move out first, then its records (evacuateWindow; when a table
          // could not move after all, its owner busy by then, a window without one)
          if (tables) this.moveTablesOut(p, w, n);
          if (this.evacuateWindow(p, n)) first = this.takePages(p, n, false);
        }
      }
      if (first >= 0) {
        this.ci[this.pg(first, PG_USED)] = size;
        this.ci[this.pg(first, PG_LIVE)] = size;
        this.ci[pb + P_LIVE_BYTES] += size;
        return first * this.pageSize;
      }
    }
    return -1;
  }

  /**
   * Room for a run of n pages (or false: nothing left to evict), then, best effort, for what
   * lies on window [w, w + n) to move out of it (windowMoves; evacuateWindow evicts what cannot).
   */
  private roomForWindow(p: number, n: number, w: number): boolean {
    for (let guard = 0; this.availablePages() < n; guard++) {
      if (guard >= 1 << 16 || !this.makeRoom(p, 0)) return false;
    }
    const want = n + this.windowMoves(w, n);
    for (let guard = 0; this.availablePages() < want && guard < 2 * want; guard++) if (!this.makeRoom(p, 0)) break;
    return true;
  }

  /**
   * True when the owners other than p of the hash tables of a run with a page in
   * [first, first + n) can be locked now (tryLockFor, and let go at once): checked before
   * anything is evicted for that window, since a table whose owner is busy cannot move, and
   * makeRoom would evict for nothing. A check, not a hold: keeping them locked while makeRoom
   * evicts (tens of ms for 500 KB) kept makeRoom from its first candidates, the partitions
   * holding the most pages (in a /tmp churn script, 172 of 176 large writes failed so), and
   * getSync readers of them waited past their 200 ms.
   */
  private tableOwnersFree(p: number, first: number, n: number): boolean {
    for (let q = 0; q < this.partitions; q++) {
      if (q === p || !this.tableRunIn(q, first, first + n)) continue;
      if (!this.tryLockFor(q, WINDOW_LOCK_MS)) return false;
      unlock(this.ci, this.lockIndex(q));
    }
    return true;
  }

  /**
   * The first page of the window of n grown pages with the fewest live bytes (a free page costs
   * nothing, a small page its live bytes, a run page a whole page), or -1 when there is none.
   * A window holding a hash table of a run (it can be neither evicted nor moved with a page's
   * records; a small table moves with its page) is a candidate only with `tables`, and only when
   * every such table has a free run of its length outside the window to move to
   * (`tablesCanLeave`; moveTablesOut moves them there before anything is evicted), at one more
   * than its pages' cost, so that an equal window without one goes first. (Until 2026-11-27
   * every table pinned its page: at 16 MB, 271 tables over 4,096 pages, no window of a 1,000 KiB
   * value was free of one; until 2026-11-28 a table of a run did: at 8 MB, where every table is
   * one, a 500 KB value was refused with 30,000 entries to evict.) Reads other partitions' words
   * without their locks: a choice, re-checked under each owner's lock by moveTablesOut and
   * evacuateWindow.
   */
  private bestWindow(n: number, tables: boolean): number {
    const ci = this.ci;
    const grown = ci[G_PAGES_GROWN];
    if (n > grown) return -1;
    const cost = new Float64Array(grown);
    for (let g = 0; g < grown; g++) {
      const owner = ci[this.pg(g, PG_OWNER)];
      cost[g] = owner === FREE ? 0 : ci[this.pg(g, PG_KIND)] === KIND_SMALL ? Math.max(0, ci[this.pg(g, PG_LIVE)]) : this.pageSize;
    }
    // the first page of the table run each page belongs to (-1: none)
    const table = new Int32Array(grown).fill(-1);
    for (let q = 0; q < this.partitions; q++) {
      const g = this.tableRunHead(q, grown);
      if (g < 0) continue;
      const len = ci[this.pg(g, PG_RUN)];
      for (let k = g; k < g + len && k < grown; k++) table[k] = g;
      cost[g] += 1;
    }
    let movable: number[] | null = null;
    let best = -1;
    let bestCost = Infinity;
    let sum = 0;
    let pinned = 0;
    for (let g = 0; g < grown; g++) {
      sum += cost[g];
      if (table[g] >= 0) pinned++;
      if (g >= n) {
        sum -= cost[g - n];
        if (table[g - n] >= 0) pinned--;
      }
      if (g < n - 1 || sum >= bestCost) continue;
      if (pinned > 0) {
        if (!tables) continue;
        movable ??= this.movableRuns(grown);
        if (!this.tablesCanLeave(g - n + 1, n, table, movable)) continue;
      }
      bestCost = sum;
      best = g - n + 1;
    }
    return best;
  }

  /** The first page of q's hash table when it is a run of pages within the first `grown`, else -1 (read without q's lock: a hint, bounded). */
  private tableRunHead(q: number, grown: number): number {
    const t = this.cu[PART_BASE + q * P_STRIDE + P_TABLE];
    if (t === 0) return -1;
    const g = ((t - 1) * 8) >>> this.pageShift;
    return g < grown && this.ci[this.pg(g, PG_KIND)] === KIND_RUN_HEAD ? g : -1;
  }

  /** True when page g is free or a small page: a page a table's run can take once its records moved elsewhere (clearTarget). */
  private movable(g: number): boolean {
    return this.ci[this.pg(g, PG_OWNER)] === FREE || this.ci[this.pg(g, PG_KIND)] === KIND_SMALL;
  }

  /** The runs of movable pages among the first `grown`, as [first, end) pairs. */
  private movableRuns(grown: number): number[] {
    const runs: number[] = [];
    for (let g = 0; g < grown; g++) {
      if (!this.movable(g)) continue;
      const start = g;
      while (g < grown && this.movable(g)) g++;
      runs.push(start, g);
    }
    return runs;
  }

  /**
   * True when every hash table of a run with a page in [first, first + n) (`table`: bestWindow's
   * map of table pages) has somewhere to go outside the window, each its own part of one of the
   * runs `movable` of free and small pages (largest first, first fit): pages that are free, or
   * whose records can move to pages the window's own clearing makes room for (windowMoves).
   * A table among run pages only (large values, other tables) has nowhere to go without evicting
   * what the window would not: such a window is no candidate.
   */
  private tablesCanLeave(first: number, n: number, table: Int32Array, movable: number[]): boolean {
    const to = first + n;
    const lens: number[] = [];
    for (let g = first; g < to; g++) if (table[g] >= 0 && (g === first || table[g] !== table[g - 1])) lens.push(this.ci[this.pg(table[g], PG_RUN)]);
    lens.sort((a, b) => b - a);
    // what is left of each run outside the window: the part before it and the part after
    const room: number[] = [];
    for (let k = 0; k < movable.length; k += 2) {
      if (movable[k] < first) room.push(Math.min(movable[k + 1], first) - movable[k]);
      if (movable[k + 1] > to) room.push(movable[k + 1] - Math.max(movable[k], to));
    }
    for (const len of lens) {
      const k = room.findIndex((r) => r >= len);
      if (k < 0) return false;
      room[k] -= len;
    }
    return true;
  }

  /**
   * Pages what lies on pages [first, first + n) takes when moved out: its small records
   * (evacuateWindow), with one to spare for the gaps, and for each hash table of a run there
   * twice its pages (its new place, and at most as many for the records moved off it,
   * clearTarget).
   */
  private windowMoves(first: number, n: number): number {
    const ci = this.ci;
    let live = 0;
    let tables = 0;
    for (let g = first; g < first + n; g++) {
      if (ci[this.pg(g, PG_OWNER)] !== FREE && ci[this.pg(g, PG_KIND)] === KIND_SMALL) live += Math.max(0, ci[this.pg(g, PG_LIVE)]);
    }
    for (let q = 0; q < this.partitions; q++) if (this.tableRunIn(q, first, first + n)) tables += 2 * ci[this.pg(this.tableRunHead(q, ci[G_PAGES_GROWN]), PG_RUN)];
    return tables + (live === 0 ? 0 : Math.ceil(live / (this.pageSize - COMPACT_PAGE_GAP)) + 1);
  }

  /**
   * Empties the best window of n pages (bestWindow) for a run of p, partition by partition under
   * each one's lock (tryLock: p's lock is held; a busy partition makes this attempt fail): moves
   * the small records on it to pages outside it (`clearWindow`), and evicts what cannot move.
   * Returns true when every page of the window is free.
   *
   * It evicted every entry on the window before, whatever its age: in a full heap, where free
   * pages are rarely side by side, each hash table that grew past half a page (every table of a
   * partition being streamed to a new copy, say) took a window's entries with it, the keys read
   * most among them (in a 3-member cluster full at 16 MB that lost a member, 129 of the 225 hot
   * keys evicted afterwards went this way).
   */
  private evacuateWindow(p: number, n: number): boolean {
    const ci = this.ci;
    const first = this.bestWindow(n, false);
    if (first < 0) return false;
    const owners = new Set<number>();
    for (let g = first; g < first + n; g++) {
      const q = ci[this.pg(g, PG_OWNER)];
      if (q !== FREE) owners.add(q);
    }
    for (const q of owners) {
      const cleared = q === p ? this.clearWindow(q, first, first + n) : this.tryLockFor(q, WINDOW_LOCK_MS) && this.writeThenUnlock(q, () => this.clearWindow(q, first, first + n));
      if (!cleared) return false;
    }
    for (let g = first; g < first + n; g++) if (ci[this.pg(g, PG_OWNER)] !== FREE) return false;
    return true;
  }

  /**
   * q's part of evacuateWindow (q locked, inside beginWrite): the records on q's small pages in
   * [from, to) move to fresh pages outside it (compaction's copy, one page at a time); then
   * evictFrom evicts what is left there (a run, records no page could be had for) and frees q's
   * pages of the window. False when q's hash table is a run there, or a small one that could not
   * move.
   */
  private clearWindow(q: number, from: number, to: number): boolean {
    const ci = this.ci;
    const pb = PART_BASE + q * P_STRIDE;
    const tref = this.cu[pb + P_TABLE];
    if (tref === 0) return true;
    const tpage = ((tref - 1) * 8) >>> this.pageShift;
    if (tpage >= from && tpage < to && ci[this.pg(tpage, PG_KIND)] !== KIND_SMALL) return false;
    // a free page of the window itself would come back: keep taking (each is freed below, empty)
    this.moveSmallOff(q, from, to, () => {
      for (let tries = 0; tries <= to - from; tries++) {
        const next = this.takePages(q, 1, false);
        if (next < 0 || next < from || next >= to) return next;
      }
      return -1;
    });
    return this.evictFrom(q, from, to);
  }

  /**
   * Moves the records on q's small pages in [from, to) (q locked, inside beginWrite) to pages
   * `take` gives, one at a time (compaction's copy; emptyPage moves q's table too when it lies
   * on such a page), and stops at the first that finds no page. q's open page there is given up.
   */
  private moveSmallOff(q: number, from: number, to: number, take: () => number): void {
    const ci = this.ci;
    const pb = PART_BASE + q * P_STRIDE;
    const open = ci[pb + P_OPEN_PAGE];
    if (open >= from && open < to) ci[pb + P_OPEN_PAGE] = -1;
    const f = this.filler(-1, take);
    for (let g = from; g < to; g++) {
      if (ci[this.pg(g, PG_OWNER)] !== q || ci[this.pg(g, PG_KIND)] !== KIND_SMALL || ci[this.pg(g, PG_LIVE)] <= 0) continue;
      if (!this.emptyPage(q, g, f.move)) break;
    }
    f.close();
    if (f.page >= 0 && ci[pb + P_OPEN_PAGE] < 0) ci[pb + P_OPEN_PAGE] = f.page;
  }

  /** Returns q's small pages in [from, to) left with no live record to the pool (q locked). */
  private releaseEmpty(q: number, from: number, to: number): void {
    const ci = this.ci;
    for (let g = from; g < to; g++) {
      if (ci[this.pg(g, PG_OWNER)] === q && ci[this.pg(g, PG_KIND)] === KIND_SMALL && ci[this.pg(g, PG_LIVE)] <= 0) this.releasePage(q, g);
    }
  }

  /**
   * Moves every hash table of a run with a page in [first, first + n) out of it (`moveTableRun`),
   * owner by owner under its lock (tryLock within WINDOW_LOCK_MS, as evacuateWindow: p's is
   * held). False when one could not move (its owner busy, its place taken meanwhile): the
   * tables moved so far stay where they went, and evacuateWindow takes a window without one.
   * (A prototype of 2026-11-28 moved a table only to a run of pages free already, with no check
   * before makeRoom evicted for the window: in a churned heap, whose free pages lie apart, each
   * such attempt failed having evicted first.)
   */
  private moveTablesOut(p: number, first: number, n: number): boolean {
    const to = first + n;
    for (let q = 0; q < this.partitions; q++) {
      if (!this.tableRunIn(q, first, to)) continue;
      const move = (): boolean => this.moveTableRun(p, q, first, to);
      const moved = q === p ? move() : this.tryLockFor(q, WINDOW_LOCK_MS) && this.writeThenUnlock(q, move);
      if (!moved) {
        this.tableMovesFailed++;
        return false;
      }
    }
    return true;
  }

  /** True when q's hash table is a run of pages with a page in [from, to) (unlocked: a hint; under q's lock: the fact). */
  private tableRunIn(q: number, from: number, to: number): boolean {
    const g = this.tableRunHead(q, this.ci[G_PAGES_GROWN]);
    return g >= 0 && g < to && g + this.ci[this.pg(g, PG_RUN)] > from;
  }

  /**
   * Moves q's hash table, a run of pages, out of [from, to) (q locked, inside beginWrite; p, the
   * writer's partition, locked too): to a free run of its length outside the window, or one
   * `clearTarget` frees; copies the table there, publishes the new place and frees the old run,
   * as ensureTableRoom publishes a grown table. Readers of q that loaded the old place fail
   * their seqlock check (q's P_SEQ is odd throughout); a memoized read checks the table's ref
   * (slotHolds). A writer that dies halfway leaves the old table published, and repair frees
   * the new run (no slot points into it), or the new one, copied in full before it was
   * published, and repair frees the old run. True when the table is not, or no longer, a run
   * there; false when no place could be had.
   */
  private moveTableRun(p: number, q: number, from: number, to: number): boolean {
    if (!this.tableRunIn(q, from, to)) return true;
    const ci = this.ci;
    const pb = PART_BASE + q * P_STRIDE;
    const toff = (this.cu[pb + P_TABLE] - 1) * 8;
    const size = this.recordSize(toff);
    const len = ci[this.pg(toff >>> this.pageShift, PG_RUN)];
    let first = this.takePagesOutside(q, len, from, to);
    if (first < 0 && this.clearTarget(p, q, len, from, to)) first = this.takePagesOutside(q, len, from, to);
    if (first < 0) return false;
    const noff = first * this.pageSize;
    this.u8.copyWithin(noff, toff, toff + size);
    ci[this.pg(first, PG_USED)] = size;
    ci[this.pg(first, PG_LIVE)] = size;
    ci[pb + P_LIVE_BYTES] += size;
    this.cu[pb + P_TABLE] = noff / 8 + 1;
    this.freeRecord(q, toff);
    this.tableMoves++;
    return true;
  }

  /**
   * Frees `len` contiguous pages outside [from, to) for a table of q (moveTableRun): of the runs
   * of free and small pages there, the one with the fewest live bytes, whose records move to
   * free pages outside both (`moveSmallOff`, each owner under its lock; p and q are held). No
   * entry is evicted: a record no page could be had for stays, and the answer is false.
   */
  private clearTarget(p: number, q: number, len: number, from: number, to: number): boolean {
    const ci = this.ci;
    const grown = ci[G_PAGES_GROWN];
    let best = -1;
    let bestLive = Infinity;
    for (let g = 0, live = 0, run = 0; g < grown; g++) {
      if (g >= from && g < to) {
        // the window: no target crosses it
        g = to;
        run = 0;
        live = 0;
        if (g >= grown) break;
      }
      if (!this.movable(g)) {
        run = 0;
        live = 0;
        continue;
      }
      live += ci[this.pg(g, PG_OWNER)] === FREE ? 0 : Math.max(0, ci[this.pg(g, PG_LIVE)]);
      if (++run > len) live -= ci[this.pg(g - len, PG_OWNER)] === FREE ? 0 : Math.max(0, ci[this.pg(g - len, PG_LIVE)]);
      if (run >= len && live < bestLive) {
        bestLive = live;
        best = g - len + 1;
      }
    }
    if (best < 0) return false;
    const end = best + len;
    const owners = new Set<number>();
    for (let g = best; g < end; g++) if (ci[this.pg(g, PG_OWNER)] !== FREE) owners.add(ci[this.pg(g, PG_OWNER)]);
    for (const r of owners) {
      const off = (): boolean => {
        this.moveSmallOff(r, best, end, () => this.takePagesOutside(r, 1, best, end, from, to));
        this.releaseEmpty(r, best, end);
        return true;
      };
      if (r === p || r === q) off();
      else if (!(this.tryLockFor(r, WINDOW_LOCK_MS) && this.writeThenUnlock(r, off))) return false;
    }
    for (let g = best; g < end; g++) if (ci[this.pg(g, PG_OWNER)] !== FREE) return false;
    return true;
  }

  /**
   * q's lock within `ms` by tryLock alone (p's lock is held: a blocking acquire could deadlock
   * with a holder of q that waits for p); other threads hold a partition for microseconds, so a
   * short spin rides out their writes, where one tryLock failed a large write under load.
   */
  private tryLockFor(q: number, ms: number): boolean {
    const i = this.lockIndex(q);
    if (tryLock(this.ci, i)) return true;
    const end = performance.now() + ms;
    while (performance.now() < end) if (tryLock(this.ci, i)) return true;
    return false;
  }

  /**
   * Evicts every entry of q (locked, inside beginWrite) with a byte on pages [from, to), and
   * returns q's pages there to the pool. False when q's hash table lies there (it moved since
   * bestWindow looked).
   */
  private evictFrom(q: number, from: number, to: number): boolean {
    const ci = this.ci;
    const pb = PART_BASE + q * P_STRIDE;
    const tref = this.cu[pb + P_TABLE];
    if (tref === 0) return true;
    const toff = (tref - 1) * 8;
    const lo = from * this.pageSize;
    const hi = to * this.pageSize;
    if (toff < hi && toff + this.recordSize(toff) > lo) return false;
    const open = ci[pb + P_OPEN_PAGE];
    if (open >= from && open < to) ci[pb + P_OPEN_PAGE] = -1;
    const tword = (toff + E_HEADER) >>> 2;
    const cap = ci[pb + P_TABLE_CAP];
    for (let i = 0; i < cap; i++) {
      const ref = this.u32[tword + 2 * i + 1];
      if (ref === EMPTY || ref === TOMB) continue;
      const off = (ref - 1) * 8;
      if (off >= hi || off + this.recordSize(off) <= lo) continue;
      this.evicted(q, i, off);
    }
    // a page left with no live record (it was the open page, or held only dead records)
    this.releaseEmpty(q, from, to);
    return true;
  }

  private heapLock(): void {
    if (!lockSync(this.ci, G_HEAP_LOCK, this.lockTimeout)) throw new LockTimeoutError(`timed out after ${this.lockTimeout} ms waiting for the heap lock (page allocation)`, { timeoutMs: this.lockTimeout });
  }

  /**
   * Takes `n` contiguous free pages for partition `p` (growing the heap within its budget when
   * needed). Ordinary allocation leaves G_RESERVE pages for compaction. Returns the first page or -1.
   */
  private takePages(p: number, n: number, useReserve: boolean): number {
    const ci = this.ci;
    this.heapLock();
    try {
      const max = ci[G_PAGES_MAX];
      let grown = ci[G_PAGES_GROWN];
      const avail = ci[G_PAGES_FREE] + (max - grown) - (useReserve ? 0 : ci[G_RESERVE]);
      if (avail < n) return -1;
      let first = ci[G_PAGES_FREE] >= n ? this.findFree(n, grown) : -1;
      while (first < 0 && grown < max) {
        const target = Math.min(max, grown + Math.max(ci[G_GROW_STEP], n));
        this.buffers.heap.grow(target * this.pageSize);
        ci[G_PAGES_FREE] += target - grown;
        ci[G_PAGES_GROWN] = target;
        grown = target;
        this.refresh();
        first = this.findFree(n, grown);
      }
      return first < 0 ? -1 : this.claimPages(p, first, n);
    } finally {
      unlock(ci, G_HEAP_LOCK);
    }
  }

  /**
   * A free run of `n` grown pages for partition p that lies outside [from, to) and [from2, to2),
   * the reserve included (a table that moves frees as many at once), or -1. The first such run
   * from page 0.
   */
  private takePagesOutside(p: number, n: number, from: number, to: number, from2 = 0, to2 = 0): number {
    const ci = this.ci;
    this.heapLock();
    try {
      const grown = ci[G_PAGES_GROWN];
      for (let g = 0, run = 0; g < grown; g++) {
        run = ci[this.pg(g, PG_OWNER)] === FREE && (g < from || g >= to) && (g < from2 || g >= to2) ? run + 1 : 0;
        if (run === n) return this.claimPages(p, g - n + 1, n);
      }
      return -1;
    } finally {
      unlock(ci, G_HEAP_LOCK);
    }
  }

  /** Makes free pages [first, first + n) partition p's, a run when n > 1, at the head of its page list (heap lock held). */
  private claimPages(p: number, first: number, n: number): number {
    const ci = this.ci;
    // another thread may have grown the heap (and freed pages in it) since this thread last
    // looked: the pages found can lie beyond this thread's views
    if (this.u8.length !== this.buffers.heap.byteLength) this.refresh();
    for (let g = first; g < first + n; g++) {
      ci[this.pg(g, PG_USED)] = 0;
      ci[this.pg(g, PG_LIVE)] = 0;
      ci[this.pg(g, PG_KIND)] = n === 1 ? KIND_SMALL : g === first ? KIND_RUN_HEAD : KIND_RUN_TAIL;
      ci[this.pg(g, PG_RUN)] = g === first ? n : 0;
      ci[this.pg(g, PG_OWNER)] = p;
    }
    ci[G_PAGES_FREE] -= n;
    ci[G_FREE_HINT] = first + n;
    this.linkPage(p, first, n);
    return first;
  }

  /** Puts page g, the head of n pages, at the front of partition p's page list. */
  private linkPage(p: number, g: number, n: number): void {
    const ci = this.ci;
    const pb = PART_BASE + p * P_STRIDE;
    const head = ci[pb + P_HEAD_PAGE];
    ci[this.pg(g, PG_PREV)] = -1;
    ci[this.pg(g, PG_NEXT)] = head;
    if (head >= 0) ci[this.pg(head, PG_PREV)] = g;
    ci[pb + P_HEAD_PAGE] = g;
    ci[pb + P_PAGES] += n;
  }

  private findFree(n: number, grown: number): number {
    const ci = this.ci;
    if (n === 1) {
      // pages this thread freed lately: in a full heap the few free pages are those (compaction
      // takes one and frees two or more), where the scan below crossed thousands of taken ones
      const recent = this.recentFree;
      for (let k = 0; k < recent.length; k++) {
        const g = recent[k];
        if (g >= 0 && g < grown && ci[this.pg(g, PG_OWNER)] === FREE) return g;
      }
    }
    const start = ci[G_FREE_HINT] % Math.max(1, grown);
    let run = 0;
    for (let k = 0; k < grown * 2; k++) {
      const g = (start + k) % grown;
      if (g === 0) run = 0;
      if (ci[this.pg(g, PG_OWNER)] === FREE) {
        run++;
        if (run === n) return g - n + 1;
      } else run = 0;
    }
    return -1;
  }

  /** Returns a page (or a run) of partition `p` to the free pool. */
  private releasePage(p: number, page: number): void {
    const ci = this.ci;
    const pb = PART_BASE + p * P_STRIDE;
    const n = ci[this.pg(page, PG_KIND)] === KIND_RUN_HEAD ? ci[this.pg(page, PG_RUN)] : 1;
    const prev = ci[this.pg(page, PG_PREV)];
    const next = ci[this.pg(page, PG_NEXT)];
    if (prev >= 0) ci[this.pg(prev, PG_NEXT)] = next;
    else ci[pb + P_HEAD_PAGE] = next;
    if (next >= 0) ci[this.pg(next, PG_PREV)] = prev;
    if (ci[pb + P_OPEN_PAGE] === page) ci[pb + P_OPEN_PAGE] = -1;
    ci[pb + P_PAGES] -= n;
    this.heapLock();
    for (let g = page; g < page + n; g++) ci[this.pg(g, PG_OWNER)] = FREE;
    ci[G_PAGES_FREE] += n;
    unlock(ci, G_HEAP_LOCK);
    if (n === 1) this.recentFree[this.recentNext++ & (RECENT_FREE - 1)] = page;
  }

  private recordSize(off: number): number {
    const kl = this.u32[(off + E_KEYMAP) >>> 2] & 0xffff;
    return E_HEADER + align8(kl) + align8(this.u32[(off + E_VALLEN) >>> 2]);
  }

  private freeRecord(p: number, off: number): void {
    const ci = this.ci;
    const size = this.recordSize(off);
    this.u8[off + E_FLAGS] = 0;
    const page = off >>> this.pageShift;
    ci[PART_BASE + p * P_STRIDE + P_LIVE_BYTES] -= size;
    if (ci[this.pg(page, PG_KIND)] === KIND_RUN_HEAD) {
      this.releasePage(p, page);
      return;
    }
    const live = (ci[this.pg(page, PG_LIVE)] -= size);
    if (live <= 0 && ci[PART_BASE + p * P_STRIDE + P_OPEN_PAGE] !== page) this.releasePage(p, page);
  }

  /**
   * Makes room in partition `p` for a record of `need` bytes when no free page is available:
   * compacts its sparsest pages into one reserve page (which becomes the open page), evicting
   * approximately-least-recently-used entries first when no page is sparse enough. Returns false
   * when the partition has nothing left to evict or compact.
   */
  private reclaim(p: number, need: number): boolean {
    const live = PART_BASE + p * P_STRIDE + P_LIVE_BYTES;
    // compaction is tried again once the evictions freed what it fell short by (compactShort)
    let retryAt = Infinity;
    for (let round = 0; round < 1 << 16; round++) {
      if (this.ci[live] <= retryAt) {
        if (this.compact(p, need)) return true;
        retryAt = this.ci[live] - this.compactShort;
      }
      if (this.evictSampled(p, 4) === 0) return false;
      // eviction may have emptied a page entirely (it is freed at once)
      if (this.availablePages() > 0) return true;
    }
    return false;
  }

  private availablePages(): number {
    const ci = this.ci;
    return ci[G_PAGES_FREE] + ci[G_PAGES_MAX] - ci[G_PAGES_GROWN] - ci[G_RESERVE];
  }

  /**
   * Copies the live records of the sparsest small pages of `p` (`compactionVictims`) into fewer
   * fresh pages, frees the victims, and makes the last fresh page the open page when it has more
   * room than the open page (or that was a victim). The first fresh
   * page comes from the reserve; each victim is freed as soon as its records are out, so the next
   * fresh page is usually a victim already emptied. With `need` > 0 (an allocation of that many
   * bytes waits) true means the open page now has that room; with 0, that pages went back to the
   * pool. A fresh page that cannot be had stops the copy: what was moved points to its new place,
   * and the victim being copied keeps the rest.
   */
  private compact(p: number, need: number): boolean {
    const ci = this.ci;
    const pb = PART_BASE + p * P_STRIDE;
    const victims = this.compactionVictims(p, need);
    if (victims === null) return false;
    const first = this.takePages(p, 1, true);
    if (first < 0) return false;
    const f = this.filler(first, () => this.takePages(p, 1, true));
    let released = 0;
    for (const g of victims) {
      if (!this.emptyPage(p, g, f.move)) break;
      this.releasePage(p, g);
      released++;
    }
    f.close();
    // The roomier of the last fresh page and the open page (when it was not a victim) takes the
    // next records.
    const open = ci[pb + P_OPEN_PAGE];
    if (open < 0 || ci[this.pg(open, PG_USED)] > f.used) ci[pb + P_OPEN_PAGE] = f.page;
    return need > 0 ? this.pageSize - f.used >= need : released > f.taken;
  }

  /**
   * Copies records into fresh pages one after the other (compaction, clearWindow): `move(off)`
   * copies the record at off (with its access stamp) to the current page, taking the next one
   * from `take` when it is full, and returns its new offset (-1 when `take` had none); `close()`
   * sets the current page's used and live bytes. `first`: a page taken already, or -1.
   *
   * Records under 64 bytes share a unit of the access map with the next record (layout.ts,
   * ACCESS_SHIFT), and a touch of either freshens both. A move into a unit that a record moved
   * just before starts in keeps the fresher of the two stamps: until 2026-11-28 the later record's
   * stamp replaced the earlier's, so a small key read a moment ago took the age of a cold neighbour
   * written long before, and every compaction could do it again (evict-failover.integration under
   * load: hot keys of 48 bytes evicted at ages of 31-69 s, 16-25 s after their last read).
   */
  private filler(first: number, take: () => number): { move: (off: number) => number; close: () => void; page: number; used: number; taken: number } {
    const ci = this.ci;
    /** Where the last record moved went (-1: none yet). */
    let last = -1;
    const f = {
      page: first,
      used: 0,
      taken: first < 0 ? 0 : 1,
      close: (): void => {
        if (f.page < 0) return;
        ci[this.pg(f.page, PG_USED)] = f.used;
        ci[this.pg(f.page, PG_LIVE)] = f.used;
      },
      move: (off: number): number => {
        const size = this.recordSize(off);
        if (f.page < 0 || f.used + size > this.pageSize) {
          f.close();
          const next = take();
          if (next < 0) return -1;
          f.page = next;
          f.taken++;
          f.used = 0;
        }
        const noff = f.page * this.pageSize + f.used;
        this.u8.copyWithin(noff, off, off + size);
        const u = noff >>> ACCESS_SHIFT;
        const stamp = this.acc[off >>> ACCESS_SHIFT];
        if (last < 0 || last >>> ACCESS_SHIFT !== u) this.acc[u] = stamp;
        else {
          const clock = ci[G_CLOCK];
          if (((clock - stamp) & CLOCK_MASK) < ((clock - this.acc[u]) & CLOCK_MASK)) this.acc[u] = stamp;
        }
        last = noff;
        f.used += size;
        ci[this.pg(off >>> this.pageShift, PG_LIVE)] -= size;
        return noff;
      },
    };
    return f;
  }

  /**
   * compact's choice, sparsest small pages first: the fewest that fit into one page fewer than
   * their number (with `need` bytes left over in the last), then more while they still fit into
   * as many pages, up to COMPACT_MAX_VICTIMS. With `need` > 0 and no such set, the sparsest page
   * alone when at most half full (it frees nothing, only room: worth the copy when that room is
   * at least half a page, otherwise evict more first). Null when there is nothing worth copying.
   */
  private compactionVictims(p: number, need: number): number[] | null {
    const ci = this.ci;
    const ps = this.pageSize;
    this.compactShort = 0;
    // the COMPACT_MAX_VICTIMS sparsest small pages, sparsest first (an insertion into a short
    // sorted list: this runs on every round of releaseOnePage, and a partition has dozens of pages)
    const pages = this.sparsest;
    const lives = this.sparsestLive;
    let n = 0;
    const open = ci[PART_BASE + p * P_STRIDE + P_OPEN_PAGE];
    for (let g = ci[PART_BASE + p * P_STRIDE + P_HEAD_PAGE], guard = 0; g >= 0 && guard < this.geo.maxPages; g = ci[this.pg(g, PG_NEXT)], guard++) {
      if (ci[this.pg(g, PG_KIND)] !== KIND_SMALL) continue;
      // the open page's room past its bump offset is not garbage: it is counted as taken, or the
      // page a partition just took, the sparsest of all, would be copied away at once
      const live = g === open ? ci[this.pg(g, PG_LIVE)] + ps - ci[this.pg(g, PG_USED)] : ci[this.pg(g, PG_LIVE)];
      if (live >= ps || (n === COMPACT_MAX_VICTIMS && live >= lives[n - 1])) continue;
      let j = n < COMPACT_MAX_VICTIMS ? n++ : n - 1;
      for (; j > 0 && lives[j - 1] > live; j--) {
        lives[j] = lives[j - 1];
        pages[j] = pages[j - 1];
      }
      lives[j] = live;
      pages[j] = g;
    }
    if (n === 0) return null;
    // records do not split across pages: each filled page may end with a gap
    const fits = (total: number, filled: number): boolean => total + need + filled * COMPACT_PAGE_GAP <= filled * ps;
    let total = lives[0];
    let k = 1;
    while (k < n && !(k >= 2 && fits(total, k - 1))) total += lives[k++];
    if (k >= 2 && fits(total, k - 1)) {
      const filled = k - 1;
      while (k < n && fits(total + lives[k], filled)) total += lives[k++];
      return Array.from(pages.subarray(0, k));
    }
    if (need > 0 && lives[0] <= ps / 2 && lives[0] + need <= ps) return [pages[0]];
    if (n === COMPACT_MAX_VICTIMS) this.compactShort = this.victimsShort(need);
    return null;
  }

  /**
   * After compactionVictims found nothing worth copying among the COMPACT_MAX_VICTIMS sparsest
   * pages (in its scratch): the bytes the partition must free before it can find something, a
   * lower bound. Freeing F bytes lowers the sum of any k pages by at most F, and a page that
   * turns sparse (or a fuller one) adds a sum no lower, so each k's test fails while F is under
   * what it missed by. reclaim and releaseOnePage evict that much before asking again (they
   * asked after every 4 evictions: in a full grid, a fifth of an insert's time went to asking).
   */
  private victimsShort(need: number): number {
    const ps = this.pageSize;
    const lives = this.sparsestLive;
    let short = need > 0 ? Math.max(lives[0] - ps / 2, lives[0] + need - ps) : Infinity;
    let total = lives[0];
    for (let k = 2; k <= COMPACT_MAX_VICTIMS; k++) {
      total += lives[k - 1];
      short = Math.min(short, total + need + (k - 1) * COMPACT_PAGE_GAP - (k - 1) * ps);
    }
    return Math.max(0, short);
  }

  /**
   * Moves every entry of small page g (and p's table, when it lies there, last) through `move`,
   * re-pointing their slots. False when `move` could not place one (no fresh page): what it placed
   * points to its new place, the rest stays on g.
   */
  private emptyPage(p: number, g: number, move: (off: number) => number): boolean {
    const ci = this.ci;
    const pb = PART_BASE + p * P_STRIDE;
    const tref = this.cu[pb + P_TABLE];
    if (tref === 0) return true;
    const toff = (tref - 1) * 8;
    const tword = ((toff + E_HEADER) >>> 2);
    const cap = ci[pb + P_TABLE_CAP];
    const holdsTable = toff >>> this.pageShift === g;
    const tableSize = holdsTable ? this.recordSize(toff) : 0;
    // The page walk (cost: the records moved) trusts headers, which a writer that died
    // mid-allocation can leave not tiling a page; the live bytes say whether it found every
    // entry, and if not the table walk moves the rest (what it moved already points elsewhere).
    const live = ci[this.pg(g, PG_LIVE)];
    const moved = this.moveLiveRecords(g, tword, cap, move);
    if (moved < 0) return false;
    if (moved + tableSize !== live) {
      for (let i = 0; i < cap; i++) {
        const ref = this.u32[tword + 2 * i + 1];
        if (ref === EMPTY || ref === TOMB) continue;
        const off = (ref - 1) * 8;
        if (off >>> this.pageShift !== g || off === toff) continue;
        const noff = move(off);
        if (noff < 0) return false;
        this.u32[tword + 2 * i + 1] = noff / 8 + 1;
      }
    }
    if (holdsTable) {
      const noff = move(toff);
      if (noff < 0) return false;
      this.cu[pb + P_TABLE] = noff / 8 + 1;
    }
    return true;
  }

  /**
   * compact's page walk: moves every entry record on small page g that table `tword` (cap slots)
   * references, through `move`, and re-points its slot. Stops at a header that does not fit the
   * page. Returns the bytes moved, or -1 when `move` could not place a record.
   */
  private moveLiveRecords(g: number, tword: number, cap: number, move: (off: number) => number): number {
    const u32 = this.u32;
    const start = g * this.pageSize;
    const end = start + Math.min(this.pageSize, this.ci[this.pg(g, PG_USED)]);
    const mask = cap - 1;
    let bytes = 0;
    for (let off = start; off + E_HEADER <= end;) {
      const size = this.recordSize(off);
      if (off + size > end) break;
      if ((this.u8[off + E_FLAGS] & (F_LIVE | F_TABLE)) === F_LIVE) {
        const ref = off / 8 + 1;
        for (let i = u32[(off + E_HASH) >>> 2] & mask, n = 0; n < cap; n++, i = (i + 1) & mask) {
          const r = u32[tword + 2 * i + 1];
          if (r === EMPTY) break;
          if (r !== ref) continue;
          const noff = move(off);
          if (noff < 0) return -1;
          u32[tword + 2 * i + 1] = noff / 8 + 1;
          bytes += size;
          break;
        }
      }
      off += size;
    }
    return bytes;
  }

  /**
   * Sampled LRU eviction (Redis's maxmemory-samples idea): `rounds` times, look at EVICT_SAMPLES
   * live entries at random table positions and evict the one with the oldest access clock.
   * Stops at a sample whose oldest entry is younger than `floor` (clock ticks). Returns the
   * number evicted.
   */
  evictSampled(p: number, rounds: number, floor = 0): number {
    const ci = this.ci;
    const pb = PART_BASE + p * P_STRIDE;
    let evicted = 0;
    const clock = ci[G_CLOCK];
    for (let r = 0; r < rounds; r++) {
      if (ci[pb + P_COUNT] === 0) break;
      const cap = ci[pb + P_TABLE_CAP];
      const tword = (((this.cu[pb + P_TABLE] - 1) * 8 + E_HEADER) >>> 2);
      let best = -1;
      let bestAge = -1;
      let bestOff = 0;
      let seen = 0;
      let i = (Math.random() * cap) | 0;
      for (let n = 0; n < cap && seen < EVICT_SAMPLES; n++, i = (i + 1) & (cap - 1)) {
        const ref = this.u32[tword + 2 * i + 1];
        if (ref === EMPTY || ref === TOMB) continue;
        seen++;
        const off = (ref - 1) * 8;
        const age = (clock - this.acc[off >>> ACCESS_SHIFT]) & CLOCK_MASK;
        // Within one clock tick, the older write goes first (versions grow with every write). The
        // versions are read only for such a tie: each is a cache miss on a record.
        if (age > bestAge || (age === bestAge && this.u32[(off + E_VERSION) >>> 2] < this.u32[(bestOff + E_VERSION) >>> 2])) {
          bestAge = age;
          best = i;
          bestOff = off;
        }
      }
      if (best < 0 || bestAge < floor) break;
      this.evicted(p, best, bestOff);
      evicted++;
    }
    return evicted;
  }

  /**
   * Evicts the entry at table slot `slot` (record at `off`) of p (locked, inside beginWrite). On a
   * cluster member that is p's primary, the key goes into the eviction journal first, so the main
   * thread ships its state (absent) to p's copies: a copy then drops it too.
   */
  private evicted(p: number, slot: number, off: number): void {
    const km = this.u32[(off + E_KEYMAP) >>> 2];
    if (this.journal.slots !== 0 && this.primaryHere(p)) this.journal.push(p, km >>> 16, this.u8, off + E_HEADER, km & 0xffff);
    this.countEviction(p, km >>> 16, this.u8, off + E_HEADER, km & 0xffff, off);
    this.unlinkAt(p, slot, off, km >>> 16);
  }

  /**
   * An eviction from p of the key of `mapId` held in `len` bytes of `bytes` at `at` (its record at
   * `off`, -1 when the key was not held): counted, and recorded in the test-only eviction log.
   */
  private countEviction(p: number, mapId: number, bytes: Uint8Array, at: number, len: number, off = -1): void {
    this.ci[PART_BASE + p * P_STRIDE + P_EVICTIONS]++;
    if (EVICTION_LOG) logEviction(p, this.mapName(mapId), bytes, at, len, this.primaryHere(p), off < 0 ? -1 : (this.ci[G_CLOCK] - this.acc[off >>> ACCESS_SHIFT]) & CLOCK_MASK);
  }

  /**
   * Memory is full: makes room for partition p (locked, inside beginWrite) by evicting from the
   * partition whose sampled entries are oldest (`victimOrder`), p itself included. `need` > 0: a
   * small record of that size (p's own room may come from compacting its pages, `reclaim`);
   * 0: a whole page back to the pool (for a run). Other partitions are taken with tryLock only:
   * p's lock is held, and a blocking acquire could deadlock. Falls back to the partition holding
   * the most pages (two or more) when none of the sample gave room.
   *
   * Choosing by page count alone (the rule before) treated a partition holding a large value as
   * the richest one: it was emptied first, the value just written with it, while older entries
   * of other partitions stayed.
   */
  private makeRoom(p: number, need: number): boolean {
    this.reshapes++;
    // a copy on a cluster member packs its own pages before anything is evicted for it
    if (need > 0 && this.isCopy(p) && this.compact(p, need)) return true;
    const order = this.victimOrder(p, null);
    const ages = this.victimAges;
    // Two passes. The first frees a page of a candidate only with entries older than the next
    // candidate's oldest sample: releaseOnePage evicts oldest first within one partition until a
    // page of it is free, and on a partition with few entries left it reached keys used a
    // millisecond ago (the fault harness's memory mode: 13 of 20 hot counters evicted in one
    // schedule, by one member, again within ~75 ms). The second is the rule before, floors off.
    // (The last candidate's floor is half its own oldest sample.)
    // A copy (a replicated write, a snapshot chunk) takes room from primaries only by what they
    // have not used for COPY_FLOOR, and then from copies (stealPage); failing that, the caller drops
    // the key as an eviction (putCopyState). Before, a member whose memory filled with copies
    // streamed in by a migration evicted its primaries' newest entries for them, counters hit
    // every 50 ms among them (native-notes.md, "The cluster's LRU").
    const copy = this.isCopy(p);
    for (let pass = 0; pass < (copy ? 1 : 2); pass++) {
      for (let i = 0; i < order.length; i++) {
        const q = order[i];
        let floor = pass === 1 ? 0 : firstPassFloor(ages, i);
        if (copy && q !== p && floor < COPY_FLOOR) floor = COPY_FLOOR;
        if (pass === 1 && q === p && need > 0) continue; // reclaim has no floor: tried once
        if (q === p) {
          if (need > 0 ? this.reclaim(p, need) : this.releaseOnePage(p, floor)) return true;
        } else if (tryLock(this.ci, this.lockIndex(q)) && this.writeThenUnlock(q, () => this.releaseOnePage(q, floor))) {
          return true;
        }
      }
    }
    // p was in victimOrder's list (reclaim or releaseOnePage was tried on it there)
    return this.stealPage(p, 2, copy);
  }

  /**
   * Evictions so far from the partitions this member is primary for (all of them outside a
   * cluster): the cluster's pressure signal (cluster/replicas.ts, `sendPressure`).
   */
  primaryEvictions(): number {
    const ci = this.ci;
    let n = 0;
    for (let q = 0; q < this.partitions; q++) if (!this.isCopy(q)) n += ci[PART_BASE + q * P_STRIDE + P_EVICTIONS];
    return n;
  }

  /**
   * The age in clock ticks of what makeRoom would evict next: the oldest sampled age of
   * victimOrder's first candidate (primaries only on a cluster data member); 0 when there is none.
   * A hint read without locks, like victimOrder itself.
   */
  evictionAge(): number {
    const order = this.victimOrder(-1, null);
    return order.length === 0 ? 0 : this.victimAges[0];
  }

  /**
   * The virtual nodes' background eviction (runtime/worker.ts, `pressureTick`): frees a page of
   * one of `among` by makeRoom's first pass alone — a candidate gives up entries older than the
   * next candidate's oldest sample (the last, than half its own) and never one younger than
   * BACKGROUND_FLOOR ticks. False when none could: what is left is recent, and a writer that finds
   * no free page makes room itself. Before 2026-11-28 it emptied a page of the oldest candidate
   * with no floor, and took a key used one tick before (native-notes.md, "The cluster's LRU").
   * Waits at most 10 ms for each candidate's lock; the caller holds no partition lock.
   */
  releaseInBackground(among: readonly number[]): boolean {
    const order = this.victimOrder(-1, among);
    const ages = this.victimAges;
    for (let i = 0; i < order.length; i++) {
      const q = order[i];
      const floor = Math.max(BACKGROUND_FLOOR, firstPassFloor(ages, i));
      if (ages[i] < floor) continue;
      if (lockSync(this.ci, this.lockIndex(q), 10) && this.writeThenUnlock(q, () => this.releaseOnePage(q, floor))) return true;
    }
    return false;
  }

  /**
   * Approximate global LRU across partitions (Redis's eviction pool, one level up): up to
   * VICTIM_PARTITIONS partitions — `p` (when >= 0) and the others of `among` (or of every
   * partition) holding the most pages, two or more — ordered by the age of the oldest of a few of
   * their entries sampled at random, oldest first; equal ages, the one holding more pages first.
   * On a cluster data member only primaries are drawn, and p, when it is a copy, comes last
   * (`isCopy`); copies are otherwise evicted only by makeRoom's last resort, stealPage.
   * (Drawing the others at random instead kept the newest entries less well in a cluster that lost
   * a member while full: 1,732-1,806 of the newest 2,000 keys readable afterwards, against
   * 1,776-1,868 this way and 1,843-1,905 with the page count alone.)
   */
  victimOrder(p: number, among: readonly number[] | null): number[] {
    const ci = this.ci;
    const clock = ci[G_CLOCK];
    const picked: number[] = [];
    const ages: number[] = [];
    const add = (q: number, minPages: number): void => {
      if (picked.includes(q) || ci[PART_BASE + q * P_STRIDE + P_PAGES] < minPages) return;
      picked.push(q);
      ages.push(this.sampledAge(q, clock));
    };
    // p itself may make room by compacting its own pages, however few
    if (p >= 0) add(p, 0);
    // then the partitions holding the most pages (keys hash evenly, so those are the ones that
    // grew the most)
    const n = among === null ? this.partitions : among.length;
    const top = this.richest;
    const pages = this.richestPages;
    let t = 0;
    for (let k = 0; k < n; k++) {
      const q = among === null ? k : among[k];
      const pg = ci[PART_BASE + q * P_STRIDE + P_PAGES];
      if (q === p || pg < 2 || (t === VICTIM_PARTITIONS && pg <= pages[t - 1]) || this.isCopy(q)) continue;
      let j = t < VICTIM_PARTITIONS ? t++ : t - 1;
      for (; j > 0 && pages[j - 1] < pg; j--) {
        pages[j] = pages[j - 1];
        top[j] = top[j - 1];
      }
      pages[j] = pg;
      top[j] = q;
    }
    for (let j = 0; j < t && picked.length < VICTIM_PARTITIONS; j++) add(top[j], 2);
    const idx = picked.map((_, i) => i);
    idx.sort((a, b) => ages[b] - ages[a] || ci[PART_BASE + picked[b] * P_STRIDE + P_PAGES] - ci[PART_BASE + picked[a] * P_STRIDE + P_PAGES]);
    const order = idx.map((i) => picked[i]);
    this.victimAges = idx.map((i) => ages[i]);
    // p, when it is a copy, after every primary
    if (p >= 0 && order.length > 1 && this.isCopy(p)) {
      const at = order.indexOf(p);
      order.push(order.splice(at, 1)[0]);
      this.victimAges.push(this.victimAges.splice(at, 1)[0]);
    }
    return order;
  }

  /**
   * Whether p is a copy on a cluster data member (not primary here, or primary without a running
   * lease). Copies evict last: they drop what their primary evicts (the eviction journal), and
   * reads, which age entries, go to primaries, so a copy's own sampling would pick the keys read
   * most and written least.
   */
  private isCopy(p: number): boolean {
    return this.journal.slots !== 0 && !this.primaryHere(p);
  }

  /**
   * The touch sweep of a virtual node (p locked by the caller; a cluster data member that is p's
   * primary): puts every entry of p accessed at or after clock tick `since` into the touch
   * journal (`touches`) as J_TOUCHED, for the main thread to tell p's copies (their LRU stamps then
   * follow the reads, which only the primary sees). Walks p's table from slot `from` and journals
   * at most `budget` entries (how many: `touchesJournaled`); returns the slot to resume at, or -1
   * when the walk is done. It stops early too when the touch journal is full.
   *
   * An entry written after p's write sequence was `seqFloor` (`writeSeq(p)` when `since` was
   * taken) is skipped: its copies applied that write and stamped it then. Before, under a write
   * burst the sweep journalled every key written, up to its budget (1,000 a tick) and as many
   * touches on the wire, ahead of the keys that were only read.
   */
  journalTouched(p: number, since: number, from: number, budget: number, seqFloor: number): number {
    this.viewsForLocked();
    const pb = PART_BASE + p * P_STRIDE;
    const tref = this.cu[pb + P_TABLE];
    if (tref === 0 || this.ci[pb + P_COUNT] === 0) return -1;
    const tword = (((tref - 1) * 8 + E_HEADER) >>> 2);
    const cap = this.ci[pb + P_TABLE_CAP];
    const clock = this.ci[G_CLOCK];
    const window = (clock - since) & CLOCK_MASK;
    const seq = this.cu[pb + P_WRITE_SEQ];
    const written = (seq - seqFloor) >>> 0; // versions seq - written + 1 .. seq came after seqFloor
    this.touchesJournaled = 0;
    for (let i = Math.max(0, from); i < cap; i++) {
      const ref = this.u32[tword + 2 * i + 1];
      if (ref === EMPTY || ref === TOMB) continue;
      const off = (ref - 1) * 8;
      if (((clock - this.acc[off >>> ACCESS_SHIFT]) & CLOCK_MASK) > window) continue;
      if (((seq - this.u32[(off + E_VERSION) >>> 2]) >>> 0) < written) continue;
      if (this.touchesJournaled === budget) return i;
      const km = this.u32[(off + E_KEYMAP) >>> 2];
      if (!this.touches.push(p, km >>> 16, this.u8, off + E_HEADER, km & 0xffff, J_TOUCHED)) return i;
      this.touchesJournaled++;
    }
    return -1;
  }

  /** p's write sequence: the version its next write gets, less one (wraps at 2^32). */
  writeSeq(p: number): number {
    return this.cu[PART_BASE + p * P_STRIDE + P_WRITE_SEQ];
  }

  /**
   * A copy's side of the touch sweep: stamps key of map `mapName` (of partition p) as accessed
   * now, if present. Never registers a map; skips a partition whose lock is busy (stamps are hints).
   */
  touchKey(mapName: string, key: string, p: number): void {
    const id = this.mapId(mapName, false);
    // a key of another partition than the one the sender's fence was checked for: skipped
    if (id < 0 || this.setKey(key, id) < 0 || this.kpart !== p) return;
    if (!tryLock(this.ci, this.lockIndex(p))) return;
    try {
      const off = this.probe(p, id);
      if (off >= 0) this.acc[off >>> ACCESS_SHIFT] = this.ci[G_CLOCK];
    } finally {
      unlock(this.ci, this.lockIndex(p));
    }
  }

  /**
   * Age in clock ticks of the oldest of EVICT_SAMPLES entries of q sampled at random (0 when none
   * was found). Reads q's table without q's lock when another thread may hold it: a hint, since
   * a torn read gives a wrong age; every index is bounded, so it never reads outside the views.
   */
  private sampledAge(q: number, clock: number): number {
    const pb = PART_BASE + q * P_STRIDE;
    const tref = this.cu[pb + P_TABLE];
    const cap = this.cu[pb + P_TABLE_CAP];
    if (tref === 0 || cap === 0 || (cap & (cap - 1)) !== 0) return 0;
    const tword = (((tref - 1) * 8 + E_HEADER) >>> 2);
    if (!this.inBounds((tword + cap * 2) * 4)) return 0;
    const u32 = this.u32;
    const acc = this.acc;
    let oldest = 0;
    let seen = 0;
    let i = (Math.random() * cap) | 0;
    for (let n = 0; n < cap && n < 256 && seen < EVICT_SAMPLES; n++, i = (i + 1) & (cap - 1)) {
      const ref = u32[tword + 2 * i + 1];
      if (ref === EMPTY || ref === TOMB) continue;
      seen++;
      const a = ((ref - 1) * 8) >>> ACCESS_SHIFT;
      if (a >= acc.length) continue;
      const age = (clock - acc[a]) & CLOCK_MASK;
      if (age > oldest) oldest = age;
    }
    return oldest;
  }

  /**
   * Why this thread's last put found no room, for GRID_ERR_MEMORY_FULL: nothing left to evict, or
   * (a value over half a page) no window of contiguous pages that could be emptied, because every
   * such window holds a hash table of a run that has no free run of its length outside the window
   * to move to (bestWindow): in a heap whose free pages lie apart, say.
   */
  fullMessage(): string {
    const n = this.noWindow;
    this.noWindow = 0;
    if (n === 0) return 'memory budget exhausted and nothing left to evict';
    return `memory budget too fragmented for this value: no ${Math.round((n * this.pageSize) / 1024)} KiB of contiguous pages can be freed (every such window holds a partition's hash table with no free run outside it to move to); give the grid more memory, fewer partitions, or store smaller values`;
  }

  /**
   * Frees a page by evicting from the partitions holding the most pages (at least `minPages`;
   * with `copiesOnly`, copies only): makeRoom's last resort, when its sample gave nothing.
   * Uses tryLock only: we already hold p's lock, and a blocking acquire could deadlock.
   * Returns true when at least one page went back to the pool.
   */
  private stealPage(p: number, minPages: number, copiesOnly = false): boolean {
    const ci = this.ci;
    const order: number[] = [];
    for (let q = 0; q < this.partitions; q++) if (q !== p && ci[PART_BASE + q * P_STRIDE + P_PAGES] >= minPages && (!copiesOnly || this.isCopy(q))) order.push(q);
    if (order.length === 0) return false;
    order.sort((a, b) => ci[PART_BASE + b * P_STRIDE + P_PAGES] - ci[PART_BASE + a * P_STRIDE + P_PAGES]);
    for (let k = 0; k < order.length && k < 8; k++) {
      const q = order[k];
      if (tryLock(ci, this.lockIndex(q)) && this.writeThenUnlock(q, () => this.releaseOnePage(q))) return true;
    }
    return false;
  }

  /** `fn` on partition q, whose lock the caller just took (tryLock), inside beginWrite; then q's lock is released. */
  private writeThenUnlock(q: number, fn: () => boolean): boolean {
    try {
      this.beginWrite(q);
      try {
        return fn();
      } finally {
        this.endWrite(q);
      }
    } finally {
      unlock(this.ci, this.lockIndex(q));
    }
  }

  /**
   * Returns at least one page of `q` to the pool (q locked, inside beginWrite): evicts until a page
   * empties or until its sparsest pages can be compacted into fewer (`compact`). With `floor` > 0
   * it gives up, having evicted what it did, once q's oldest sampled entry is younger than that
   * many clock ticks: makeRoom passes the age of its next candidate partition, so that emptying a
   * page of q does not take keys used a moment ago while another partition holds older ones.
   */
  releaseOnePage(q: number, floor = 0): boolean {
    const ci = this.ci;
    const pb = PART_BASE + q * P_STRIDE;
    const before = ci[G_PAGES_FREE] + ci[G_PAGES_MAX] - ci[G_PAGES_GROWN];
    const gained = (): boolean => ci[G_PAGES_FREE] + ci[G_PAGES_MAX] - ci[G_PAGES_GROWN] > before;
    let retryAt = Infinity; // as in reclaim
    for (let round = 0; round < 1 << 16 && ci[pb + P_PAGES] > 0; round++) {
      if (ci[pb + P_LIVE_BYTES] <= retryAt) {
        this.compact(q, 0);
        if (gained()) return true;
        retryAt = ci[pb + P_LIVE_BYTES] - this.compactShort;
      }
      // nothing left to evict (what remains is the table), or nothing old enough
      if (this.evictSampled(q, 4, floor) === 0) return gained();
    }
    return gained();
  }

  // ── expiry (run by the owning virtual node) ───────────────────────────────────────────────────

  /**
   * Redis-style active expiry on one partition (caller holds the lock, inside beginWrite):
   * sample up to 20 entries with an expiry, drop the expired ones, and go again while more than a
   * quarter of the sample had expired. Returns how many were removed.
   */
  expireSample(p: number, now: number, maxRounds = 16): number {
    const ci = this.ci;
    const pb = PART_BASE + p * P_STRIDE;
    let removed = 0;
    for (let round = 0; round < maxRounds; round++) {
      if (ci[pb + P_TTL_COUNT] <= 0 || ci[pb + P_COUNT] === 0) break;
      const cap = ci[pb + P_TABLE_CAP];
      const tword = (((this.cu[pb + P_TABLE] - 1) * 8 + E_HEADER) >>> 2);
      let sampled = 0;
      let expired = 0;
      let i = (Math.random() * cap) | 0;
      for (let n = 0; n < cap && sampled < 20; n++, i = (i + 1) & (cap - 1)) {
        const ref = this.u32[tword + 2 * i + 1];
        if (ref === EMPTY || ref === TOMB) continue;
        const off = (ref - 1) * 8;
        const e = this.f64[(off + E_EXPIRES) >>> 3];
        if (e === 0) continue;
        sampled++;
        if (e <= now) {
          this.unlinkAt(p, i, off, this.u32[(off + E_KEYMAP) >>> 2] >>> 16);
          ci[pb + P_EXPIRATIONS]++;
          expired++;
        }
      }
      removed += expired;
      if (expired * 4 <= sampled) break;
    }
    return removed;
  }

  /**
   * INFO keyspace's avg_ttl sample (caller holds the lock): from a random slot on, at most
   * `slots` slots, adds the time left (ms) of each live entry of `mapId` whose expiry is still to
   * come to acc.sum, and counts it in acc.n, up to `max` entries. Entries without an expiry or
   * whose time passed are skipped, as Redis's expiry cycle leaves them out of its average.
   */
  ttlSample(p: number, mapId: number, now: number, max: number, slots: number, acc: { sum: number; n: number }): void {
    this.viewsForLocked();
    const pb = PART_BASE + p * P_STRIDE;
    const tref = this.cu[pb + P_TABLE];
    if (tref === 0) return;
    const cap = this.ci[pb + P_TABLE_CAP];
    const tword = (((tref - 1) * 8 + E_HEADER) >>> 2);
    let i = (Math.random() * cap) | 0;
    let taken = 0;
    for (let k = 0; k < cap && k < slots && taken < max; k++, i = (i + 1) & (cap - 1)) {
      const ref = this.u32[tword + 2 * i + 1];
      if (ref === EMPTY || ref === TOMB) continue;
      const off = (ref - 1) * 8;
      if (this.u32[(off + E_KEYMAP) >>> 2] >>> 16 !== mapId) continue;
      const e = this.f64[(off + E_EXPIRES) >>> 3];
      if (e <= now) continue; // 0: no expiry
      acc.sum += e - now;
      acc.n++;
      taken++;
    }
  }

  // ── whole-partition walks (caller holds the lock) ─────────────────────────────────────────────

  /** Calls fn(offset, slot) for every live record of `mapId` (all maps when mapId < 0). */
  forEachRecord(p: number, mapId: number, fn: (off: number, slot: number) => void): void {
    const pb = PART_BASE + p * P_STRIDE;
    const tref = this.cu[pb + P_TABLE];
    if (tref === 0) return;
    const cap = this.ci[pb + P_TABLE_CAP];
    const tword = (((tref - 1) * 8 + E_HEADER) >>> 2);
    for (let i = 0; i < cap; i++) {
      const ref = this.u32[tword + 2 * i + 1];
      if (ref === EMPTY || ref === TOMB) continue;
      const off = (ref - 1) * 8;
      if (mapId >= 0 && this.u32[(off + E_KEYMAP) >>> 2] >>> 16 !== mapId) continue;
      fn(off, i);
    }
  }

  /** Removes every entry of `mapId` from partition `p`; returns how many. */
  clearMap(p: number, mapId: number): number {
    let n = 0;
    this.forEachRecord(p, mapId, (off, slot) => {
      this.unlinkAt(p, slot, off, mapId);
      n++;
    });
    return n;
  }

  keyOf(off: number): string {
    const kl = this.u32[(off + E_KEYMAP) >>> 2] & 0xffff;
    return this.buf.toString('utf8', off + E_HEADER, off + E_HEADER + kl);
  }

  // ── maps ──────────────────────────────────────────────────────────────────────────────────────

  /** Id of the named map, registering it on first use (unless `register` is false: -3 when absent). -1: registry full; -2: name too long. */
  mapId(name: string, register = true): number {
    const bytes = Buffer.from(name, 'utf8');
    if (bytes.length > MAX_MAP_NAME_BYTES) return -2;
    const h = murmur3(bytes, bytes.length, HASH_SEED);
    const ci = this.ci;
    const find = (count: number): number => {
      for (let m = 0; m < count; m++) {
        const b = this.geo.mapBase + m * M_STRIDE;
        if (ci[b + M_NAME_HASH] !== (h | 0) || ci[b + M_NAME_LEN] !== bytes.length) continue;
        const nb = new Uint8Array(this.buffers.control, (b + M_NAME) * 4, bytes.length);
        if (Buffer.compare(nb, bytes) === 0) return m;
      }
      return -1;
    };
    const known = find(Atomics.load(ci, G_MAP_COUNT));
    if (known >= 0) return known;
    if (!register) return -3;
    if (!lockSync(ci, G_MAP_LOCK, this.lockTimeout)) throw new LockTimeoutError(`timed out after ${this.lockTimeout} ms waiting for the map registry lock`, { timeoutMs: this.lockTimeout });
    try {
      const count = ci[G_MAP_COUNT];
      const again = find(count);
      if (again >= 0) return again;
      if (count >= this.geo.maxMaps) return -1;
      const b = this.geo.mapBase + count * M_STRIDE;
      new Uint8Array(this.buffers.control, (b + M_NAME) * 4, bytes.length).set(bytes);
      ci[b + M_NAME_LEN] = bytes.length;
      ci[b + M_NAME_HASH] = h;
      Atomics.store(ci, G_MAP_COUNT, count + 1); // publish after the name is written
      return count;
    } finally {
      unlock(ci, G_MAP_LOCK);
    }
  }

  /**
   * The options registered for map `id` (grid.map(name, options), in any thread), or undefined
   * while none are. Registered once: a second registration returns the first one's options.
   */
  mapOptions(id: number): { ttl: number; cacheValues: boolean } | undefined {
    const b = this.geo.mapBase + id * M_STRIDE;
    const flags = Atomics.load(this.ci, b + M_OPTS); // published after TTL (registerMapOptions)
    if ((flags & MO_SET) === 0) return undefined;
    return { ttl: this.controlView.getFloat64((b + M_TTL) * 4, true), cacheValues: (flags & MO_NO_CACHE) === 0 };
  }

  /** Registers `o` for map `id` unless options are registered already; returns the registered ones. */
  registerMapOptions(id: number, o: { ttl: number; cacheValues: boolean }): { ttl: number; cacheValues: boolean } {
    const known = this.mapOptions(id);
    if (known !== undefined) return known;
    const ci = this.ci;
    if (!lockSync(ci, G_MAP_LOCK, this.lockTimeout)) throw new LockTimeoutError(`timed out after ${this.lockTimeout} ms waiting for the map registry lock`, { timeoutMs: this.lockTimeout });
    try {
      const again = this.mapOptions(id);
      if (again !== undefined) return again;
      const b = this.geo.mapBase + id * M_STRIDE;
      this.controlView.setFloat64((b + M_TTL) * 4, o.ttl, true);
      Atomics.store(ci, b + M_OPTS, MO_SET | (o.cacheValues ? 0 : MO_NO_CACHE));
      return { ttl: o.ttl, cacheValues: o.cacheValues };
    } finally {
      unlock(ci, G_MAP_LOCK);
    }
  }

  /** Names of the registered maps, by id. */
  mapNames(): string[] {
    const out: string[] = [];
    const count = Atomics.load(this.ci, G_MAP_COUNT);
    for (let m = 0; m < count; m++) out.push(this.mapName(m)!);
    return out;
  }

  /** The name of map `id`, undefined when no map has that id. */
  mapName(id: number): string | undefined {
    if (!(id >= 0 && id < Atomics.load(this.ci, G_MAP_COUNT))) return undefined;
    const b = this.geo.mapBase + id * M_STRIDE;
    return Buffer.from(this.buffers.control, (b + M_NAME) * 4, this.ci[b + M_NAME_LEN]).toString('utf8');
  }

  /** Entries of map `mapId` in partition `p` (a plain read: exact under the lock, a hint without). */
  mapCountIn(p: number, mapId: number): number {
    return this.ci[this.geo.countBase + p * this.geo.maxMaps + mapId];
  }

  /** Entries of map `mapId` in partition `p` that have an expiry (a plain read, as mapCountIn). */
  mapTtlCountIn(p: number, mapId: number): number {
    return this.ci[this.geo.ttlBase + p * this.geo.maxMaps + mapId];
  }

  /** Entries of every map in partition `p` (a plain read, as mapCountIn). */
  countIn(p: number): number {
    return this.ci[PART_BASE + p * P_STRIDE + P_COUNT];
  }

  mapSize(mapId: number): number {
    let n = 0;
    const base = this.geo.countBase + mapId;
    for (let p = 0; p < this.partitions; p++) n += this.ci[base + p * this.geo.maxMaps];
    return n;
  }

  // ── lifecycle, stats, recovery ────────────────────────────────────────────────────────────────

  get closed(): boolean {
    return this.ci[G_CLOSED] !== 0; // plain read: checked on every operation, set once
  }

  markClosed(): void {
    Atomics.store(this.ci, G_CLOSED, 1);
    // wake anything sleeping on a lock so it can see the grid is closed
    for (let p = 0; p < this.partitions; p++) Atomics.notify(this.ci, this.lockIndex(p));
  }

  tickClock(): void {
    Atomics.store(this.ci, G_CLOCK, nowClock());
  }

  freePages(): number {
    return this.availablePages();
  }

  setOwner(p: number, vnode: number): void {
    Atomics.store(this.ci, PART_BASE + p * P_STRIDE + P_OWNER, vnode);
  }

  ownerOf(p: number): number {
    return Atomics.load(this.ci, PART_BASE + p * P_STRIDE + P_OWNER);
  }

  /**
   * Cluster members: whether this process is partition p's primary, mirrored from the member's
   * partition table (ClusterNode.applyTable) so that other threads of the process can read
   * primaries straight from shared memory (runtime/forward.ts).
   */
  setPrimaryHere(p: number, here: boolean): void {
    Atomics.store(this.ci, PART_BASE + p * P_STRIDE + P_PRIMARY_HERE, here ? 1 : 0);
  }

  primaryHere(p: number): boolean {
    return Atomics.load(this.ci, PART_BASE + p * P_STRIDE + P_PRIMARY_HERE) === 1;
  }

  /**
   * Cluster members: the end of the member's primary lease on the process-wide clock
   * (sync/clock.ts), kept mod 2^32: ends lie at most a few seconds ahead, so comparing the
   * difference as an Int32 is exact. Other threads read local primaries only while it runs.
   */
  setLeaseEnd(sharedMs: number): void {
    Atomics.store(this.ci, G_LEASE_END, sharedMs | 0);
  }

  leaseLive(): boolean {
    return ((Atomics.load(this.ci, G_LEASE_END) - (sharedNow() | 0)) | 0) > 0;
  }

  /**
   * Cluster members: how many keys of partition p have replicated writes that have not settled
   * (cluster/unsettled.ts). Other threads read such a partition through the main thread; a
   * waiter on the word is woken when it drops to 0.
   */
  addUnsettled(p: number, d: number): void {
    const i = PART_BASE + p * P_STRIDE + P_UNSETTLED;
    if (Atomics.add(this.ci, i, d) + d === 0) Atomics.notify(this.ci, i);
  }

  unsettledIn(p: number): number {
    return Atomics.load(this.ci, PART_BASE + p * P_STRIDE + P_UNSETTLED);
  }

  /** Waits (not on the main thread) up to `ms` for partition p to have no unsettled key; true when it has none. */
  waitSettled(p: number, ms: number): boolean {
    const i = PART_BASE + p * P_STRIDE + P_UNSETTLED;
    const deadline = performance.now() + ms;
    for (;;) {
      const v = Atomics.load(this.ci, i);
      if (v === 0) return true;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      Atomics.wait(this.ci, i, v, left);
    }
  }

  ttlCount(p: number): number {
    return this.ci[PART_BASE + p * P_STRIDE + P_TTL_COUNT];
  }

  pagesOf(p: number): number {
    return this.ci[PART_BASE + p * P_STRIDE + P_PAGES];
  }

  stats(): StoreStats {
    const ci = this.ci;
    let hits = 0;
    let misses = 0;
    for (let t = 0; t < MAX_THREAD_SLOTS; t++) {
      hits += this.tf[this.geo.threadBase + t * T_STRIDE + T_HITS];
      misses += this.tf[this.geo.threadBase + t * T_STRIDE + T_MISSES];
    }
    const partitions: PartitionStats[] = [];
    let entries = 0;
    let evictions = 0;
    let expirations = 0;
    let liveBytes = 0;
    for (let p = 0; p < this.partitions; p++) {
      const b = PART_BASE + p * P_STRIDE;
      const ps = {
        partition: p,
        owner: ci[b + P_OWNER],
        entries: ci[b + P_COUNT],
        pages: ci[b + P_PAGES],
        bytesUsed: ci[b + P_PAGES] * this.pageSize,
        liveBytes: ci[b + P_LIVE_BYTES],
        evictions: ci[b + P_EVICTIONS],
        expirations: ci[b + P_EXPIRATIONS],
        repairs: ci[b + P_REPAIRS],
      };
      entries += ps.entries;
      evictions += ps.evictions;
      expirations += ps.expirations;
      liveBytes += ps.liveBytes;
      partitions.push(ps);
    }
    const overhead = this.buffers.control.byteLength + this.buffers.access.byteLength;
    const pagesUsed = ci[G_PAGES_GROWN] - ci[G_PAGES_FREE];
    return {
      entries, hits, misses, evictions, expirations, liveBytes,
      bytesUsed: overhead + pagesUsed * this.pageSize,
      heapBytes: this.buffers.heap.byteLength,
      overheadBytes: overhead,
      pageSize: this.pageSize,
      pagesUsed,
      pagesMax: ci[G_PAGES_MAX],
      partitions,
    };
  }

  /**
   * Links worker `child` to the thread `parent` that started it (see MAX_THREAD_LINKS). Returns
   * false when every link slot is taken (the child's locks are then recovered only if it dies
   * while its parent lives).
   */
  linkThread(child: number, parent: number): boolean {
    const ci = this.ci;
    for (let i = 0; i < MAX_THREAD_LINKS; i++) {
      const at = this.geo.linkBase + 2 * i;
      if (ci[at] !== 0 || Atomics.compareExchange(ci, at, 0, -1) !== 0) continue;
      Atomics.store(ci, at + 1, parent + 1);
      Atomics.store(ci, at, child + 1);
      return true;
    }
    return false;
  }

  /** Drops the link of worker `child` (it exited; its parent saw it). */
  unlinkThread(child: number): void {
    const ci = this.ci;
    for (let i = 0; i < MAX_THREAD_LINKS; i++) {
      const at = this.geo.linkBase + 2 * i;
      if (ci[at] === child + 1) Atomics.compareExchange(ci, at, child + 1, 0);
    }
  }

  /**
   * The workers linked below thread `tid` — its children, theirs, … — whose links are dropped
   * here: called when `tid` died, and Node ended them with it.
   */
  takeDescendants(tid: number): number[] {
    const ci = this.ci;
    const out: number[] = [];
    const parents = [tid];
    while (parents.length > 0) {
      const parent = parents.pop()!;
      for (let i = 0; i < MAX_THREAD_LINKS; i++) {
        const at = this.geo.linkBase + 2 * i;
        const c = Atomics.load(ci, at);
        if (c <= 0 || Atomics.load(ci, at + 1) !== parent + 1) continue;
        if (Atomics.compareExchange(ci, at, c, 0) !== c) continue;
        out.push(c - 1);
        parents.push(c - 1);
      }
    }
    return out;
  }

  /**
   * Recovery after thread `deadThreadId` died. For every lock it held (partition locks, heap lock,
   * map-registry lock), take the lock over, repair what it protects, and release it. Returns the
   * partitions repaired. Runs on the member's main thread from the worker's `exit` event.
   */
  recoverDeadThread(deadThreadId: number): number[] {
    const ci = this.ci;
    const repaired: number[] = [];
    this.freeStatSlot(deadThreadId);
    const heapWasHeld = forceTake(ci, G_HEAP_LOCK, deadThreadId);
    if (forceTake(ci, G_MAP_LOCK, deadThreadId)) unlock(ci, G_MAP_LOCK); // registry writes publish last
    const held: number[] = [];
    for (let p = 0; p < this.partitions; p++) if (holderOf(ci, this.lockIndex(p)) === deadThreadId && forceTake(ci, this.lockIndex(p), deadThreadId)) held.push(p);
    if (heapWasHeld) {
      // Page claims are made under a partition lock too, so the partition repair below finds any
      // page claimed halfway. Recount the free pages; claimed pages are those with an owner.
      let free = 0;
      for (let g = 0; g < ci[G_PAGES_GROWN]; g++) if (ci[this.pg(g, PG_OWNER)] === FREE) free++;
      ci[G_PAGES_FREE] = free;
      const grownBytes = this.buffers.heap.byteLength;
      if (grownBytes / this.pageSize > ci[G_PAGES_GROWN]) {
        // grew the buffer but died before recording it
        const g0 = ci[G_PAGES_GROWN];
        const g1 = grownBytes / this.pageSize;
        for (let g = g0; g < g1; g++) ci[this.pg(g, PG_OWNER)] = FREE;
        ci[G_PAGES_FREE] += g1 - g0;
        ci[G_PAGES_GROWN] = g1;
        this.refresh();
      }
    }
    // repair frees pages nothing references, and counts them into G_PAGES_FREE: under the heap lock,
    // or another thread's page claim or release at that moment is lost from the count (CI,
    // 2026-11-28: "340 free pages recorded, 339 in the page table" after workers were terminated
    // mid-write while a virtual node made room). Partition locks before the heap lock, as everywhere.
    let heapTaken = false;
    if (held.length > 0 && !heapWasHeld) {
      try {
        this.heapLock();
        heapTaken = true;
      } catch {
        // held past lockTimeout: by another thread that died too, whose own recovery recounts the
        // free pages (heapWasHeld); the partitions are repaired all the same
      }
    }
    try {
      for (const p of held) {
        this.repair(p);
        repaired.push(p);
      }
    } finally {
      if (heapTaken) unlock(ci, G_HEAP_LOCK);
    }
    if (heapWasHeld) unlock(ci, G_HEAP_LOCK);
    for (const p of held) unlock(ci, this.lockIndex(p));
    return repaired;
  }

  /**
   * Rebuilds partition `p`'s bookkeeping from its hash table, the single source of truth: a slot
   * only ever points at a record written in full (the ref store is the commit). Invalid slots are
   * dropped, page live-bytes and counters recounted, unreachable pages freed, and the seqlock made
   * even again. Caller holds the lock.
   */
  repair(p: number): void {
    const ci = this.ci;
    const pb = PART_BASE + p * P_STRIDE;
    if ((ci[pb + P_SEQ] & 1) === 0) this.beginWrite(p);
    this.refresh();
    const heapLen = this.u8.length;
    const owned = (off: number, size: number): boolean => off + size <= heapLen && ci[this.pg(off >>> this.pageShift, PG_OWNER)] === p;
    // pages this partition owns, whether or not they are linked
    const pages: number[] = [];
    for (let g = 0; g < ci[G_PAGES_GROWN]; g++) if (ci[this.pg(g, PG_OWNER)] === p && ci[this.pg(g, PG_KIND)] !== KIND_RUN_TAIL) pages.push(g);
    const live = new Map<number, number>(pages.map((g) => [g, 0]));
    let tref = this.cu[pb + P_TABLE];
    let cap = ci[pb + P_TABLE_CAP];
    const toff = (tref - 1) * 8;
    const tableOk = tref !== 0 && owned(toff, E_HEADER) && (this.u8[toff + E_FLAGS] & F_TABLE) !== 0 && this.u32[(toff + E_VALLEN) >>> 2] === cap * 8 && cap > 0 && (cap & (cap - 1)) === 0 && owned(toff, E_HEADER + cap * 8);
    let count = 0;
    let tombs = 0;
    let ttl = 0;
    let liveBytes = 0;
    const mapCounts = new Map<number, number>();
    const mapTtls = new Map<number, number>();
    if (!tableOk) {
      tref = 0;
      cap = 0;
    } else {
      const tword = ((toff + E_HEADER) >>> 2);
      const tsize = E_HEADER + cap * 8;
      live.set(toff >>> this.pageShift, (live.get(toff >>> this.pageShift) ?? 0) + tsize);
      liveBytes += tsize;
      for (let i = 0; i < cap; i++) {
        const ref = this.u32[tword + 2 * i + 1];
        if (ref === EMPTY) continue;
        if (ref === TOMB) {
          tombs++;
          continue;
        }
        const off = (ref - 1) * 8;
        // F_REWRITE: the dead thread was rewriting this record in place; its bytes are torn
        let ok = owned(off, E_HEADER) && (this.u8[off + E_FLAGS] & (F_LIVE | F_TABLE | F_REWRITE)) === F_LIVE;
        const size = ok ? this.recordSize(off) : 0;
        ok = ok && owned(off, size) && this.u32[(off + E_HASH) >>> 2] === this.u32[tword + 2 * i];
        if (!ok) {
          this.u32[tword + 2 * i + 1] = TOMB;
          tombs++;
          continue;
        }
        const g = off >>> this.pageShift;
        live.set(g, (live.get(g) ?? 0) + size);
        liveBytes += size;
        count++;
        const m = this.u32[(off + E_KEYMAP) >>> 2] >>> 16;
        mapCounts.set(m, (mapCounts.get(m) ?? 0) + 1);
        if (this.f64[(off + E_EXPIRES) >>> 3] !== 0) {
          ttl++;
          mapTtls.set(m, (mapTtls.get(m) ?? 0) + 1);
        }
      }
    }
    this.cu[pb + P_TABLE] = tref;
    ci[pb + P_TABLE_CAP] = cap;
    ci[pb + P_COUNT] = count;
    ci[pb + P_TOMBS] = tombs;
    ci[pb + P_TTL_COUNT] = ttl;
    ci[pb + P_LIVE_BYTES] = liveBytes;
    for (let m = 0; m < this.geo.maxMaps; m++) {
      ci[this.geo.countBase + p * this.geo.maxMaps + m] = mapCounts.get(m) ?? 0;
      ci[this.geo.ttlBase + p * this.geo.maxMaps + m] = mapTtls.get(m) ?? 0;
    }
    // relink the page list and free pages nothing references
    ci[pb + P_HEAD_PAGE] = -1;
    ci[pb + P_PAGES] = 0;
    const open = ci[pb + P_OPEN_PAGE];
    let keptOpen = false;
    for (const g of pages) {
      const l = live.get(g) ?? 0;
      const isOpen = g === open && ci[this.pg(g, PG_KIND)] === KIND_SMALL;
      const n = ci[this.pg(g, PG_KIND)] === KIND_RUN_HEAD ? ci[this.pg(g, PG_RUN)] : 1;
      if (l === 0 && !isOpen) {
        for (let k = g; k < g + n; k++) ci[this.pg(k, PG_OWNER)] = FREE;
        ci[G_PAGES_FREE] += n;
        continue;
      }
      ci[this.pg(g, PG_LIVE)] = l;
      if (ci[this.pg(g, PG_USED)] > this.pageSize || ci[this.pg(g, PG_USED)] < 0) ci[this.pg(g, PG_USED)] = this.pageSize;
      this.linkPage(p, g, n);
      if (isOpen) keptOpen = true;
    }
    if (!keptOpen) ci[pb + P_OPEN_PAGE] = -1;
    ci[pb + P_REPAIRS]++;
    this.endWrite(p);
  }

  /**
   * Consistency check used by tests and after recovery: recounts everything from the table and the
   * page table and returns a list of violations (empty when consistent). Caller holds the lock.
   */
  check(p: number): string[] {
    const errs: string[] = [];
    const ci = this.ci;
    const pb = PART_BASE + p * P_STRIDE;
    if ((ci[pb + P_SEQ] & 1) !== 0) errs.push(`p${p}: seqlock odd`);
    let count = 0;
    let ttl = 0;
    const live = new Map<number, number>();
    const perMap = new Map<number, number>();
    const ttlPerMap = new Map<number, number>();
    const tref = this.cu[pb + P_TABLE];
    if (tref !== 0) {
      const toff = (tref - 1) * 8;
      const cap = ci[pb + P_TABLE_CAP];
      const g = toff >>> this.pageShift;
      live.set(g, (live.get(g) ?? 0) + E_HEADER + cap * 8);
      this.forEachRecord(p, -1, (off) => {
        count++;
        const m = this.u32[(off + E_KEYMAP) >>> 2] >>> 16;
        perMap.set(m, (perMap.get(m) ?? 0) + 1);
        if (this.f64[(off + E_EXPIRES) >>> 3] !== 0) {
          ttl++;
          ttlPerMap.set(m, (ttlPerMap.get(m) ?? 0) + 1);
        }
        const pg = off >>> this.pageShift;
        if (ci[this.pg(pg, PG_OWNER)] !== p) errs.push(`p${p}: record ${off} on page ${pg} owned by ${ci[this.pg(pg, PG_OWNER)]}`);
        if ((this.u8[off + E_FLAGS] & F_LIVE) === 0) errs.push(`p${p}: record ${off} not live`);
        if ((this.u8[off + E_FLAGS] & F_REWRITE) !== 0) errs.push(`p${p}: record ${off} left mid-rewrite`);
        live.set(pg, (live.get(pg) ?? 0) + this.recordSize(off));
      });
    }
    if (count !== ci[pb + P_COUNT]) errs.push(`p${p}: count ${ci[pb + P_COUNT]} but table holds ${count}`);
    if (tref !== 0) {
      const tword = (((tref - 1) * 8 + E_HEADER) >>> 2);
      let tombs = 0;
      for (let i = 0; i < ci[pb + P_TABLE_CAP]; i++) if (this.u32[tword + 2 * i + 1] === TOMB) tombs++;
      if (tombs !== ci[pb + P_TOMBS]) errs.push(`p${p}: ${ci[pb + P_TOMBS]} tombstones recorded, ${tombs} in the table`);
    }
    if (ttl !== ci[pb + P_TTL_COUNT]) errs.push(`p${p}: ttl count ${ci[pb + P_TTL_COUNT]} but ${ttl} records have an expiry`);
    for (let m = 0; m < this.geo.maxMaps; m++) {
      const n = perMap.get(m) ?? 0;
      const t = ttlPerMap.get(m) ?? 0;
      if (this.mapCountIn(p, m) !== n) errs.push(`p${p}: map ${m} count ${this.mapCountIn(p, m)} but table holds ${n}`);
      if (this.mapTtlCountIn(p, m) !== t) errs.push(`p${p}: map ${m} ttl count ${this.mapTtlCountIn(p, m)} but ${t} records have an expiry`);
    }
    for (const [g, l] of live) if (ci[this.pg(g, PG_LIVE)] !== l) errs.push(`p${p}: page ${g} live ${ci[this.pg(g, PG_LIVE)]} but records sum to ${l}`);
    let pages = 0;
    for (let g = ci[pb + P_HEAD_PAGE], guard = 0; g >= 0 && guard <= this.geo.maxPages; g = ci[this.pg(g, PG_NEXT)], guard++) {
      if (ci[this.pg(g, PG_OWNER)] !== p) errs.push(`p${p}: linked page ${g} owned by ${ci[this.pg(g, PG_OWNER)]}`);
      pages += ci[this.pg(g, PG_KIND)] === KIND_RUN_HEAD ? ci[this.pg(g, PG_RUN)] : 1;
    }
    if (pages !== ci[pb + P_PAGES]) errs.push(`p${p}: ${ci[pb + P_PAGES]} pages recorded, ${pages} linked`);
    return errs;
  }

  /** Free-page count agrees with the page table (call with no writer active). */
  checkHeap(): string[] {
    const ci = this.ci;
    let free = 0;
    for (let g = 0; g < ci[G_PAGES_GROWN]; g++) if (ci[this.pg(g, PG_OWNER)] === FREE) free++;
    return free === ci[G_PAGES_FREE] ? [] : [`heap: ${ci[G_PAGES_FREE]} free pages recorded, ${free} in the page table`];
  }
}

/** The figures of one partition, in {@link GridStats.partitions}. */
export interface PartitionStats {
  /** The partition number. */
  partition: number;
  /** The virtual node that runs expiry and eviction for this partition. */
  owner: number;
  /** Entries of every map in this partition. */
  entries: number;
  /** Heap pages the partition holds. */
  pages: number;
  /** Bytes of those pages (`pages` × the page size). */
  bytesUsed: number;
  /** Bytes of live records (entries and the partition's table). */
  liveBytes: number;
  /** Entries evicted from this partition. */
  evictions: number;
  /** Entries of this partition removed because their time to live had passed. */
  expirations: number;
  /** Times the partition was repaired after a thread died holding its lock. */
  repairs: number;
}

export interface StoreStats {
  entries: number;
  hits: number;
  misses: number;
  evictions: number;
  expirations: number;
  liveBytes: number;
  bytesUsed: number;
  heapBytes: number;
  overheadBytes: number;
  pageSize: number;
  pagesUsed: number;
  pagesMax: number;
  partitions: PartitionStats[];
}
