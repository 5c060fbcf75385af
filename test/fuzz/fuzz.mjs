// Long-running transport fuzzer: `npm run fuzz -- --frames N [--seed S] [--attackers A]`.
// Starts a member in a child process, measures a legitimate client's get latency (p50 / p99,
// concurrency 16) without attack, then sends N random and mutated frames at every stage (first
// message, during the handshake, sealed BATCH and FAST frames after authentication) from A
// attacker loops while the legitimate client keeps measuring. Reports frames sent, member crashes
// (restarted), RSS growth, frames that were applied, and the p99 under attack. Needs `npm run build`.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { Transport } from '../../dist/transport/index.js';
import { F_AUTH, F_WELCOME, FrameCipher, encodeHello, encodeProof, packr, parseChallenge, proof, sessionKeys } from '../../dist/transport/wire.js';

const args = process.argv.slice(2);
const opt = (name, d) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : d;
};
const FRAMES = opt('frames', 20000);
const ATTACKERS = opt('attackers', 4);
let seed = opt('seed', Date.now() % 2 ** 31) >>> 0;
const SEED = seed;
const SECRET = randomBytes(24).toString('hex');

// xorshift32: reproducible with --seed
const rnd = () => {
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed / 2 ** 32;
};
const int = (n) => Math.floor(rnd() * n);
const bytes = (n) => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = int(256);
  return b;
};
function mutate(base) {
  let b = Buffer.from(base);
  const ops = 1 + int(4);
  for (let k = 0; k < ops; k++) {
    const at = int(b.length + 1);
    switch (int(5)) {
      case 0: if (b.length) b[at % b.length] ^= 1 << int(8); break;
      case 1: if (b.length) b[at % b.length] = int(256); break;
      case 2: b = b.subarray(0, at); break;
      case 3: b = Buffer.concat([b.subarray(0, at), bytes(int(16)), b.subarray(at)]); break;
      default: b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + 1 + int(64)), b.subarray(at)]);
    }
  }
  return b;
}
const pick = (a) => a[int(a.length)];

// ---------------------------------------------------------------- the member

let child;
let url;
let crashes = 0;
let expectExit = false;
async function startMember() {
  child = spawn(process.execPath, [new URL('./member.mjs', import.meta.url).pathname], { env: { ...process.env, FUZZ_SECRET: SECRET }, stdio: ['ignore', 'pipe', 'inherit'] });
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
  let errors = 0;
  const end = performance.now() + ms;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        try {
          await client.request(peerId, 'get', `k${int(1000)}`, 5000);
          lat.push(performance.now() - t0);
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
  return { gets: lat.length, errors, p50: q(0.5), p99: q(0.99) };
}
async function stats() {
  return client.request(peerId, 'stats', null, 5000);
}

// ---------------------------------------------------------------- attackers

let sent = 0;
const byStage = { preHello: 0, handshake: 0, batch: 0, fast: 0 };
function openWs() {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.on('error', () => {});
    ws.once('open', () => resolve(ws));
    ws.once('close', () => resolve(undefined));
  });
}
const nextMessage = (ws, ms) =>
  new Promise((resolve) => {
    const t = setTimeout(() => resolve(undefined), ms);
    ws.once('message', (d) => (clearTimeout(t), resolve(d)));
    ws.once('close', () => (clearTimeout(t), resolve(undefined)));
  });
const closed = (ws) => new Promise((r) => (ws.readyState === WebSocket.CLOSED ? r() : ws.once('close', r)));

async function authed(id) {
  const ws = await openWs();
  if (ws === undefined) return undefined;
  const n = randomBytes(32);
  const myUrl = 'ws://127.0.0.1:1';
  ws.send(encodeHello(id, url, myUrl, n));
  const chB = await nextMessage(ws, 3000);
  const ch = chB && parseChallenge(chB);
  if (!ch || typeof ch === 'string') return (ws.terminate(), undefined);
  const t = { dialNonce: n, listenNonce: ch.nonce, diallerId: id, listenerId: ch.id, diallerUrl: myUrl, dialledUrl: url };
  ws.send(encodeProof(F_AUTH, proof(SECRET, 'dialler', t)));
  const w = await nextMessage(ws, 3000);
  if (!w || w[0] !== F_WELCOME) return (ws.terminate(), undefined);
  const k = sessionKeys(SECRET, t);
  const tx = new FrameCipher(k.toListener);
  ws.on('message', () => {}); // replies are not needed
  return { ws, send: (b) => ws.send(tx.seal(b)) };
}

