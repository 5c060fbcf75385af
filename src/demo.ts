/**
 * The main job on an embedded default: create a grid, write 1,000,000 entries, read them in random
 * order from the main thread and from worker threads attached to the same memory, and print what
 * it did and how fast — next to lru-cache doing the same in the same process when it is installed
 * (it is a devDependency of this repository).
 *
 * The figures are at 1M keys in uniform random order on purpose: that is what a cache of real size
 * sees. A small key set read round-robin (what fits the CPU caches and the read memo) would show
 * much higher rates that no application gets; native-notes.md ("The memory floor at 1M keys")
 * explains what bounds these.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { createGrid } from './index.js';

const N = Number(process.env.SHARDGRID_DEMO_ENTRIES ?? 1_000_000);
const READS = Math.min(N, 500_000);
const THREADS = Math.max(2, Math.min(4, os.availableParallelism()));

const rate = (n: number, ms: number): string => `${Math.round((n / ms) * 1000).toLocaleString('en-US')} ops/s`;
const fmt = (n: number): string => n.toLocaleString('en-US');

interface Peer {
  set(k: string, v: string): unknown;
  get(k: string): string | undefined;
}

/** lru-cache bounded like the grid, or undefined when it is not installed. */
async function lruCache(maxBytes: number): Promise<Peer | undefined> {
  try {
    const { LRUCache } = (await import('lru-cache')) as unknown as { LRUCache: new (o: object) => Peer };
    return new LRUCache({ maxSize: maxBytes, sizeCalculation: (v: string, k: string) => k.length + v.length });
  } catch {
    return undefined;
  }
}

/** READS key indexes, uniformly random (seeded). */
function randomOrder(n: number): Uint32Array {
  const idx = new Uint32Array(READS);
  let s = 2463534242;
  for (let i = 0; i < READS; i++) {
    // xorshift32: every key count up to 2^32, no short cycles in the low bits (an LCG modulo n has them)
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    idx[i] = (s >>> 0) % n;
  }
  return idx;
}

async function main(): Promise<void> {
  const memory = N > 300_000 ? '512MB' : '256MB';
  const grid = await createGrid({ memory });
  const users = grid.map<string>('users');
  const keys = Array.from({ length: N }, (_, i) => `user:${i}`);
  const value = 'v'.repeat(100);
  const order = randomOrder(N);
  console.log(`shardgrid demo: ${grid.stats().workers.length} virtual nodes, ${grid.stats().partitions.length} partitions, memory ${memory}, ${fmt(N)} keys of 100 B, reads in uniform random order`);

  let t = performance.now();
  for (let i = 0; i < N; i++) await users.set(keys[i], value);
  let ms = performance.now() - t;
  const setRate = rate(N, ms);

  t = performance.now();
  let found = 0;
  for (let i = 0; i < READS; i++) if ((await users.get(keys[order[i]])) === value) found++;
  ms = performance.now() - t;
  const getRate = rate(READS, ms);

  t = performance.now();
  let foundSync = 0;
  for (let i = 0; i < READS; i++) if (users.getSync(keys[order[i]]) === value) foundSync++;
  ms = performance.now() - t;
  const getSyncRate = rate(READS, ms);
  console.log(`main thread   set ${fmt(N)} (awaited) ${setRate}; get ${fmt(READS)} (awaited) ${getRate}; getSync ${fmt(READS)} ${getSyncRate}  (${found + foundSync} of ${2 * READS} found)`);

  const lru = await lruCache(512 * 1024 * 1024);
  if (lru !== undefined) {
    t = performance.now();
    for (let i = 0; i < N; i++) lru.set(keys[i], value);
    const lset = rate(N, performance.now() - t);
    t = performance.now();
    let hits = 0;
    for (let i = 0; i < READS; i++) if (lru.get(keys[order[i]]) === value) hits++;
    console.log(`lru-cache 11  set ${fmt(N)} ${lset}; get ${fmt(READS)} ${rate(READS, performance.now() - t)}  (${hits} found; same process, same keys and order)`);
  }

  // Worker threads attach to the same grid: they read what main wrote and write their own keys.
  t = performance.now();
  const results = await Promise.all(
    Array.from({ length: THREADS }, (_, w) =>
      new Promise<{ read: number; ok: number; wrote: number; ms: number }>((resolve, reject) => {
        const worker = new Worker(new URL('./demo-worker.js', import.meta.url), { workerData: { handle: grid.handle, w, threads: THREADS, n: N, reads: READS, value } });
        worker.once('message', resolve);
        worker.once('error', reject);
      }),
    ),
  );
  const wall = performance.now() - t;
  // each worker times its own loop (after attaching and building its key array)
  ms = Math.max(...results.map((r) => r.ms));
  const reads = results.reduce((a, r) => a + r.read, 0);
  const ok = results.reduce((a, r) => a + r.ok, 0);
  const wrote = results.reduce((a, r) => a + r.wrote, 0);
  console.log(`${THREADS} workers     getSync ${fmt(reads)} random keys (${fmt(ok)} found) + set ${fmt(wrote)} in ${ms.toFixed(0)} ms: ${rate(reads + wrote, ms)} together (${wall.toFixed(0)} ms with start-up)`);

  let seen = 0;
  for (let w = 0; w < THREADS; w++) if ((await users.get(`worker:${w}:0`)) !== undefined) seen++;
  const s = grid.stats();
  console.log(`main sees the workers' writes: ${seen}/${THREADS}; entries ${fmt(s.entries)}; memory ${(s.bytesUsed / 1048576).toFixed(1)} MiB of ${(s.bytesLimit / 1048576).toFixed(0)} MiB (${(s.bytesUsed / s.entries).toFixed(0)} B per entry); hits ${fmt(s.hits)}, misses ${s.misses}`);
  await grid.close();
  if (found !== READS || foundSync !== READS || ok !== reads || seen !== THREADS) {
    console.error('demo: data check failed');
    process.exitCode = 1;
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
