/**
 * Workers this thread started that have not exited yet (grid.ts's process-wide 'worker' listener
 * reports them), and who waits for their exit. A worker's exit is when the grid recovers the locks
 * it held (grid.ts threadExited); a caller that stopped a thread (the compute pool, a processor past
 * its time) waits for that before it answers, so its next call finds the partition free.
 */
const live = new Map<number, Array<() => void>>();

/** A worker of this thread started. */
export function threadStarted(tid: number): void {
  live.set(tid, []);
}

/** A worker of this thread exited and its locks were recovered: wakes whoever waits for it. */
export function threadGone(tid: number): void {
  const waiting = live.get(tid);
  live.delete(tid);
  if (waiting !== undefined) for (const wake of waiting) wake();
}

/** Resolves once worker `tid` of this thread has exited and been recovered; at once when it is not a running worker of this thread. */
export function afterThreadExit(tid: number): Promise<void> {
  const waiting = live.get(tid);
  if (waiting === undefined) return Promise.resolve();
  return new Promise((resolve) => waiting.push(resolve));
}
