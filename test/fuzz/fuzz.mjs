// Long-running transport fuzzer:
//   npm run fuzz -- --frames N [--seed S] [--attackers L] [--addresses A] [--per-link K] [--gen P] [--decoy] [--member-prof DIR]
//                   [--rate R] [--attacker-nice N] [--pipeline K] [--fast-share P]
// Starts a member in a child process (test/fuzz/member.mjs), measures a legitimate client's get
// latency (p50 / p99, concurrency 16) without attack, then runs the attacker (test/fuzz/attacker.mjs,
// in a worker thread: L connections at once from A loopback addresses) until it has sent N random
// and mutated frames at every stage (first message, during the handshake, sealed BATCH and FAST
// frames and tampered sealed frames after authentication), while the legitimate client keeps
// measuring in 2 s windows. Reports frames by stage, member crashes (restarted), member RSS over
// the run (to see whether it levels off), requests applied, and the p99 under attack. With
// --member-prof DIR the member runs with --cpu-prof into DIR. --rate R holds the attacker to R
// frames/s (default: as fast as the member reacts); --attacker-nice N runs the attacker's thread at
// niceness N (Linux), so it takes less of the cores the member and the client need. --pipeline K:
// an authenticated attacker connection writes K frames at once before it waits for a reaction
// (default 1: one frame in flight per connection). --fast-share P: the share of the grammar's frames
// that are FAST GET frames (default 0.5; the rest are BATCHes).
// Besides the client's round trips it reports where they went: the way in (client request -> the
// member's handler, on a clock shared by the processes) and the way back, the member's event-loop
// utilization, loop delay, CPU and time its main thread waited for a core, and the CPU of the
// fuzzer's own threads (the legitimate client, the attacker). Needs `npm run build`.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { Worker } from 'node:worker_threads';
import { Transport } from '../../dist/transport/index.js';
import { sched, us } from './clock.mjs';

const args = process.argv.slice(2);
const str = (name) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const opt = (name, d) => (str(name) === undefined ? d : Number(str(name)));
const FRAMES = opt('frames', 20000);
const ATTACKERS = opt('attackers', 32);
const ADDRESSES = opt('addresses', 16);
const PER_LINK = opt('per-link', 64);
const GEN = opt('gen', 0.9);
const MEMBER_PROF = str('member-prof');
// --decoy: the attack goes to a second member process, not to the one the client measures; the
// p99 then shows what the attack costs through CPU contention on this machine alone
const DECOY = args.includes('--decoy');
const RATE = opt('rate', 0);
const ATTACKER_NICE = opt('attacker-nice', 0);
const PIPELINE = opt('pipeline', 1);
const FAST_SHARE = opt('fast-share', 0.5);
const SEED = opt('seed', Date.now() % 2 ** 31) >>> 0;
const SECRET = randomBytes(24).toString('hex');


// ---------------------------------------------------------------- the member

let child;
let url;
let crashes = 0;
let expectExit = false;
async function startMember() {
  const flags = MEMBER_PROF === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', MEMBER_PROF];
  child = spawn(process.execPath, [...flags, new URL('./member.mjs', import.meta.url).pathname], { env: { ...process.env, FUZZ_SECRET: SECRET }, stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (c) => reject(new Error(`member exited with ${c} at start`)));
  });
  url = JSON.parse(line).url;
  child.once('exit', (code, sig) => {
    if (expectExit) return;
    crashes++;
    console.log(`member CRASHED (exit ${code} ${sig ?? ''}); restarting`);
    void startMember().then(() => reconnect());
  });
}

// ---------------------------------------------------------------- legitimate client

let client;
let peerId;
async function reconnect() {
  peerId = await client.connect(url, 5000);
}
async function measure(ms) {
  const lat = [];
  const wayIn = [];
  const wayBack = [];
  let errors = 0;
  const end = performance.now() + ms;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        const u0 = us();
        try {
          const r = await client.request(peerId, 'get', [`k${Math.floor(Math.random() * 1000)}`, u0], 5000);
          lat.push(performance.now() - t0);
          if (Array.isArray(r) && typeof r[1] === 'number') {
            wayIn.push((r[1] - u0) / 1000);
            wayBack.push((us() - r[1]) / 1000);
          }
        } catch {
          errors++;
          await new Promise((r) => setTimeout(r, 50));
          await reconnect().catch(() => undefined);
        }
      }
    }),
  );
  lat.sort((a, b) => a - b);
  const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))].toFixed(2) : 'n/a');
  return { gets: lat.length, errors, p50: q(0.5), p99: q(0.99), lat, wayIn, wayBack };
}
async function stats() {
  return client.request(peerId, 'stats', null, 5000);
}

// ---------------------------------------------------------------- where the time went

