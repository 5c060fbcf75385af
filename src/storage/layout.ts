/**
 * Shared-memory layout of one member's shard stores. Two SharedArrayBuffers:
 *
 *  control (fixed size, Int32 slots unless noted)
 *  ┌──────────────────────────┐ 0
 *  │ global header  (G_*)     │ G_HEADER_INTS slots
 *  ├──────────────────────────┤ PART_BASE
 *  │ partition headers (P_*)  │ partitions × P_STRIDE slots (128 bytes each: lock, seqlock, table, page list…)
 *  ├──────────────────────────┤ pageBase
 *  │ page table (PG_*)        │ maxPages × PG_STRIDE slots
 *  ├──────────────────────────┤ mapBase
 *  │ map registry (M_*)       │ maxMaps × M_STRIDE slots (name length, name hash, options, default ttl, UTF-8 name)
 *  ├──────────────────────────┤ countBase
 *  │ entries per (partition,  │ partitions × maxMaps slots
 *  │ map)                     │
 *  ├──────────────────────────┤ ttlBase
 *  │ entries with an expiry   │ partitions × maxMaps slots
 *  │ per (partition, map)     │
 *  ├──────────────────────────┤ threadBase (Float64, 128-byte aligned)
 *  │ per-thread stats (T_*)   │ MAX_THREAD_SLOTS × T_STRIDE doubles (hits, misses), 128 B per slot
 *  ├──────────────────────────┤ linkBase (layout 4)
 *  │ thread links             │ MAX_THREAD_LINKS × [child threadId + 1, parent threadId + 1]
 *  ├──────────────────────────┤ journalBase (layout 5)
 *  │ eviction journal         │ 2 lines (tail; head, lost) + G_JOURNAL_SLOTS × JOURNAL_SLOT_INTS (storage/journal.ts; none outside a cluster)
 *  ├──────────────────────────┤ touchBase (layout 6)
 *  │ touch journal            │ the same, with touchSlots(G_JOURNAL_SLOTS) slots: the touch sweep's own ring
 *  └──────────────────────────┘
 *
 *  heap (growable SharedArrayBuffer, maxByteLength = page budget): pages of 2^pageShift bytes.
 *  A partition owns pages; small records are bump-allocated in its open page; a record larger
 *  than SMALL_MAX takes a run of contiguous pages of its own. Records are 8-byte aligned:
 *
 *   0        4          8                 16      20                 24       28     29     30   32
 *   │ HASH   │ VERSION  │ EXPIRES (f64 ms) │ resvd │ KEYLEN | MAP<<16 │ VALLEN │ TYPE │ FLAGS│ -- │ KEY bytes │ VALUE bytes │ pad to 8
 *
 *  A record is referenced from its partition's hash table by ref = byteOffset / 8 + 1 (0 = empty
 *  slot, TOMB = deleted). The hash table is itself a record (FLAGS has F_TABLE) whose value is
 *  cap × [slotHash u32, ref u32].
 */
export const MAGIC = 0x53475244; // 'SGRD'
export const LAYOUT_VERSION = 6; // 2: map options in the registry (M_OPTS, M_TTL); 3: expiring entries per map (ttlBase); 4: thread links (linkBase); 5: eviction journal (journalBase); 6: touch journal (touchBase)

