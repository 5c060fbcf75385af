// Where the time of a remote get goes: the cluster-remote scenario's setup (2 data members in child
// processes, a lite member in this process, 10,000 keys of 100-byte strings), then gets at
// concurrency C: unprofiled runs (ops/s, CPU time of each process and thread from /proc, and each
// data member's garbage collection: ms per 1,000 operations, scavenges and their mean pause), then one
// run with the CPU profiler on in every process (bench/lib/profiler.mjs; the data members start
// and stop theirs on SIGUSR2, bench/lib/cluster-member.mjs), and the top functions of each.
//
// Usage: npm run build && node bench/profile-remote.mjs [--c 64] [--seconds 3] [--top 25] [--no-profile]
//          [--warmup-ms 1000] [--warmup-c C] [--runs 3] [--run-ms 1000] [--op get|set] [--keep DIR]   (warm-up at concurrency
//          warmup-c, then unprofiled runs at C, then the profiled one; --keep DIR keeps the .cpuprofile
//          files of the members and of this process (lite.cpuprofile) there)
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { memberStats, startCluster } from './lib/cluster.mjs';
import { VALUES, makeKeys } from './lib/peers.mjs';
import { formatTop, profileOptions, startProfile, summarize } from './lib/profiler.mjs';

const { values: opt } = parseArgs({
  options: profileOptions({
    'warmup-c': { type: 'string' },
    op: { type: 'string', default: 'get' },
    keep: { type: 'string' },
  }),
});
const C = Number(opt.c);
const SECONDS = Number(opt.seconds);
const TOP = Number(opt.top);
const PROFILE = !opt['no-profile'];
const dir = mkdtempSync(path.join(os.tmpdir(), 'sg-prof-'));

/** CPU ms of a process (or of one of its threads: /proc/pid/task/tid), utime + stime at 100 ticks/s. */
function cpuOf(pid, tid) {
  const f = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[11]) + Number(rest[12])) / 100) * 1000;
}

/** CPU ms per thread of a process, by thread name. */
function threadsOf(pid) {
  const out = {};
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
    out[`${name}#${tid}`] = cpuOf(pid, tid);
  }
  return out;
}

const { members, lite } = await startCluster(2, { profile: (i) => (PROFILE ? path.join(dir, `member-${i}.cpuprofile`) : undefined), stderr: 'inherit' });
const N = 10_000;
const keys = makeKeys(N);
const gm = lite.map('remote');
for (let i = 0; i < N; i += 500) await gm.setMany(keys.slice(i, i + 500).map((k) => [k, VALUES['100B']]));

let i = 0;
let c = Number(opt['warmup-c'] ?? C);
const SET = opt.op === 'set';
const round = () => {
  const ps = new Array(c);
  for (let j = 0; j < c; j++) ps[j] = SET ? gm.set(keys[(i = (i + 1) % N)], VALUES['100B']) : gm.get(keys[(i = (i + 1) % N)]);
  return Promise.all(ps);
};
async function runFor(ms) {
  const gc0 = (await Promise.all(members.map(memberStats))).map((x) => x.gc);
  let ops = 0;
  const t0 = performance.now();
  const cpu0 = [process.cpuUsage(), ...members.map((m) => cpuOf(m.proc.pid))];
  const st = lite.cluster.transport._stats;
  const f0 = { ...st };
  while (performance.now() - t0 < ms) {
    const r = await round();
    if (!SET && r[0] === undefined) throw new Error('missing value');
    ops += c;
  }
  const dt = performance.now() - t0;
  const u = process.cpuUsage(cpu0[0]);
  const gc1 = (await Promise.all(members.map(memberStats))).map((x) => x.gc);
  // per member: scavenges in the run, and the ms of all its collections per 1,000 operations
  const gc = gc1.map((g, k) => ({ minor: g.minor - gc0[k].minor, msPerK: ((g.minorMs + g.otherMs - gc0[k].minorMs - gc0[k].otherMs) * 1000) / ops, minorMs: (g.minorMs - gc0[k].minorMs) / Math.max(1, g.minor - gc0[k].minor) }));
  const cpu = [(u.user + u.system) / 1000, ...members.map((m, k) => cpuOf(m.proc.pid) - cpu0[k + 1])];
  const frames = { out: st.framesOut - f0.framesOut, in: st.framesIn - f0.framesIn, msgsOut: st.messagesOut - f0.messagesOut };
  const split = `lite user/sys µs per get ${((u.user / ops)).toFixed(1)} / ${((u.system / ops)).toFixed(1)}`;
  return { gc, split, frames, opsPerSec: (ops / dt) * 1000, ms: dt, cpuPerOpUs: cpu.map((c) => (c * 1000) / ops), cpuShare: cpu.map((c) => c / dt) };
}
import v8 from 'node:v8';
const newSpace = () => (v8.getHeapSpaceStatistics().find((x) => x.space_name === 'new_space')?.space_size / 2 ** 20).toFixed(1);
const show = (label, r) =>
  console.log(`${label} [new space ${newSpace()} MiB]: ${(r.opsPerSec / 1000).toFixed(1)} k gets/s at c=${C}; CPU µs per get lite/m0/m1 ${r.cpuPerOpUs.map((x) => x.toFixed(1)).join(' / ')}; cores busy ${r.cpuShare.map((x) => x.toFixed(2)).join(' / ')}; lite frames out ${r.frames.out}, in ${r.frames.in}; ${r.split}; member GC ms per 1k ops ${r.gc.map((g) => g.msPerK.toFixed(2)).join(' / ')} (scavenges ${r.gc.map((g) => g.minor).join(' / ')}, ${r.gc.map((g) => g.minorMs.toFixed(1)).join(' / ')} ms each)`);

