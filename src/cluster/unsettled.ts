/**
 * Reads on a primary serve only what its copies hold (native-notes.md, "Reads during
 * replication").
 *
 * A write on the primary is applied to shared memory first and acknowledged once every copy holds
 * the key's new state. Between the two, the newest local state is *dirty*: if the write then fails
 * (a copy refused it because it is the primary of a newer table, or no table dropped a copy that
 * missed it), the next primary does not hold it, and a read that returned it here was followed by
 * reads that do not see it (nemesis seed 8000 schedule 34: a register read "p88-1", then an older
 * value, then "p88-1" again through the set's retry).
 *
 * So for each key with writes applied here whose replication has not settled, the primary keeps
 * the state its copies are known to hold (`stable`): the key's state before the first such write,
 * then the state shipped by each write as it is acknowledged (writes ship whole key states, in
 * partition order, so a copy that applied a later state holds every earlier write's effect).
 * Reads of such a key — on the member's main thread and FAST/grid.op reads from other members —
 * serve `stable`; reads of other keys read shared memory as before. A write whose replication
 * failed after it was applied here keeps its key here until a later write of the key is
 * acknowledged (its state then includes the failed write's effect, now held by the copies) or the
 * partition changes hands.
 *
 * Other threads of the process read their local primaries from shared memory without the main
 * thread: they see, per partition, how many keys are unsettled (`ShardStore.unsettledIn`) and
 * route reads of such a partition through the main thread (runtime/forward.ts).
 */
import type { ShardStore } from '../storage/store.js';
import { ChurnMap } from '../churn.js';
import type { RawState } from './records.js';

/** The key of map/key in the primary's per-key records (unsettled writes, request records in flight). */
export function keyOf(map: string, key: string): string {
  return map + '\u0000' + key;
}

/** One key with writes applied on this primary whose replication has not settled. */
export class Unsettled {
  /** Writes begun and not yet settled. */
  open = 1;
  /** Sequence number of the last state read for shipping (0: none yet). */
  seq = 0;
  /** Sequence number of `stable` (0: the state before the first unsettled write). */
  stableSeq = 0;
  /** A failed write's effect may be here and on no copy until a state with this sequence number or later is acknowledged (0: none failed). */
  failedFrom = 0;

  constructor(
    readonly p: number,
    /** The state every copy of the partition holds: what reads of the key serve. */
    public stable: RawState,
  ) {}
}

export class UnsettledWrites {
  private readonly keys = new ChurnMap<string, Unsettled>();
  /**
   * Test-only negative control: reads serve the newest local state again (the dirty read this
   * module prevents); `SHARDGRID_UNSAFE_DIRTY_READS=1` sets it for a whole process.
   */
  bypass = process.env.SHARDGRID_UNSAFE_DIRTY_READS === '1';

  constructor(private readonly store: ShardStore) {}

  get size(): number {
    return this.keys.size;
  }

  /**
   * A write of key `k` (`map\u0000key`) in partition p is about to be applied: `pre()` reads the
   * key's state now (called only when the key has no unsettled write yet, in the same synchronous
   * run as the apply or before it with every later write of the key tracked here too).
   */
  begin(p: number, k: string, pre: () => RawState): Unsettled {
    return this.join(k) ?? this.create(p, k, pre());
  }

  /**
   * `begin` without a closure, in two steps: the key's record when it has unsettled writes (this
   * write joins it), else undefined — then `create(p, k, state)` with the key's state read now,
   * in the same synchronous run.
   */
  join(k: string): Unsettled | undefined {
    const u = this.keys.size === 0 ? undefined : this.keys.get(k);
    if (u !== undefined) u.open++;
    return u;
  }

  /** The record of key `k` (no unsettled write yet: `join` gave undefined), `stable` its state now. */
  create(p: number, k: string, stable: RawState): Unsettled {
    if (this.bypass) return new Unsettled(p, null); // tracked nowhere: settle and abandon find no key
    const created = new Unsettled(p, stable);
    this.keys.set(k, created);
    this.store.addUnsettled(p, 1);
    return created;
  }

  /**
   * Whether `settle(k, u, …, ok = true)` can need the settled write's state: only when the record
   * outlives that settle (another write of the key is still open, or an earlier one failed). When
   * false the caller may pass any state (it is dropped with the record), so a write need not
   * decode the value it shipped (fast-serve.ts serveSet keeps it as the request's bytes).
   */
  needsState(u: Unsettled): boolean {
    return u.open > 1 || u.failedFrom !== 0;
  }

  /** The state of `u` is being read for shipping: its sequence number. */
  shipped(u: Unsettled): number {
    return ++u.seq;
  }

  /** The write's apply failed: nothing of it is in shared memory. */
  abandon(k: string, u: Unsettled): void {
    u.open--;
    this.maybeDone(k, u);
  }

  /**
   * The write settled. `seq` > 0 and ok: every copy holds the state shipped as `seq` (`state`).
   * Not ok: the write was applied here but may be on no copy.
   */
  settle(k: string, u: Unsettled, seq: number, state: RawState, ok: boolean): void {
    u.open--;
    if (ok && seq > 0) {
      if (seq > u.stableSeq) {
        u.stable = state;
        u.stableSeq = seq;
      }
      if (u.failedFrom !== 0 && u.stableSeq >= u.failedFrom) u.failedFrom = 0;
    } else {
      // any state read after now includes this write's effect: one of those acknowledged clears it
      u.failedFrom = Math.max(u.failedFrom, u.seq + 1);
    }
    this.maybeDone(k, u);
  }

  private maybeDone(k: string, u: Unsettled): void {
    if (u.open > 0 || u.failedFrom !== 0 || this.keys.get(k) !== u) return;
    this.keys.delete(k);
    this.store.addUnsettled(u.p, -1);
  }

  /** The unsettled record of key `k`, or undefined (read shared memory). */
  get(k: string): Unsettled | undefined {
    return this.keys.size === 0 ? undefined : this.keys.get(k);
  }

  /**
   * Forgets the keys of the partitions `drop` says this member no longer serves as they were (it
   * stopped being their primary, or their epoch changed): reads there are refused now, and writes
   * still settling fail as moved.
   */
  dropWhere(drop: (p: number) => boolean): void {
    if (this.keys.size === 0) return;
    for (const [k, u] of this.keys) {
      if (!drop(u.p)) continue;
      this.keys.delete(k);
      this.store.addUnsettled(u.p, -1);
    }
  }
}