// ── global header ─────────────────────────────────────────────────────────────────────────────
export const G_MAGIC = 0;
export const G_LAYOUT = G_MAGIC + 1;
export const G_PARTITIONS = G_LAYOUT + 1;
export const G_PAGE_SHIFT = G_PARTITIONS + 1;
export const G_PAGES_MAX = G_PAGE_SHIFT + 1; // pages the budget allows
export const G_PAGES_GROWN = G_PAGES_MAX + 1; // pages backed by the heap buffer today
export const G_PAGES_FREE = G_PAGES_GROWN + 1; // free pages among the grown ones
export const G_RESERVE = G_PAGES_FREE + 1; // pages only compaction may take
export const G_HEAP_LOCK = G_RESERVE + 1; // mutex: page allocation and heap growth
export const G_MAP_LOCK = G_HEAP_LOCK + 1; // mutex: map registry
export const G_MAP_COUNT = G_MAP_LOCK + 1;
export const G_MAX_MAPS = G_MAP_COUNT + 1;
export const G_CLOCK = G_MAX_MAPS + 1; // LRU clock, CLOCK_TICK_MS ticks, advanced by the virtual nodes
export const G_CLOSED = G_CLOCK + 1; // 1 once the grid is closed
export const G_THREAD_NEXT = G_CLOSED + 1; // next per-thread stats slot
export const G_FREE_HINT = G_THREAD_NEXT + 1; // where the next free-page scan starts
export const G_MAX_KEY = G_FREE_HINT + 1;
export const G_MAX_VALUE = G_MAX_KEY + 1;
export const G_GROW_STEP = G_MAX_VALUE + 1; // pages added per heap growth
export const G_LEASE_END = G_GROW_STEP + 1; // cluster member: its primary lease's end, process-wide clock ms mod 2^32 (sync/clock.ts)
export const G_JOURNAL_SLOTS = G_LEASE_END + 1; // eviction journal slots (storage/journal.ts): a cluster data member's, else 0
export const G_HEADER_INTS = 32;

// ── partition header ──────────────────────────────────────────────────────────────────────────
export const PART_BASE = G_HEADER_INTS;
export const P_LOCK = 0; // futex mutex word (src/sync/mutex.ts)
export const P_SEQ = P_LOCK + 1; // seqlock counter: odd while a writer changes the partition
export const P_TABLE = P_SEQ + 1; // ref of the hash-table record, 0 = none yet
export const P_TABLE_CAP = P_TABLE + 1; // slots in the table (power of two)
export const P_COUNT = P_TABLE_CAP + 1; // live entries
export const P_TOMBS = P_COUNT + 1; // tombstone slots
export const P_OPEN_PAGE = P_TOMBS + 1; // page receiving small records, -1 = none
export const P_PAGES = P_OPEN_PAGE + 1; // pages owned (runs count every page)
export const P_HEAD_PAGE = P_PAGES + 1; // first owned page (doubly linked through PG_NEXT/PG_PREV)
export const P_LIVE_BYTES = P_HEAD_PAGE + 1; // bytes of live records (entries and table)
export const P_WRITE_SEQ = P_LIVE_BYTES + 1; // source of entry versions
export const P_TTL_COUNT = P_WRITE_SEQ + 1; // entries with an expiry
export const P_EVICTIONS = P_TTL_COUNT + 1;
export const P_EXPIRATIONS = P_EVICTIONS + 1;
export const P_OWNER = P_EXPIRATIONS + 1; // virtual node that runs expiry/eviction for it
export const P_REPAIRS = P_OWNER + 1; // times the partition was repaired after a dead holder
export const P_PRIMARY_HERE = P_REPAIRS + 1; // cluster member: 1 while this process is the partition's primary
export const P_UNSETTLED = P_PRIMARY_HERE + 1; // cluster member: keys of the partition whose replicated writes have not settled (cluster/unsettled.ts)
export const P_STRIDE = 32; // 128 bytes: two cache lines per partition

// ── page table ────────────────────────────────────────────────────────────────────────────────
export const PG_OWNER = 0; // owning partition, -1 = free
export const PG_USED = PG_OWNER + 1; // bump offset inside the page
export const PG_LIVE = PG_USED + 1; // bytes of live records in the page
export const PG_NEXT = PG_LIVE + 1;
export const PG_PREV = PG_NEXT + 1;
export const PG_KIND = PG_PREV + 1; // KIND_SMALL, KIND_RUN_HEAD, KIND_RUN_TAIL
export const PG_RUN = PG_KIND + 1; // pages in the run (head page only)
export const PG_STRIDE = 8;
export const KIND_SMALL = 0;
export const KIND_RUN_HEAD = 1;
export const KIND_RUN_TAIL = 2;
export const FREE = -1;

