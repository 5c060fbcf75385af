// Worker half of the demo: attach to the grid by handle, read the main thread's keys in random
// order, write our own.
import { parentPort, workerData } from 'node:worker_threads';
import { attachGrid } from './index.js';

const { handle, w, threads, n, reads, value } = workerData as {
  handle: Parameters<typeof attachGrid>[0];
  w: number;
  threads: number;
  n: number;
  reads: number;
  value: string;
};
const grid = await attachGrid(handle);
const users = grid.map<string>('users');
const keys = Array.from({ length: n }, (_, i) => `user:${i}`);
const mine = Math.floor(reads / threads);
const t = performance.now();
let ok = 0;
let s = (2463534242 ^ Math.imul(w + 1, 0x9e3779b1)) >>> 0 || 1;
for (let i = 0; i < mine; i++) {
  s ^= s << 13;
  s ^= s >>> 17;
  s ^= s << 5;
  if (users.getSync(keys[(s >>> 0) % n]) === value) ok++;
}
const share = Math.floor(mine / 4);
for (let i = 0; i < share; i++) await users.set(`worker:${w}:${i}`, value);
parentPort!.postMessage({ read: mine, ok, wrote: share, ms: performance.now() - t });
await grid.close();
