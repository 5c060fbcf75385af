// A/B of the transport alone: request/reply round trips between two Transports in this process,
// at concurrency 1 and 64, for this checkout's dist/ and another build's (e.g. main's), in
// alternating 1 s rounds so both see the same machine load. Usage:
//   node bench/ab-transport.mjs /path/to/other/dist [rounds] [--tls mine|other|both]
// Prints per-round ops/s and the median per side; the ratio is mine / other. With --tls the
// named side's two Transports use mutual TLS (a throwaway CA made with openssl). The plaintext
// reference for sealing is `node bench/plain-dist.mjs` (bench/results/plain-dist).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const argv = process.argv.slice(2);
const tlsAt = argv.indexOf('--tls');
const TLS = tlsAt >= 0 ? argv.splice(tlsAt, 2)[1] : 'none';
const other = argv[0];
const ROUNDS = Number(argv[1] ?? 8);
if (!other || !['none', 'mine', 'other', 'both'].includes(TLS)) throw new Error('usage: node bench/ab-transport.mjs /path/to/other/dist [rounds] [--tls mine|other|both]');

/** Mutual TLS options from a throwaway CA (one leaf for 127.0.0.1, server and client use). */
function makeTls() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sg-ab-tls-'));
  const ssl = (...a) => execFileSync('openssl', a, { cwd: dir, stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=ab-ca');
  writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=leaf');
  ssl('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'leaf.pem', '-days', '1', '-extfile', 'ext.cnf');
  const tls = { key: readFileSync(path.join(dir, 'leaf.key')), cert: readFileSync(path.join(dir, 'leaf.pem')), ca: readFileSync(path.join(dir, 'ca.pem')) };
  rmSync(dir, { recursive: true, force: true });
  return tls;
}
const tls = TLS === 'none' ? undefined : makeTls();
const sides = {
  mine: await import(pathToFileURL(path.resolve('dist/transport/index.js')).href),
  other: await import(pathToFileURL(path.resolve(other, 'transport/index.js')).href),
};

async function pair(T, withTls) {
  const opts = (id) => ({ host: '127.0.0.1', port: 0, secret: 'ab-secret-0123456789abcdef', memberId: id, log: () => undefined, ...(withTls ? { tls } : {}) });
  const a = await T.Transport.listen(opts('a'));
  const b = await T.Transport.listen(opts('b'));
  a.handle('get', (k) => `value-of-${k}`);
  await b.connect(a.url);
  return { a, b };
}

async function run(p, c, ms) {
  let n = 0;
  const end = performance.now() + ms;
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (performance.now() < end) {
        await p.b.request('a', 'get', 'k');
        n++;
      }
    }),
  );
  return (n * 1000) / ms;
}

const pairs = { mine: await pair(sides.mine, TLS === 'mine' || TLS === 'both'), other: await pair(sides.other, TLS === 'other' || TLS === 'both') };
console.log(`mine: ${path.resolve('dist')}${TLS === 'mine' || TLS === 'both' ? ' (TLS)' : ''}; other: ${path.resolve(other)}${TLS === 'other' || TLS === 'both' ? ' (TLS)' : ''}`);
const res = { mine: { 1: [], 64: [] }, other: { 1: [], 64: [] } };
for (const side of ['mine', 'other']) for (const c of [1, 64]) await run(pairs[side], c, 300); // warm-up
for (let r = 0; r < ROUNDS; r++) {
  for (const side of r % 2 === 0 ? ['mine', 'other'] : ['other', 'mine']) {
    for (const c of [1, 64]) res[side][c].push(await run(pairs[side], c, 1000));
  }
}
const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
for (const c of [1, 64]) {
  const m = med(res.mine[c]);
  const o = med(res.other[c]);
  console.log(`c=${c}: mine ${res.mine[c].map((x) => (x / 1000).toFixed(1)).join(' ')} k/s (median ${(m / 1000).toFixed(1)}k); other ${res.other[c].map((x) => (x / 1000).toFixed(1)).join(' ')} k/s (median ${(o / 1000).toFixed(1)}k); mine/other ${(m / o).toFixed(2)}`);
}
for (const p of Object.values(pairs)) await Promise.all([p.a.close(), p.b.close()]);
