/**
 * A millisecond clock that every thread of the process reads alike. `performance.now()` counts
 * from each thread's own start, so readings of two threads differ by a constant; this adds the
 * thread's offset to the monotonic clock under `process.hrtime` (the same for all threads),
 * measured once when the module loads (error under 1 ms). Stops never: like performance.now it
 * keeps running while the process is stopped (SIGSTOP), which is what lease checks need.
 */
const OFFSET = Number(process.hrtime.bigint() / 1_000_000n) - performance.now();

/** Now on the process-wide clock, ms. */
export function sharedNow(): number {
  return performance.now() + OFFSET;
}

/** A reading of this thread's performance.now() on the process-wide clock. */
export function toShared(perfMs: number): number {
  return perfMs + OFFSET;
}
