/**
 * Writes waiting on the partition table (replicas.ts `untilTable`): each waiter is a check that
 * returns true once it settled (and is then forgotten). Checks run on every table applied, and
 * every LEASE_WATCH_MS while any wait (with `leaseCheck`), and all at once with `undefined` when
 * the member stops serving.
 *
 * A check that settles a write may, in the same call, start the write's next wait (a copy that
 * missed a write was dropped, so the write now waits for a second in-sync copy): that new waiter
 * is added while the list is being run. `run` keeps it. (It used to be lost: the list was
 * replaced by the filtered old one, and the write hung until its caller timed out; one-way
 * partitions showed it as ~5 s of unavailability, nemesis seed 40 schedule 0.)
 */
import type { PartitionTable } from '../ring/table.js';

export type TableCheck = (t: PartitionTable | undefined, leaseCheck?: boolean) => boolean;

export class TableWaiters {
  private list: TableCheck[] = [];

  get size(): number {
    return this.list.length;
  }

  add(check: TableCheck): void {
    this.list.push(check);
  }

  /** Forgets a waiter (its own timeout fired). */
  remove(check: TableCheck): void {
    const i = this.list.indexOf(check);
    if (i >= 0) this.list.splice(i, 1);
  }

  /** Runs every waiter against `t`; keeps those that did not settle, and any added meanwhile. */
  run(t: PartitionTable | undefined, leaseCheck = false): void {
    if (this.list.length === 0) return;
    const running = this.list;
    this.list = [];
    const keep: TableCheck[] = [];
    for (const w of running) if (!w(t, leaseCheck)) keep.push(w);
    if (keep.length > 0) this.list = this.list.length === 0 ? keep : keep.concat(this.list);
  }

  /** Settles every waiter with `undefined` (no table: each fails as moved), including any added meanwhile. */
  failAll(): void {
    while (this.list.length > 0) for (const w of this.list.splice(0)) w(undefined);
  }
}
