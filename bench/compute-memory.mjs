// Array buffer memory a member keeps after many entry processors (a one-member cluster in this
// process): node --expose-gc bench/compute-memory.mjs [dir] [computes]. `dir`: the built tree to
// load (default this one). Each compute's request record (src/cluster/dedupe.ts) keeps its result
// bytes; a result that crossed from a pool thread as a view of the packer's 8 KiB buffer kept the
// whole buffer (+940 MiB after 120,000 computes, against +2 MiB before pool threads).
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const dir = resolve(process.argv[2] ?? fileURLToPath(new URL('..', import.meta.url)));
const N = Number(process.argv[3] ?? 60_000);
const { createGrid } = await import(pathToFileURL(resolve(dir, 'dist/index.js')).href);
const procs = pathToFileURL(resolve(dir, 'test/fixtures/compute-procs.mjs'));
const g = await createGrid({ workers: 1, memory: '32MB', compute: { modules: { procs } }, cluster: { host: '127.0.0.1', port: 0, seeds: [], secret: 'compute-memory-bench-secret-0123', backups: 1 } });
while (!g.cluster.currentTable?.owners.every((o) => o[0] === g.cluster.memberId)) await new Promise((r) => setTimeout(r, 50));
const m = g.map('compute-memory');
const gc = globalThis.gc ?? (() => console.error('run with --expose-gc for figures after a full collection'));
gc();
const before = process.memoryUsage().arrayBuffers;
for (let i = 0; i < N; i += 64) await Promise.all(Array.from({ length: 64 }, (_, j) => m.compute(`k${i + j}`, { module: 'procs', name: 'increment' }, 1)));
gc();
console.log(`${dir}: array buffers after ${N} computes: +${((process.memoryUsage().arrayBuffers - before) / 1048576).toFixed(1)} MiB`);
await g.close();
process.exit(0);