// ── map registry ──────────────────────────────────────────────────────────────────────────────
//   NAME_LEN | NAME_HASH | OPTS | TTL_LO TTL_HI (f64 ms) | NAME (UTF-8, MAX_MAP_NAME_BYTES)
// A map's options are registered once for the whole grid (every thread): the first
// grid.map(name, options) that gives options writes TTL, then publishes OPTS with Atomics.store
// (under G_MAP_LOCK); readers Atomics.load OPTS first, so a non-zero OPTS means TTL is written.
export const M_NAME_LEN = 0;
export const M_NAME_HASH = M_NAME_LEN + 1;
export const M_OPTS = M_NAME_HASH + 1; // 0: none registered; else MO_SET | MO_NO_CACHE?
export const M_TTL = M_OPTS + 1; // f64 default ttl in ms, two Int32 slots (read through a DataView: not 8-aligned)
export const M_NAME = M_TTL + 2; // UTF-8 bytes, MAX_MAP_NAME_BYTES
export const MO_SET = 1;
export const MO_NO_CACHE = 2; // cacheValues: false
export const MAX_MAP_NAME_BYTES = 256;
export const M_STRIDE = M_NAME + MAX_MAP_NAME_BYTES / 4;

// ── per-thread stats (Float64 slots; each thread writes only its own) ─────────────────────────
export const T_HITS = 0;
export const T_MISSES = T_HITS + 1;
/**
 * The slot's owner, threadId + 1 (0: free), in the first Int32 of this double: a thread that
 * attaches again keeps its slot, and a dead thread's slot is freed by the recovery of its exit
 * (its counts stay in it: the figures are sums over all slots).
 */
export const T_OWNER = T_MISSES + 1;
/**
 * Doubles per thread slot: 16 = 128 bytes, so no two threads' counters share a cache line (64 B)
 * or an adjacent-line prefetch pair (128 B). Every get writes its thread's hit or miss counter; at
 * the former 4 (32 B) slots 2k and 2k+1 shared a line, and two threads reading in parallel with
 * such slots (the 2nd and 3rd of four attached workers, say) bounced it between cores on every get.
 */
export const T_STRIDE = 16;
export const MAX_THREAD_SLOTS = 256;

/**
 * Thread links: a worker started by an attached thread (its compute pool's threads, the user's
 * nested workers) is announced only in that thread, and Node ends it when that thread ends. Each
 * such worker is linked here to its parent, so the member, which sees only the parent's exit,
 * can recover the locks of the parent's whole tree (store.takeDescendants). A slot is
 * [child threadId + 1, parent threadId + 1]; a child word of 0 is free, -1 is being written.
 */
export const MAX_THREAD_LINKS = 256;

// ── records in the heap (byte offsets) ────────────────────────────────────────────────────────
export const E_HASH = 0; // u32 slot hash (key hash mixed with the map id)
export const E_VERSION = E_HASH + 4; // u32 partition write sequence at the write
export const E_EXPIRES = E_VERSION + 4; // f64 absolute expiry, ms since epoch, 0 = none
export const E_RESERVED = E_EXPIRES + 8; // u32 reserved (access times live in the access map, see below)
export const E_KEYMAP = E_RESERVED + 4; // u32 key length | map id << 16
export const E_VALLEN = E_KEYMAP + 4; // u32 value length
export const E_TYPE = E_VALLEN + 4; // u8 value type tag
export const E_FLAGS = E_TYPE + 1; // u8 F_*
export const E_HEADER = 32;
export const F_LIVE = 1;
export const F_TABLE = 2;
/**
 * Set while a same-size overwrite rewrites the record in place (store.rewriteValue), cleared when
 * it is done: a record the repair finds with it was left half old, half new by a thread that
 * died in the middle, and is dropped (the write did not complete; the old value is gone).
 */
