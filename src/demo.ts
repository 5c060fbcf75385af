/**
 * The main job on an embedded default: create a grid, write and read a few hundred thousand
 * entries from the main thread and from worker threads attached to the same memory, and print
 * what it did and how fast.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { createGrid } from './index.js';

const N = Number(process.env.SHARDGRID_DEMO_ENTRIES ?? 300_000);
const THREADS = Math.max(2, Math.min(4, os.availableParallelism()));

const rate = (n: number, ms: number): string => `${Math.round((n / ms) * 1000).toLocaleString('en-US')} ops/s`;

async function main(): Promise<void> {
  const grid = await createGrid({ memory: '256MB' });
  const users = grid.map<string>('users');
  const value = 'v'.repeat(100);
  console.log(`shardgrid demo: ${grid.stats().workers.length} virtual nodes, ${grid.stats().partitions.length} partitions, page ${grid.stats().pageSize} B`);

  let t = performance.now();
  for (let i = 0; i < N; i++) await users.set(`user:${i}`, `${i}:${value}`);
  let ms = performance.now() - t;
  console.log(`main thread   set ${N.toLocaleString('en-US')} × 100 B strings  ${ms.toFixed(0)} ms  ${rate(N, ms)}`);

  t = performance.now();
  let found = 0;
  for (let i = 0; i < N; i++) if ((await users.get(`user:${i}`)) === `${i}:${value}`) found++;
  ms = performance.now() - t;
  console.log(`main thread   get ${N.toLocaleString('en-US')}  ${ms.toFixed(0)} ms  ${rate(N, ms)}  (${found} correct)`);

  // Worker threads attach to the same grid: they read what main wrote and write their own keys.
  t = performance.now();
  const results = await Promise.all(
    Array.from({ length: THREADS }, (_, w) =>
      new Promise<{ read: number; ok: number; wrote: number; ms: number }>((resolve, reject) => {
        const worker = new Worker(new URL('./demo-worker.js', import.meta.url), { workerData: { handle: grid.handle, w, threads: THREADS, n: N, value } });
        worker.once('message', resolve);
        worker.once('error', reject);
      }),
    ),
  );
  ms = performance.now() - t;
  const reads = results.reduce((a, r) => a + r.read, 0);
  const ok = results.reduce((a, r) => a + r.ok, 0);
  const wrote = results.reduce((a, r) => a + r.wrote, 0);
  console.log(`${THREADS} workers     get ${reads.toLocaleString('en-US')} (${ok} correct) + set ${wrote.toLocaleString('en-US')}  ${ms.toFixed(0)} ms  ${rate(reads + wrote, ms)} together`);

  let seen = 0;
  for (let w = 0; w < THREADS; w++) if ((await users.get(`worker:${w}:0`)) !== undefined) seen++;
  const s = grid.stats();
  console.log(`main sees the workers' writes: ${seen}/${THREADS}; entries ${s.entries.toLocaleString('en-US')}; memory ${(s.bytesUsed / 1048576).toFixed(1)} MiB of ${(s.bytesLimit / 1048576).toFixed(0)} MiB; hits ${s.hits.toLocaleString('en-US')}, misses ${s.misses}`);
  await grid.close();
  if (found !== N || ok !== reads || seen !== THREADS) {
    console.error('demo: data check failed');
    process.exitCode = 1;
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
