/**
 * The eviction journal (layout 5; native-notes.md, "Evictions reach the copies"): a bounded
 * ring in the control buffer (and a second, smaller one for the touch sweep, layout 6), one per cluster data member, through which any thread that evicts
 * an entry of a partition this member is primary for tells the member's main thread which key
 * went, so that the main thread ships the key's state (now absent) to the partition's copies.
 * Copies then hold what their primary holds, instead of evicting on their own by the accesses
 * they see (a copy sees writes only: reads go to the primary).
 *
 * Many producers (every thread of the process: writers that evict inline, the virtual nodes'
 * background eviction), one consumer (the main thread). Each slot is JOURNAL_SLOT_INTS Int32
 * words: a sequence word, then data. An entry takes one or more consecutive slots:
 *
 *   first slot:        SEQ | n slots | kind << 16 | partition | keyLen | map << 16 | key bytes …
 *   continuation slot: SEQ | -1      | key bytes …
 *
 * Sequence words follow Vyukov's bounded queue: slot i of lap L is free for the producer of
 * position pos = L·slots + i when SEQ == pos, holds a published entry when SEQ == pos + 1, and is
 * freed for the next lap by the consumer with SEQ = pos + slots (all Int32, wrapping; compared by
 * difference). A producer checks its n slots are free, claims them with a compare-and-exchange
 * of the tail, writes, then publishes the continuation slots and the first slot last; so a
 * consumer that sees the first slot published reads the whole entry.
 *
 * Nothing is lost that matters when an entry is: the journal only says "ship this key's state
 * again", and a copy that keeps a key its primary evicted holds the key's newest state anyway (a
 * later write or delete of it is replicated). A full ring drops the entry (counted in
 * this.lostAt), except an eviction by the consumer thread itself, which keeps it aside in a list
 * of its own (enableSpill; snapshot chunks and replicated large values, applied on that thread,
 * evict thousands of entries in one call); a producer that died between claiming and publishing stalls the consumer,
 * which skips its slots after STALL_DRAINS drains and STALL_MS (both: a paused process resumes
 * with the clock far ahead). A producer publishes with a compare-and-exchange, so a slot that the
 * consumer skipped meanwhile is never published into the next lap.
 */
import { G_JOURNAL_SLOTS, J_HEAD, J_LOST, J_SLOTS, J_TAIL, JOURNAL_SLOT_INTS } from './layout.js';

/** Slots of a cluster data member's journal (256 KiB). */
export const JOURNAL_SLOTS = 2048;
/** 128 bytes a slot: one entry of a key up to 112 bytes. */
const SLOT_BYTES = JOURNAL_SLOT_INTS * 4;
/** Data bytes after the first slot's header (SEQ, n, partition, keyLen | map << 16). */
const FIRST_DATA = SLOT_BYTES - 16;
/** Data bytes after a continuation slot's header (SEQ, -1). */
const MORE_DATA = SLOT_BYTES - 8;
/** Most entries the consumer thread keeps aside while the ring is full (enableSpill). */
const SPILL_MAX = 1 << 20;
/** A stalled head slot is skipped after this many drains that found it unpublished … */
const STALL_DRAINS = 50;
/** … and this many ms since the stall was first seen. */
const STALL_MS = 1000;

/** Slots an entry for a key of `len` bytes takes. */
export const slotsFor = (len: number): number => (len <= FIRST_DATA ? 1 : 1 + Math.ceil((len - FIRST_DATA) / MORE_DATA));

/** An entry's kind: the key was evicted (ship its state). */
export const J_EVICTED = 0;
/**
 * An entry's kind: the key was read since the last sweep (the virtual nodes' touch sweep): the
 * copies stamp it as accessed, so their LRU ages follow the primary's reads. Touches have a ring
 * of their own (the store's `touches`), so neither kind waits for the other; a touch that finds
 * it full is neither kept aside nor counted lost (the sweep resumes there at its next tick).
 * Until 2026-11-28 touches shared the eviction ring and were recorded only while it was at most
 * half full: under a write burst on a loaded machine it stayed fuller, and copies evicted hot keys
 * by stamps 12-21 s old (evict-failover.integration).
 */
export const J_TOUCHED = 1;

/** What a drained entry says: the partition, the map id, the key's UTF-8 bytes (`key[0..len)`, valid until the next entry) and its kind. */
export type JournalVisit = (p: number, map: number, key: Uint8Array, len: number, kind: number) => void;

