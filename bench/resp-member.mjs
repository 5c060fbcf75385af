// A cluster member's RESP endpoint under redis-benchmark, with the CPU time of every process: this
// process is one data member of a 3-member cluster (the other two are child processes, backups
// 1), as in the `resp` scenario's cluster rows. Prints requests/s and CPU µs per request of the
// member under load, of the other two, and of redis-benchmark, and each member's frames between
// members: frames sent per request and messages per frame received (the transport's counters; the
// other two print theirs on SIGHUP, bench/lib/cluster-member.mjs).
//
// Usage: npm run build && node bench/resp-member.mjs [--test set|get] [--pipeline 16] [--n 200000] [--c 50]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createGrid } from '../dist/index.js';
import { SECRET, memberStats, startMember, waitSettled } from './lib/cluster.mjs';

const { values: opt } = parseArgs({ options: { test: { type: 'string', default: 'set' }, pipeline: { type: 'string', default: '16' }, n: { type: 'string', default: '200000' }, c: { type: 'string', default: '50' } } });
const cpuOf = (pid) => {
  const rest = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(rest[11]) + Number(rest[12])) / 100) * 1000;
};
const m0 = await startMember([]);
const m1 = await startMember([m0.url]);
const grid = await createGrid({ workers: 1, memory: '256MB', resp: { port: 0 }, cluster: { host: '127.0.0.1', port: 0, seeds: [m0.url], secret: SECRET, backups: 1 } });
await waitSettled(grid, 3, 30_000);
const args = ['-h', '127.0.0.1', '-p', String(grid.resp.port), '-t', opt.test, '-n', opt.n, '-r', '1000000', '-d', '100', '-c', opt.c, '-P', opt.pipeline, '--csv'];
/** Transport counters of member i (0: this process), as of now. */
const statsOf = (i) =>
  i === 0
    ? Promise.resolve({ ...grid.cluster.transport._stats })
    : memberStats([m0, m1][i - 1]);
const framesBefore = await Promise.all([0, 1, 2].map(statsOf));
const pids = [process.pid, m0.proc.pid, m1.proc.pid];
const before = pids.map(cpuOf);
const t0 = performance.now();
const out = await new Promise((resolve) => {
  const p = spawn('redis-benchmark', args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let s = '';
  p.stdout.on('data', (d) => (s += d));
  p.on('close', () => resolve(s));
  pids.push(p.pid);
  before.push(0);
});
const dt = performance.now() - t0;
const rps = Number(/"[A-Z]+[^"]*","([0-9.]+)"/.exec(out)?.[1] ?? 0);
const n = Number(opt.n);
const after = pids.slice(0, 3).map(cpuOf);
console.log(`redis-benchmark ${args.join(' ').replace(String(grid.resp.port), '<port>')}`);
console.log(`${rps.toFixed(0)} req/s; CPU µs per request: this member ${(((after[0] - before[0]) * 1000) / n).toFixed(1)}, others ${(((after[1] - before[1]) * 1000) / n).toFixed(1)} / ${(((after[2] - before[2]) * 1000) / n).toFixed(1)}; cores busy ${[0, 1, 2].map((i) => ((after[i] - before[i]) / dt).toFixed(2)).join(' / ')}`);
const framesAfter = await Promise.all([0, 1, 2].map(statsOf));
const d = (i, k) => framesAfter[i][k] - framesBefore[i][k];
console.log(`frames between members: ${[0, 1, 2].map((i) => `${['this member', 'other', 'other'][i]} ${(d(i, 'framesOut') / n).toFixed(3)} sent per request, ${(d(i, 'messagesIn') / d(i, 'framesIn')).toFixed(1)} messages per frame received`).join('; ')}`);
await grid.close();
m0.proc.kill('SIGTERM');
m1.proc.kill('SIGTERM');
process.exit(0);
