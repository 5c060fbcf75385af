// A/B of the transport alone: request/reply round trips between two Transports in this process,
// at concurrency 1 and 64, for this checkout's dist/ and another build's (e.g. main's), in
// alternating 1 s rounds so both see the same machine load. Usage:
//   node bench/ab-transport.mjs /path/to/other/dist [rounds]
// Prints per-round ops/s and the median per side; the ratio is mine / other.
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const other = process.argv[2];
const ROUNDS = Number(process.argv[3] ?? 8);
if (!other) throw new Error('usage: node bench/ab-transport.mjs /path/to/other/dist [rounds]');
const sides = {
  mine: await import(pathToFileURL(path.resolve('dist/transport/index.js')).href),
  other: await import(pathToFileURL(path.resolve(other, 'transport/index.js')).href),
};

async function pair(T) {
  const opts = (id) => ({ host: '127.0.0.1', port: 0, secret: 'ab-secret-0123456789abcdef', memberId: id, log: () => undefined });
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

const pairs = { mine: await pair(sides.mine), other: await pair(sides.other) };
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