const helloBase = () => encodeHello('fz', url, 'ws://127.0.0.1:1', randomBytes(32));
const batchBases = [packr.pack([5, 0, 1, 'apply', { a: [1, 2, 3], b: 'x' }]), packr.pack([5, 1, 0, 'apply', null, 2, 5, null, 'r'])];
// MAP 0 'm', then GET id 1 map 0 key 'k'
const fastBase = Buffer.from('c1' + '01' + '0000' + '0100' + '6d' + '02' + '01000000' + '0000' + '0100' + '6b', 'hex');

async function attacker(idx, quota) {
  let peer;
  for (let i = 0; i < quota; i++) {
    const stage = int(4);
    if (stage === 0) {
      const ws = await openWs();
      if (ws === undefined) continue;
      ws.send(rnd() < 0.5 ? bytes(int(6000)) : mutate(helloBase()));
      sent++;
      byStage.preHello++;
      await Promise.race([nextMessage(ws, 2000), closed(ws)]);
      ws.terminate();
    } else if (stage === 1) {
      const ws = await openWs();
      if (ws === undefined) continue;
      ws.send(encodeHello(`fz-${idx}-${i}`, url, 'ws://127.0.0.1:1', randomBytes(32)));
      if ((await nextMessage(ws, 2000)) !== undefined) {
        ws.send(mutate(Buffer.concat([Buffer.from([F_AUTH]), randomBytes(32)])));
        sent++;
        byStage.handshake++;
        await closed(ws);
      }
      ws.terminate();
    } else {
      if (peer === undefined || peer.ws.readyState !== WebSocket.OPEN) peer = await authed(`fz-auth-${idx}-${i}`);
      if (peer === undefined) continue;
      const f = stage === 2 ? (rnd() < 0.3 ? bytes(int(2000)) : mutate(pick(batchBases))) : rnd() < 0.3 ? Buffer.concat([Buffer.from([0xc1]), bytes(int(400))]) : mutate(fastBase);
      peer.send(f);
      sent++;
      if (stage === 2) byStage.batch++;
      else byStage.fast++;
      await new Promise((r) => setImmediate(r));
    }
  }
  peer?.ws.terminate();
}

// ---------------------------------------------------------------- run

await startMember();
client = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: 'fuzz-client', log: () => undefined });
await reconnect();
console.log(`fuzz: seed ${SEED}, ${FRAMES} frames, ${ATTACKERS} attackers, member ${url}`);
const s0 = await stats();
const base = await measure(3000);
console.log(`baseline (no attack): ${base.gets} gets in 3 s, p50 ${base.p50} ms, p99 ${base.p99} ms, errors ${base.errors}; member RSS ${(s0.rss / 1048576).toFixed(1)} MiB`);
const t0 = performance.now();
const attack = Promise.all(Array.from({ length: ATTACKERS }, (_, i) => attacker(i, Math.ceil(FRAMES / ATTACKERS))));
let done = false;
void attack.then(() => (done = true));
const during = [];
let maxRss = s0.rss;
while (!done) {
  during.push(await measure(2000));
  const s = await stats().catch(() => undefined);
  if (s) maxRss = Math.max(maxRss, s.rss);
  process.stdout.write(`  ${sent} frames sent, p99 ${during[during.length - 1].p99} ms\r`);
}
await attack;
const secs = (performance.now() - t0) / 1000;
const s1 = await stats();
const all = during.map((d) => Number(d.p99)).filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
console.log(`\nattack: ${sent} frames in ${secs.toFixed(1)} s (pre-HELLO ${byStage.preHello}, handshake ${byStage.handshake}, sealed BATCH ${byStage.batch}, sealed FAST ${byStage.fast})`);
console.log(`member crashes: ${crashes}`);
console.log(`member RSS: ${(s0.rss / 1048576).toFixed(1)} MiB before, ${(maxRss / 1048576).toFixed(1)} MiB peak, ${(s1.rss / 1048576).toFixed(1)} MiB after (+${((s1.rss - s0.rss) / 1048576).toFixed(1)} MiB)`);
console.log(`applied from attack frames: ${s1.applied - s0.applied} BATCH requests, ${s1.fast - s0.fast} FAST requests (well-formed mutations are legitimate requests of a secret holder)`);
const win = (p) => (all.length ? all[Math.min(all.length - 1, Math.floor(p * all.length))] : 'n/a');
console.log(`legitimate get under attack: p99 of ${all.length} 2 s windows: best ${win(0)}, median ${win(0.5)}, worst ${win(1)} ms, vs ${base.p99} ms without (p50 ${base.p50} ms); errors ${during.reduce((n, d) => n + d.errors, 0)}`);
expectExit = true;
child.kill('SIGTERM');
await client.close();
process.exit(crashes === 0 ? 0 : 1);
