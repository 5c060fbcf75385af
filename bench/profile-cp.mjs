// Where the time of a clustered grid.cp call goes: the coordination scenario's cluster half (3 data
// members in child processes, a lite member in this process), then lock+unlock (each loop its own
// lock name) or incrementAndGet (one counter) at concurrency C: unprofiled runs (ops/s, CPU time of
// each process), then one run with the CPU profiler on in every process (bench/lib/profiler.mjs;
// the data members start and stop theirs on SIGUSR2, bench/lib/cluster-member.mjs), and the top
// functions of each. The metadata leader is the member whose main thread is busiest.
//
// Usage: npm run build && node bench/profile-cp.mjs [--op lock|incr] [--c 64] [--seconds 3] [--top 25]
//          [--runs 3] [--run-ms 1000] [--warmup-ms 1500] [--no-profile] [--keep]   (--keep: leave the
//          members' .cpuprofile files in the printed directory)
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { cpRound, startCluster } from './lib/cluster.mjs';
import { formatTop, profileOptions, startProfile, summarize } from './lib/profiler.mjs';

const { values: opt } = parseArgs({
  options: profileOptions({
    op: { type: 'string', default: 'incr' },
    'warmup-ms': { type: 'string', default: '1500' },
    keep: { type: 'boolean', default: false },
  }),
});
const C = Number(opt.c);
const PROFILE = !opt['no-profile'];
const dir = mkdtempSync(path.join(os.tmpdir(), 'sg-cpprof-'));

/** CPU ms of a process, utime + stime at 100 ticks/s. */
function cpuOf(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[11]) + Number(rest[12])) / 100) * 1000;
}

const { members, lite } = await startCluster(3, { profile: (i) => (PROFILE ? path.join(dir, `member-${i}.cpuprofile`) : undefined), stderr: 'inherit' });
const round = cpRound(lite, opt.op, C, 'prof-cl');

async function runFor(ms) {
  let ops = 0;
  const t0 = performance.now();
  const cpu0 = [process.cpuUsage(), ...members.map((m) => cpuOf(m.proc.pid))];
  while (performance.now() - t0 < ms) {
    await round();
    ops += C;
  }
  const dt = performance.now() - t0;
  const u = process.cpuUsage(cpu0[0]);
  const cpu = [(u.user + u.system) / 1000, ...members.map((m, k) => cpuOf(m.proc.pid) - cpu0[k + 1])];
  return { opsPerSec: (ops / dt) * 1000, cpuPerOpUs: cpu.map((c) => (c * 1000) / ops), cpuShare: cpu.map((c) => c / dt) };
}
const show = (label, r) =>
  console.log(`${label}: ${(r.opsPerSec / 1000).toFixed(2)} k ${opt.op}/s at c=${C}; CPU µs per op lite/m0/m1/m2 ${r.cpuPerOpUs.map((x) => x.toFixed(1)).join(' / ')}; cores busy ${r.cpuShare.map((x) => x.toFixed(2)).join(' / ')}`);

console.log(`load average at start: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
await runFor(Number(opt['warmup-ms']));
for (let r = 0; r < Number(opt.runs); r++) show('no profiler', await runFor(Number(opt['run-ms'])));
if (PROFILE) {
  const written = members.map((m) => new Promise((r) => m.lines.on('line', (l) => JSON.parse(l).profiled && r())));
  for (const m of members) m.proc.kill('SIGUSR2');
  await new Promise((r) => setTimeout(r, 100));
  const stop = await startProfile({ intervalUs: 100 });
  show('profiled', await runFor(Number(opt.seconds) * 1000));
  const prof = await stop();
  for (const m of members) m.proc.kill('SIGUSR2');
  await Promise.all(written);
  const print = (sum, label) => {
    console.log(`\n═══ ${label}: ${(sum.totalUs / 1000).toFixed(0)} ms of samples`);
    console.log(formatTop(sum.self, Number(opt.top), 'self time'));
    console.log(formatTop(sum.inclusive.filter((r) => r.fn !== '(root)'), Number(opt.top), 'inclusive time'));
  };
  print(summarize([prof]), 'lite member (bench process)');
  for (const f of readdirSync(dir).sort()) print(summarize([JSON.parse(readFileSync(path.join(dir, f), 'utf8'))]), `data ${f} (main thread, the profiled run)`);
  if (opt.keep) writeFileSync(path.join(dir, 'lite.cpuprofile'), JSON.stringify(prof));
}
console.log(`load average at end: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
await lite.close();
for (const m of members) m.proc.kill('SIGTERM');
if (opt.keep) console.log(`profiles kept in ${dir}`);
else rmSync(dir, { recursive: true, force: true });
process.exit(0);