await runFor(Number(opt['warmup-ms']));
c = C;
const th0 = members.map((m) => threadsOf(m.proc.pid));
const liteTh0 = threadsOf(process.pid);
for (let r = 0; r < Number(opt.runs); r++) show('no profiler', await runFor(Number(opt['run-ms'])));
{
  const th = threadsOf(process.pid);
  const busy = Object.entries(th).map(([n, ms]) => [n, ms - (liteTh0[n] ?? 0)]).filter(([, ms]) => ms > 0);
  console.log(`lite CPU ms by thread over the runs: ${busy.map(([n, ms]) => `${n} ${ms.toFixed(0)}`).join(', ')}`);
}
members.forEach((m, k) => {
  const th = threadsOf(m.proc.pid);
  const busy = Object.entries(th).map(([n, ms]) => [n, ms - (th0[k][n] ?? 0)]).filter(([, ms]) => ms > 0);
  console.log(`member ${k} CPU ms by thread over the runs: ${busy.map(([n, ms]) => `${n} ${ms.toFixed(0)}`).join(', ')}`);
});
if (PROFILE) {
  const written = members.map((m) => new Promise((r) => m.lines.on('line', (l) => JSON.parse(l).profiled && r())));
  for (const m of members) m.proc.kill('SIGUSR2');
  await new Promise((r) => setTimeout(r, 100));
  const stop = await startProfile({ intervalUs: 100 });
  show('profiled', await runFor(SECONDS * 1000));
  const prof = await stop();
  if (opt.keep) writeFileSync(path.join(dir, 'lite.cpuprofile'), JSON.stringify(prof));
  for (const m of members) m.proc.kill('SIGUSR2');
  await Promise.all(written);
  const print = (sum, label) => {
    console.log(`\n═══ ${label}: ${(sum.totalUs / 1000).toFixed(0)} ms of samples`);
    console.log(formatTop(sum.self, TOP, 'self time'));
    console.log(formatTop(sum.inclusive.filter((r) => r.fn !== '(root)'), TOP, 'inclusive time'));
  };
  print(summarize([prof]), 'lite member (bench process)');
  for (const f of readdirSync(dir).sort()) if (f !== 'lite.cpuprofile') print(summarize([JSON.parse(readFileSync(path.join(dir, f), 'utf8'))]), `data ${f} (main thread, the profiled run)`);
  await lite.close();
  for (const m of members) m.proc.kill('SIGTERM');
} else {
  await lite.close();
  for (const m of members) m.proc.kill('SIGTERM');
}
if (opt.keep) {
  mkdirSync(opt.keep, { recursive: true });
  for (const f of readdirSync(dir)) copyFileSync(path.join(dir, f), path.join(opt.keep, f));
  console.log(`profiles kept in ${opt.keep}`);
}
rmSync(dir, { recursive: true, force: true });
