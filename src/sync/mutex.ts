/**
 * Futex-style mutex over one Int32 slot of a SharedArrayBuffer.
 *
 * Lock word:  bits 31..1 = holder id (threadId + 1, so 0 means "free"), bit 0 = waiters flag.
 *
 *   0                      unlocked
 *   (id << 1)              locked by thread `id - 1`, nobody waiting
 *   (id << 1) | 1          locked, and at least one thread may be sleeping on the word
 *
 * Recording the holder lets the member recover a lock whose holder died (the worker's `exit`,
 * or its parent's for a worker a worker started: store.takeDescendants): see `forceTake`.
 *
 * Acquire: a CAS from 0 (the uncontended path is one compareExchange). Under contention the
 * caller spins a little (critical sections are a few hundred ns), then sets the waiters bit and
 * sleeps on the word: `Atomics.wait` in workers, `Atomics.waitAsync` on the main thread, whose
 * event loop must never be blocked for long. Release is one exchange; only when the waiters bit
 * was set does it pay for `Atomics.notify`. A woken thread re-acquires *with* the waiters bit
 * set, because it cannot know whether others still sleep (Drepper, "Futexes are tricky", mutex 2).
 */
import { isMainThread, threadId } from 'node:worker_threads';

export const SELF_ID = threadId + 1;
const SPINS = 64;

/** This thread's lock acquisitions that found the lock held past the spin and had to wait (metrics.ts). */
export const lockWaits = { count: 0 };

/** Returns true when the lock was free and is now held by this thread. */
export function tryLock(a: Int32Array, i: number): boolean {
  return Atomics.compareExchange(a, i, 0, SELF_ID << 1) === 0;
}

function spinAcquire(a: Int32Array, i: number): boolean {
  for (let s = 0; s < SPINS; s++) {
    if (Atomics.load(a, i) === 0 && Atomics.compareExchange(a, i, 0, SELF_ID << 1) === 0) return true;
  }
  return false;
}

/**
 * One step of the contended path: try to take the lock with the waiters bit, else make sure the
 * bit is set. Returns -1 when acquired, otherwise the word value to sleep on.
 */
function contendedStep(a: Int32Array, i: number): number {
  const c = Atomics.load(a, i);
  if (c === 0) {
    return Atomics.compareExchange(a, i, 0, (SELF_ID << 1) | 1) === 0 ? -1 : Atomics.load(a, i) | 1;
  }
  if ((c & 1) === 0) {
    const prev = Atomics.compareExchange(a, i, c, c | 1);
    if (prev !== c) return prev === 0 ? contendedStep(a, i) : prev | 1;
  }
  return c | 1;
}

/**
 * Blocking acquire for worker threads (and for the main thread where a block is known to be
 * short, e.g. the member's own recovery). Returns false on timeout, or once the word at
 * `a[stopAt]` is non-zero (a grid's closed flag: whoever sets it wakes the lock's sleepers,
 * see store.markClosed; -1: no such word).
 */
export function lockSync(a: Int32Array, i: number, timeoutMs: number, stopAt = -1): boolean {
  if (tryLock(a, i) || spinAcquire(a, i)) return true;
  lockWaits.count++;
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = contendedStep(a, i);
    if (v === -1) return true;
    const left = deadline - performance.now();
    if (left <= 0 || (stopAt >= 0 && Atomics.load(a, stopAt) !== 0)) return false;
    if (isMainThread) {
      // The main thread may not sleep for long; callers on the main thread use lockAsync. This
      // branch only serves short internal waits, so it sleeps in 1 ms slices.
      Atomics.wait(a, i, v, Math.min(left, 1));
    } else {
      Atomics.wait(a, i, v, left);
    }
  }
}

/**
 * Non-blocking acquire for the main thread: waits with Atomics.waitAsync. Resolves false on
 * timeout, or once `a[stopAt]` is non-zero (as lockSync).
 */
export async function lockAsync(a: Int32Array, i: number, timeoutMs: number, stopAt = -1): Promise<boolean> {
  if (tryLock(a, i) || spinAcquire(a, i)) return true;
  lockWaits.count++;
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = contendedStep(a, i);
    if (v === -1) return true;
    const left = deadline - performance.now();
    if (left <= 0 || (stopAt >= 0 && Atomics.load(a, stopAt) !== 0)) return false;
    await waitAsyncAlive(a, i, v, left);
  }
}

/**
 * `Atomics.waitAsync(a, i, v, ms)` that keeps the event loop alive while it is pending. A pending
 * waitAsync does not, and the usual other holders (the virtual nodes) are unref'd worker threads:
 * without a ref'd handle for the wait, a process whose only work left is this await exits (code
 * 13) before the word changes. `ms` must be finite.
 */
export async function waitAsyncAlive(a: Int32Array, i: number, v: number, ms: number): Promise<void> {
  const r = Atomics.waitAsync(a, i, v, ms);
  if (!r.async) return;
  // not a timer of `ms`: it fired at the moment the wait's own timeout did, and when it ran first
  // the loop had nothing left and the process exited (code 13) in the middle of a lock() — 2 to 5
  // runs in 6 of a lease wait. The handle lives until the wait settles, whenever that is.
  const alive = setInterval(noop, KEEP_ALIVE_MS);
  try {
    await r.value;
  } finally {
    clearInterval(alive);
  }
}

/** Period of waitAsyncAlive's keep-alive handle: it only has to exist, not to fire. */
const KEEP_ALIVE_MS = 1 << 30;

function noop(): void {}

export function unlock(a: Int32Array, i: number): void {
  const prev = Atomics.exchange(a, i, 0);
  if ((prev & 1) !== 0) Atomics.notify(a, i, 1);
}

/** Holder thread id (worker_threads.threadId) of a held lock, or -1 when free. */
export function holderOf(a: Int32Array, i: number): number {
  const w = Atomics.load(a, i);
  return w === 0 ? -1 : (w >>> 1) - 1;
}

/**
 * Recovery: if the lock is held by `deadThreadId`, take it over for this thread and return true.
 * The caller repairs the protected state and then calls `unlock`, which wakes any sleepers.
 */
export function forceTake(a: Int32Array, i: number, deadThreadId: number): boolean {
  for (;;) {
    const w = Atomics.load(a, i);
    if (w === 0 || (w >>> 1) !== deadThreadId + 1) return false;
    if (Atomics.compareExchange(a, i, w, (SELF_ID << 1) | (w & 1)) === w) return true;
  }
}