export const F_REWRITE = 4;

export const EMPTY = 0;
export const TOMB = 0xffffffff;

// value type tags
export const T_MSGPACK = 0;
export const T_STRING = 1;
export const T_BYTES = 2;
export const T_NUMBER = 3;

export interface Geometry {
  partitions: number;
  pageShift: number;
  maxPages: number;
  maxMaps: number;
  pageBase: number;
  mapBase: number;
  countBase: number;
  ttlBase: number;
  threadBase: number; // index into a Float64Array over the control buffer
  linkBase: number; // index into an Int32Array over the control buffer
  journalBase: number; // index into an Int32Array over the control buffer
  touchBase: number; // index into an Int32Array over the control buffer
  controlBytes: number;
}

/** Int32 words per eviction journal slot (storage/journal.ts). */
export const JOURNAL_SLOT_INTS = 32;
/**
 * The journal's own header before its slots: the producers' tail on one 128-byte line, the
 * consumer's head and the lost count on the next (off the global header's line, which every get
 * reads for the LRU clock).
 */
export const J_TAIL = 0;
export const J_HEAD = 32;
export const J_LOST = 33;
export const J_SLOTS = 64;

/**
 * Slots of the touch journal beside an eviction journal of `journalSlots`: a quarter (one touch
 * sweep tick journals at most 1,000 keys, and one that finds the ring full resumes at the next).
 */
export const touchSlots = (journalSlots: number): number => journalSlots >>> 2;

export function geometry(partitions: number, pageShift: number, maxPages: number, maxMaps: number, journalSlots: number): Geometry {
  const pageBase = PART_BASE + partitions * P_STRIDE;
  const mapBase = pageBase + maxPages * PG_STRIDE;
  const countBase = mapBase + maxMaps * M_STRIDE;
  const ttlBase = countBase + partitions * maxMaps;
  const threadByte = Math.ceil(((ttlBase + partitions * maxMaps) * 4) / 128) * 128;
  const linkByte = threadByte + MAX_THREAD_SLOTS * T_STRIDE * 8;
  // the journal's slots start on a 128-byte line
  const journalByte = Math.ceil((linkByte + MAX_THREAD_LINKS * 2 * 4) / 128) * 128;
  const touchByte = journalByte + (journalSlots === 0 ? 0 : (J_SLOTS + journalSlots * JOURNAL_SLOT_INTS) * 4);
  const controlBytes = touchByte + (journalSlots === 0 ? 0 : (J_SLOTS + touchSlots(journalSlots) * JOURNAL_SLOT_INTS) * 4);
  return { partitions, pageShift, maxPages, maxMaps, pageBase, mapBase, countBase, ttlBase, threadBase: threadByte / 8, linkBase: linkByte / 4, journalBase: journalByte / 4, touchBase: touchByte / 4, controlBytes };
}

export const align8 = (n: number): number => (n + 7) & ~7;

/**
 * Access map: a third SharedArrayBuffer with one Uint16 per ACCESS_UNIT heap bytes holding the
 * LRU clock (100 ms ticks, 16 bits: a window of ~109 minutes) of the record that starts in that
 * unit. Records are at least 32 bytes, so two small records can share a unit; a touch of one then
 * also freshens the other (an approximation we accept; it costs 2 bytes per 64 heap bytes, 3%).
 * It is separate from the records on purpose: readers write access times without holding the
 * lock, and a reader that raced with a writer may write to a unit whose record has since been
 * freed and reused. In the access map such a stray write only makes some record look recently
 * used; inside a record it would corrupt data.
 */
export const ACCESS_SHIFT = 6;
export const ACCESS_UNIT = 1 << ACCESS_SHIFT;
/** Bytes of access map per heap byte, as a shift: 2 bytes per 64. */
export const ACCESS_BYTES_SHIFT = ACCESS_SHIFT - 1;
export const CLOCK_TICK_MS = 100;
export const CLOCK_MASK = 0xffff;