const pct = (xs, p) => {
  if (xs.length === 0) return NaN;
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};
const legs = (wayIn, wayBack) =>
  `legs of the round trip: way in (client request -> member handler) p50 ${pct(wayIn, 0.5).toFixed(2)} p99 ${pct(wayIn, 0.99).toFixed(2)} ms, way back (handler -> client) p50 ${pct(wayBack, 0.5).toFixed(2)} p99 ${pct(wayBack, 0.99).toFixed(2)} ms`;
let attackerSched;
/** A snapshot of the clocks: the member's (from its stats) and this process's threads. */
function resources(s, attacker) {
  const [utime, stime] = readFileSync('/proc/self/stat', 'latin1').split(') ')[1].split(' ').slice(11, 13).map(Number);
  return { at: performance.now(), member: s, client: sched(), attacker, fuzzerCpuMs: (utime + stime) * 10 };
}
/** Per second of wall time between two snapshots, as % of one core. */
function showResources(a, b, loopP99) {
  const wall = b.at - a.at;
  const per = (x) => `${((100 * x) / wall).toFixed(0)}%`;
  const m0 = a.member;
  const m1 = b.member;
  const elu = m1.elu.active - m0.elu.active;
  const mcpu = (m1.cpu.user + m1.cpu.system - m0.cpu.user - m0.cpu.system) / 1000;
  const parts = [
    `member: main thread busy (ELU) ${per(elu)}, process CPU ${per(mcpu)}`,
    m0.sched && m1.sched ? `main thread waited for a core ${per((m1.sched.wait - m0.sched.wait) / 1e6)}` : 'schedstat n/a',
    `loop delay p99 ${loopP99.toFixed(2)} ms`,
    `fuzzer process CPU ${per(b.fuzzerCpuMs - a.fuzzerCpuMs)}`,
  ];
  if (a.client && b.client) parts.push(`legit client thread CPU ${per((b.client.run - a.client.run) / 1e6)} (waited ${per((b.client.wait - a.client.wait) / 1e6)})`);
  if (a.attacker && b.attacker) parts.push(`attacker thread CPU ${per((b.attacker.run - a.attacker.run) / 1e6)} (waited ${per((b.attacker.wait - a.attacker.wait) / 1e6)})`);
  return `resources over ${(wall / 1000).toFixed(1)} s (% of one core; 2 cores = 200%): ${parts.join('; ')}`;
}

// ---------------------------------------------------------------- run

