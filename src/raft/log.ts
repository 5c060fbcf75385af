/**
 * The in-memory Raft log of one node: a snapshot (what compaction left: index, term, config and
 * the application's bytes) followed by the entries after it. Entries up to `stableIndex` are on
 * the application's stable storage; those after it were produced since the last `ready()` and
 * are handed out by the next one ("unstable", as etcd calls them). A truncation (a follower
 * overwriting a conflicting suffix) moves `stableIndex` back, so the next `ready()` hands out the
 * replacement entries and the application overwrites its stored suffix.
 */
import type { Config, Entry, Snapshot } from './types.js';

export class RaftLog {
  /** the last compaction point (index 0 / term 0 / bootstrap config before any) */
  snapshot: Snapshot;
  /** entries with indexes snapshot.index+1 .. lastIndex, in order */
  entries: Entry[];
  /** the highest index persisted by the application (acknowledged through advance()) */
  stableIndex: number;
  /** a snapshot received from a leader, not yet handed to the application */
  unstableSnapshot: Snapshot | undefined;
  committed: number;
  applied: number;

  constructor(snapshot: Snapshot, entries: Entry[], committed: number) {
    this.snapshot = snapshot;
    this.entries = entries;
    this.stableIndex = snapshot.index + entries.length;
    this.unstableSnapshot = undefined;
    this.committed = committed;
    this.applied = snapshot.index;
  }

  get firstIndex(): number { return this.snapshot.index + 1; }
  get lastIndex(): number { return this.snapshot.index + this.entries.length; }
  get lastTerm(): number { return this.termAt(this.lastIndex) as number; }

  /** The term of the entry at `i`; undefined when compacted away or beyond the end. */
  termAt(i: number): number | undefined {
    const s = this.snapshot.index;
    if (i === s) return this.snapshot.term;
    if (i < s || i > s + this.entries.length) return undefined;
    return this.entries[i - s - 1].term;
  }
  entryAt(i: number): Entry | undefined {
    const s = this.snapshot.index;
    return i > s && i <= s + this.entries.length ? this.entries[i - s - 1] : undefined;
  }
  matchTerm(i: number, term: number): boolean { return this.termAt(i) === term; }

  /** Entries lo..hi inclusive (both within firstIndex..lastIndex), at most `max` of them. */
  slice(lo: number, hi: number, max: number): Entry[] {
    const s = this.snapshot.index;
    const end = Math.min(hi, lo + max - 1);
    return end < lo ? [] : this.entries.slice(lo - s - 1, end - s);
  }

  /** Raft §5.4.1: is a log ending at (lastIndex, lastTerm) at least as up to date as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const t = this.lastTerm;
    return lastTerm > t || (lastTerm === t && lastIndex >= this.lastIndex);
  }

  /**
   * Appends `entries` (consecutive, starting right after some index we have or had), keeping a
   * matching prefix and truncating at the first conflict. Entries at or below the snapshot are
   * skipped: they are committed, hence equal. Returns the index of the first entry written, or
   * undefined when everything already matched (nothing to persist).
   */
  appendMatching(entries: readonly Entry[]): number | undefined {
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k];
      if (e.index <= this.snapshot.index) continue;
      if (this.termAt(e.index) === e.term) continue;
      // first conflict or first new entry: drop everything from here, append the rest
      this.entries.length = e.index - this.snapshot.index - 1;
      for (let j = k; j < entries.length; j++) this.entries.push(entries[j]);
      if (this.stableIndex >= e.index) this.stableIndex = e.index - 1;
      return e.index;
    }
    return undefined;
  }

  /** Leader append: one entry at lastIndex+1. */
  push(e: Entry): void { this.entries.push(e); }

  /** Replaces the whole log by a snapshot received from the leader. */
  restore(s: Snapshot): void {
    this.snapshot = s;
    this.entries = [];
    this.unstableSnapshot = s;
    this.stableIndex = s.index;
    this.committed = s.index;
    // applied moves when the application acknowledges the snapshot (advance)
  }

  /** Drops entries up to `index` (≤ applied), which the application covered with `data`. */
  compact(index: number, config: Config, data: Uint8Array): Snapshot {
    const term = this.termAt(index) as number;
    this.entries = this.entries.slice(index - this.snapshot.index);
    this.snapshot = { index, term, config, data };
    return this.snapshot;
  }

  /** Largest index ≤ `index` whose term is ≤ `term` (at least the snapshot index): the conflict hint. */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex);
    while (i > this.snapshot.index && (this.termAt(i) as number) > term) i--;
    return i;
  }

  /** The config in force at `index`: the last conf entry at or before it, else the snapshot's. */
  configAt(index: number): { config: Config; index: number } {
    for (let i = Math.min(index, this.lastIndex); i > this.snapshot.index; i--) {
      const e = this.entries[i - this.snapshot.index - 1];
      if (e.type === 'conf') return { config: e.config as Config, index: i };
    }
    return { config: this.snapshot.config, index: this.snapshot.index };
  }
}
