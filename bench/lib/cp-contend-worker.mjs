// Worker of the coordination scenario's contended rows: waits for the start flag, then runs
// `n` lock+unlock cycles on one lock shared with the other worker(s), and reports the time.
// variant 'sg': grid.cp.lock(name).lockSync/unlockSync (fair, FIFO hand-off);
// variant 'futex': the project's own unfair futex mutex (src/sync/mutex.ts) on a word of `shared`.
import { parentPort, workerData } from 'node:worker_threads';
import { attachGrid } from '../../dist/index.js';
import { lockSync, unlock } from '../../dist/sync/mutex.js';

const { handle, variant, n, shared, name } = workerData;
const sh = new Int32Array(shared);
const grid = await attachGrid(handle);
const lock = grid.cp.lock(name);
parentPort.postMessage({ type: 'ready' });
while (Atomics.load(sh, 0) === 0) Atomics.wait(sh, 0, 0, 50);
const t0 = performance.now();
if (variant === 'sg') {
  for (let i = 0; i < n; i++) {
    lock.lockSync();
    sh[2]++;
    lock.unlockSync();
  }
} else {
  for (let i = 0; i < n; i++) {
    lockSync(sh, 1, 60_000);
    sh[2]++;
    unlock(sh, 1);
  }
}
parentPort.postMessage({ type: 'done', ms: performance.now() - t0 });
await grid.close();