const MiB = (b) => (b / 1048576).toFixed(1);
await startMember();
client = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: 'fuzz-client', log: () => undefined });
await reconnect();
console.log(`fuzz: seed ${SEED}, ${FRAMES} frames, ${ATTACKERS} attacker connections at once from ${ADDRESSES} addresses, up to ${PER_LINK} frames per authenticated link (${GEN} of them from the grammar, ${PIPELINE} at once), member ${url}`);
await measure(1000); // warm-up
const s0 = await stats();
const r0 = resources(s0, undefined);
const base = await measure(3000);
const sb = await stats();
console.log(`baseline (no attack): ${base.gets} gets in 3 s, p50 ${base.p50} ms, p99 ${base.p99} ms, errors ${base.errors}; member RSS ${MiB(s0.rss)} MiB`);
console.log(`  baseline ${legs(base.wayIn, base.wayBack)}`);
console.log(`  baseline ${showResources(r0, resources(sb, undefined), sb.loop.p99)}`);
let target = url;
let decoy;
if (DECOY) {
  decoy = spawn(process.execPath, [new URL('./member.mjs', import.meta.url).pathname], { env: { ...process.env, FUZZ_SECRET: SECRET }, stdio: ['ignore', 'pipe', 'inherit'] });
  target = JSON.parse(await new Promise((resolve) => createInterface({ input: decoy.stdout }).once('line', resolve))).url;
  console.log(`decoy: the attack goes to another member process at ${target}; the measured member is not attacked`);
}
const t0 = performance.now();
const worker = new Worker(new URL('./attacker.mjs', import.meta.url), {
  workerData: { url: target, secret: SECRET, frames: FRAMES, seed: SEED, lanes: ATTACKERS, addresses: ADDRESSES, perLink: PER_LINK, gen: GEN, rate: RATE, nice: ATTACKER_NICE, pipeline: PIPELINE, fastShare: FAST_SHARE },
});
let counts = { first: 0, hs: 0, batch: 0, fast: 0, tamper: 0, gen: 0, shed: 0, noReaction: 0, links: 0 };
const fuzzed = (c) => c.first + c.hs + c.batch + c.fast + c.tamper + c.gen;
let done = false;
const attack = new Promise((resolve, reject) => {
  worker.on('message', (m) => {
    if (m.sched) attackerSched = m.sched;
    if (m.progress) counts = m.progress;
    if (m.done) {
      counts = m.done;
      done = true;
      resolve();
    }
  });
  worker.on('error', reject);
  worker.on('exit', (code) => (done ? resolve() : reject(new Error(`attacker exited with ${code}`))));
});
const during = [];
// every get's latency under attack, in 0.05 ms buckets up to 10 s
const HIST = 200000;
const hist = new Uint32Array(HIST);
const histQ = (p) => {
  let total = 0;
  for (const c of hist) total += c;
  let k = Math.ceil(p * total);
  for (let i = 0; i < HIST; i++) if ((k -= hist[i]) <= 0) return { ms: (i + 1) / 20, total };
  return { ms: NaN, total };
};
let maxRss = s0.rss;
const inAll = [];
const backAll = [];
const loopP99s = [];
// the attack's resources are counted from the first window on (the attacker's thread reports its clock once a second)
let ra;
let rb;
const rssAt = []; // [frames, MiB] once per window, to see whether RSS levels off
while (!done) {
  const w = await measure(2000);
  for (const x of w.lat) hist[Math.min(HIST - 1, Math.floor(x * 20))]++;
  w.lat = undefined;
  for (const x of w.wayIn) inAll.push(x);
  for (const x of w.wayBack) backAll.push(x);
  w.wayIn = w.wayBack = undefined;
  during.push(w);
  const s = await stats().catch(() => undefined);
  if (s) {
    if (ra === undefined) ra = resources(s, attackerSched);
    else if (!done) {
      rb = resources(s, attackerSched);
      loopP99s.push(s.loop.p99);
    }
    maxRss = Math.max(maxRss, s.rss);
    rssAt.push([fuzzed(counts), MiB(s.rss), MiB(s.heap)]);
  }
  const secs = (performance.now() - t0) / 1000;
  const line = `  ${secs.toFixed(0)} s: ${fuzzed(counts)} frames (${(fuzzed(counts) / secs).toFixed(0)}/s), window p99 ${w.p99} ms, gets ${w.gets}, member RSS ${s ? MiB(s.rss) : '?'} MiB`;
  if (process.stdout.isTTY) process.stdout.write(`${line}\r`);
  else if (during.length % 15 === 1) console.log(line);
}
await attack;
const secs = (performance.now() - t0) / 1000;
const s1 = await stats();
const all = during.map((d) => Number(d.p99)).filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
const n = fuzzed(counts);
console.log(`\nattack: ${n} frames in ${secs.toFixed(1)} s, ${(n / secs).toFixed(0)} frames/s (first message ${counts.first}, during the handshake ${counts.hs}, sealed BATCH ${counts.batch}, sealed FAST ${counts.fast}, tampered sealed ${counts.tamper}, sealed from the grammar ${counts.gen}); ${counts.links} authenticated attacker links; ${counts.noReaction} frames drew no reaction within their wait; ${counts.shed} connections shed before upgrade (not counted)`);
console.log(`projected time for 1,000,000 frames at this rate: ${(1e6 / (n / secs) / 60).toFixed(1)} min`);
console.log(`member crashes: ${crashes}`);
console.log(`member RSS: ${MiB(s0.rss)} MiB before, ${MiB(maxRss)} MiB peak, ${MiB(s1.rss)} MiB after (+${MiB(s1.rss - s0.rss)} MiB, peak +${MiB(maxRss - s0.rss)} MiB)`);
const step = Math.max(1, Math.floor(rssAt.length / 8));
console.log(`member RSS (heap used) over the run, frames: MiB: ${rssAt.filter((_, i) => i % step === 0 || i === rssAt.length - 1).map(([f, m, h]) => `${f}: ${m} (${h})`).join(', ')}`);
console.log(`applied from attack frames: ${s1.applied - s0.applied} BATCH requests, ${s1.fast - s0.fast} FAST requests (well-formed mutations are legitimate requests of a secret holder)`);
const win = (p) => (all.length ? all[Math.min(all.length - 1, Math.floor(p * all.length))] : 'n/a');
const p99 = histQ(0.99);
console.log(`  under attack ${legs(inAll, backAll)}`);
if (ra !== undefined && rb !== undefined) console.log(`  under attack ${showResources(ra, rb, pct(loopP99s, 0.5))} (loop delay: median of the windows' p99)`);
console.log(`legitimate get under attack: p99 of all ${p99.total} gets ${p99.ms.toFixed(2)} ms (p50 ${histQ(0.5).ms.toFixed(2)} ms) vs ${base.p99} ms without (p50 ${base.p50} ms), ratio ${(p99.ms / Number(base.p99)).toFixed(2)}x; p99 of ${all.length} 2 s windows: best ${win(0)}, median ${win(0.5)}, worst ${win(1)} ms; errors ${during.reduce((k, d) => k + d.errors, 0)}`);
expectExit = true;
child.kill('SIGTERM');
decoy?.kill('SIGTERM');
await new Promise((r) => child.once('exit', r));
await client.close();
process.exit(crashes === 0 ? 0 : 1);
