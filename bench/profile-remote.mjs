// Where the time of a remote get goes: the cluster-remote scenario's setup (2 data members in child
// processes, a lite member in this process, 10,000 keys of 100-byte strings), then gets at
// concurrency C for a few seconds, with the CPU profiler on in every process: the lite member
// through the inspector (bench/lib/profiler.mjs), the data members with `node --cpu-prof`
// (written when they exit). Prints ops/s without and with the profiler, the CPU time each process
// used (process.cpuUsage / /proc), and the top functions of each profile.
//
// Usage: npm run build && node bench/profile-remote.mjs [--c 64] [--seconds 3] [--top 25] [--no-profile]
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startCluster } from './lib/cluster.mjs';
import { VALUES, makeKeys } from './lib/peers.mjs';
import { formatTop, startProfile, summarize } from './lib/profiler.mjs';

const { values: opt } = parseArgs({
  options: {
    c: { type: 'string', default: '64' },
    seconds: { type: 'string', default: '3' },
    top: { type: 'string', default: '25' },
    'no-profile': { type: 'boolean', default: false },
  },
});
const C = Number(opt.c);
const SECONDS = Number(opt.seconds);
const TOP = Number(opt.top);
const PROFILE = !opt['no-profile'];
const dir = mkdtempSync(path.join(os.tmpdir(), 'sg-prof-'));

function cpuOf(pid) {
  // utime + stime in clock ticks (100 Hz on Linux)
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[11]) + Number(rest[12])) / 100) * 1000;
}

const nodeArgs = (i) => (PROFILE ? ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-name', `member-${i}.cpuprofile`, '--cpu-prof-interval', '100'] : []);
const { members, lite } = await startCluster(2, { nodeArgs, stderr: 'inherit' });
const N = 10_000;
const keys = makeKeys(N);
const gm = lite.map('remote');
for (let i = 0; i < N; i += 500) await gm.setMany(keys.slice(i, i + 500).map((k) => [k, VALUES['100B']]));

let i = 0;
const round = () => {
  const ps = new Array(C);
  for (let j = 0; j < C; j++) ps[j] = gm.get(keys[(i = (i + 1) % N)]);
  return Promise.all(ps);
};
async function runFor(ms) {
  let ops = 0;
  const t0 = performance.now();
  const cpu0 = [process.cpuUsage(), ...members.map((m) => cpuOf(m.proc.pid))];
  const st = lite.cluster.transport._stats;
  const f0 = { ...st };
  while (performance.now() - t0 < ms) {
    const r = await round();
    if (r[0] === undefined) throw new Error('missing value');
    ops += C;
  }
  const dt = performance.now() - t0;
  const u = process.cpuUsage(cpu0[0]);
  const cpu = [(u.user + u.system) / 1000, ...members.map((m, k) => cpuOf(m.proc.pid) - cpu0[k + 1])];
  const frames = { out: st.framesOut - f0.framesOut, in: st.framesIn - f0.framesIn, msgsOut: st.messagesOut - f0.messagesOut };
  return { frames, opsPerSec: (ops / dt) * 1000, ms: dt, cpuPerOpUs: cpu.map((c) => (c * 1000) / ops), cpuShare: cpu.map((c) => c / dt) };
}
const show = (label, r) =>
  console.log(`${label}: ${(r.opsPerSec / 1000).toFixed(1)} k gets/s at c=${C}; CPU µs per get lite/m0/m1 ${r.cpuPerOpUs.map((x) => x.toFixed(1)).join(' / ')}; cores busy ${r.cpuShare.map((x) => x.toFixed(2)).join(' / ')}; lite frames out ${r.frames.out} (${(r.frames.msgsOut / r.frames.out).toFixed(1)} msgs each), in ${r.frames.in}`);

await runFor(1000);
for (let r = 0; r < 3; r++) show('no profiler', await runFor(1000));
if (PROFILE) {
  const stop = await startProfile({ intervalUs: 100 });
  show('profiled', await runFor(SECONDS * 1000));
  const prof = await stop();
  const print = (sum, label) => {
    console.log(`\n═══ ${label}: ${(sum.totalUs / 1000).toFixed(0)} ms of samples`);
    console.log(formatTop(sum.self, TOP, 'self time'));
    console.log(formatTop(sum.inclusive.filter((r) => r.fn !== '(root)'), TOP, 'inclusive time'));
  };
  print(summarize([prof]), 'lite member (bench process)');
  await lite.close();
  for (const m of members) m.proc.kill('SIGTERM');
  await Promise.all(members.map((m) => new Promise((r) => (m.proc.exitCode !== null ? r() : m.proc.once('exit', r)))));
  for (const f of readdirSync(dir).sort()) {
    print(summarize([JSON.parse(readFileSync(path.join(dir, f), 'utf8'))]), `data ${f} (whole life, mostly the profiled run)`);
  }
} else {
  await lite.close();
  for (const m of members) m.proc.kill('SIGTERM');
}
rmSync(dir, { recursive: true, force: true });
