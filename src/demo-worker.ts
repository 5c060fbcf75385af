// Worker half of the demo: attach to the grid by handle, read the main thread's keys, write our own.
import { parentPort, workerData } from 'node:worker_threads';
import { attachGrid } from './index.js';

const { handle, w, threads, n, value } = workerData as { handle: Parameters<typeof attachGrid>[0]; w: number; threads: number; n: number; value: string };
const grid = await attachGrid(handle);
const users = grid.map<string>('users');
const t = performance.now();
let read = 0;
let ok = 0;
for (let i = w; i < n; i += threads) {
  read++;
  if ((await users.get(`user:${i}`)) === `${i}:${value}`) ok++;
}
const share = Math.floor(n / threads / 2);
for (let i = 0; i < share; i++) await users.set(`worker:${w}:${i}`, value);
parentPort!.postMessage({ read, ok, wrote: share, ms: performance.now() - t });
await grid.close();