export class EvictionJournal {
  readonly slots: number;
  private readonly mask: number;
  private readonly u8: Uint8Array;
  /** Indexes in `ci` of the tail, head and lost words, and of the first slot. */
  private readonly tailAt: number;
  private readonly headAt: number;
  private readonly lostAt: number;
  private readonly first: number;
  /** The consumer's copy of one entry's key. */
  private readonly scratch: Uint8Array;
  /** The head slot seen unpublished (when `stalling`), since `stallSince`, over `stallDrains` drains. */
  private stalling = false;
  private stallAt = 0;
  private stallDrains = 0;
  private stallSince = 0;
  /** The consumer thread's own evictions that found the ring full, in order (enableSpill); undefined in other threads. */
  private spill: Array<[p: number, map: number, key: Uint8Array]> | undefined;

  /**
   * @param ci the control buffer as Int32
   * @param base index in `ci` of the journal (geometry's journalBase, or touchBase)
   * @param slots its slots (G_JOURNAL_SLOTS for the eviction journal; touchSlots of it for touches)
   */
  constructor(private readonly ci: Int32Array, base: number, maxKeyBytes: number, slots = ci[G_JOURNAL_SLOTS]) {
    this.slots = slots;
    this.tailAt = base + J_TAIL;
    this.headAt = base + J_HEAD;
    this.lostAt = base + J_LOST;
    this.first = base + J_SLOTS;
    this.mask = this.slots - 1;
    this.u8 = new Uint8Array(ci.buffer);
    this.scratch = new Uint8Array(Math.max(maxKeyBytes, 1));
  }

  /** Sets the sequence words of a fresh journal (at creation, before any thread uses it); `global`: the eviction journal, whose slot count the header keeps. */
  static init(ci: Int32Array, base: number, slots: number, global = true): void {
    if (slots !== 0 && (slots & (slots - 1)) !== 0) throw new RangeError('journal slots must be a power of two');
    if (global) ci[G_JOURNAL_SLOTS] = slots;
    for (let i = 0; i < slots; i++) ci[base + J_SLOTS + i * JOURNAL_SLOT_INTS] = i;
  }

  /**
   * Called by the consumer thread on its own journal object: from then on, an eviction that this
   * thread records while the ring is full waits in a list of this thread's (up to SPILL_MAX), which
   * drain visits after the ring, instead of being lost. The consumer is the thread that applies
   * replicated writes and snapshot chunks, whose single calls can evict more entries than the ring
   * holds; other threads' entries are still dropped (and counted) when it is full.
   */
  enableSpill(): void {
    this.spill ??= [];
  }

  private seqAt(pos: number): number {
    return this.first + (pos & this.mask) * JOURNAL_SLOT_INTS;
  }

  /**
   * Records that partition p evicted key `src[off..off+len)` of map `map`. False (and counted
   * lost) when the ring has no room or the key would take over a quarter of it.
   */
  push(p: number, map: number, src: Uint8Array, off: number, len: number, kind = J_EVICTED): boolean {
    const ci = this.ci;
    const n = slotsFor(len);
    if (this.slots === 0) return this.lost();
    if (n > this.slots >>> 2) return this.spilled(p, map, src, off, len, kind);
    let pos = Atomics.load(ci, this.tailAt);
    for (;;) {
      let free = true;
      for (let i = 0; i < n; i++) {
        if (Atomics.load(ci, this.seqAt(pos + i)) !== ((pos + i) | 0)) {
          free = false;
          break;
        }
      }
      if (free) {
        const seen = Atomics.compareExchange(ci, this.tailAt, pos, (pos + n) | 0);
        if (seen === pos) break;
        pos = seen;
        continue;
      }
      const now = Atomics.load(ci, this.tailAt);
      if (now === pos) return this.spilled(p, map, src, off, len, kind); // the consumer has not freed them: full
      pos = now;
    }
    // write: the first slot's header and key bytes, then the continuation slots'
    const first = this.seqAt(pos);
    ci[first + 1] = n | (kind << 16);
    ci[first + 2] = p;
    ci[first + 3] = len | (map << 16);
    const u8 = this.u8;
    let done = Math.min(len, FIRST_DATA);
    u8.set(src.subarray(off, off + done), (first + 4) * 4);
    for (let i = 1; i < n; i++) {
      const s = this.seqAt(pos + i);
      ci[s + 1] = -1;
      const k = Math.min(len - done, MORE_DATA);
      u8.set(src.subarray(off + done, off + done + k), (s + 2) * 4);
      done += k;
    }
    // publish: continuations first, the first slot last (see the header)
    for (let i = n - 1; i >= 0; i--) Atomics.compareExchange(ci, this.seqAt(pos + i), (pos + i) | 0, (pos + i + 1) | 0);
    return true;
  }

  /** An entry the ring has no room for: kept aside on the consumer thread (enableSpill), else lost. */
  private spilled(p: number, map: number, src: Uint8Array, off: number, len: number, kind: number): boolean {
    if (kind !== J_EVICTED) return false; // a touch: the sweep resumes at it later
    const sp = this.spill;
    if (sp === undefined || sp.length >= SPILL_MAX) return this.lost();
    sp.push([p, map, src.slice(off, off + len)]);
    return true;
  }

  private lost(): false {
    Atomics.add(this.ci, this.lostAt, 1);
    return false;
  }

  /** Entries pushed but not recorded (ring full, key too long, or skipped after a stall). */
  get lostCount(): number {
    return Atomics.load(this.ci, this.lostAt);
  }

  /** Whether entries are waiting (the consumer's cheap check). */
  pending(): boolean {
    return this.slots !== 0 && (Atomics.load(this.ci, this.tailAt) !== this.ci[this.headAt] || (this.spill !== undefined && this.spill.length > 0));
  }

  /**
   * The consumer (one thread only): calls `visit` for up to `max` published entries in order and
   * frees their slots. Returns how many it visited. An entry whose header is out of range (a
   * producer's torn write after a skip) is dropped.
   */
  drain(visit: JournalVisit, max: number, partitions: number, now = performance.now()): number {
    if (this.slots === 0) return 0;
    const ci = this.ci;
    const u8 = this.u8;
    let head = ci[this.headAt];
    let visited = 0;
    while (visited < max) {
      const s = this.seqAt(head);
      const seq = Atomics.load(ci, s);
      if (seq !== ((head + 1) | 0)) {
        if (Atomics.load(ci, this.tailAt) === head || !this.stalled(head, now)) break;
        // a producer died (or is stuck) between claiming this slot and publishing it: skip it
        if (Atomics.compareExchange(ci, s, head, (head + this.slots) | 0) === head) {
          this.lost();
          head = (head + 1) | 0;
          ci[this.headAt] = head;
          // the dead producer's other slots follow: the stall carries over to them
          this.stallAt = head;
        }
        continue;
      }
      this.stalling = false;
      const n = ci[s + 1] & 0xffff;
      const kind = ci[s + 1] >> 16;
      if (ci[s + 1] < 1 || n < 1 || n > ((Atomics.load(ci, this.tailAt) - head) | 0)) {
        // a continuation slot (its first was skipped) or garbage: free it alone
        Atomics.store(ci, s, (head + this.slots) | 0);
        head = (head + 1) | 0;
        ci[this.headAt] = head;
        continue;
      }
      // the first slot is published last, so the others are published too
      const p = ci[s + 2];
      const len = ci[s + 3] & 0xffff;
      const map = ci[s + 3] >>> 16;
      const ok = p >= 0 && p < partitions && len <= this.scratch.length && slotsFor(len) === n;
      if (ok) {
        const dst = this.scratch;
        let done = Math.min(len, FIRST_DATA);
        dst.set(u8.subarray((s + 4) * 4, (s + 4) * 4 + done), 0);
        for (let i = 1; i < n; i++) {
          const c = this.seqAt(head + i);
          const k = Math.min(len - done, MORE_DATA);
          dst.set(u8.subarray((c + 2) * 4, (c + 2) * 4 + k), done);
          done += k;
        }
      }
      for (let i = 0; i < n; i++) Atomics.store(ci, this.seqAt(head + i), (head + i + this.slots) | 0);
      head = (head + n) | 0;
      ci[this.headAt] = head;
      if (ok) {
        visited++;
        visit(p, map, this.scratch, len, kind);
      }
    }
    ci[this.headAt] = head;
    const sp = this.spill;
    if (sp !== undefined && sp.length > 0 && visited < max) {
      const take = sp.splice(0, max - visited);
      for (const [p, map, key] of take) visit(p, map, key, key.length, J_EVICTED);
      visited += take.length;
    }
    return visited;
  }

  /** Whether the head slot `head` has stayed unpublished for STALL_DRAINS drains and STALL_MS. */
  private stalled(head: number, now: number): boolean {
    if (!this.stalling || this.stallAt !== head) {
      this.stalling = true;
      this.stallAt = head;
      this.stallDrains = 0;
      this.stallSince = now;
      return false;
    }
    return ++this.stallDrains >= STALL_DRAINS && now - this.stallSince >= STALL_MS;
  }
}
