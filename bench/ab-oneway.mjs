// A/B of one link flooding one-way messages, the case where the transport's fairness among links
// (LINK_SLICE_MS) queues frames with no other link competing: a sender in a worker thread sends
// notifications, 64 per frame and one frame per turn of its loop, as fast as it can, to a member in
// this thread whose handler does a little work per message; the member's message rate for two
// builds in alternating rounds (median per side, B/A). Usage:
//   node bench/ab-oneway.mjs /path/to/distA /path/to/distB [rounds]
// Also prints the member's frames, turns and frames queued by the fairness policy (`_stats`;
// 0 on a build without it).
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
const [A0, B0, R = '4'] = process.argv.slice(2);
if (!A0 || !B0) throw new Error('usage: node bench/ab-oneway.mjs /path/to/distA /path/to/distB [rounds]');
const A = pathToFileURL(resolve(A0)).href;
const B = pathToFileURL(resolve(B0)).href;
const N = 400_000;
async function run(dist) {
  const { Transport } = await import(`${dist}/transport/index.js`);
  const a = await Transport.listen({ host: '127.0.0.1', port: 0, secret: 's'.repeat(32), memberId: 'a', log: () => undefined });
  let got = 0;
  let done;
  const all = new Promise((r) => (done = r));
  let busy = 0;
  a.handle('w', (x) => {
    for (let i = 0; i < 50; i++) busy += Math.sqrt(i + x);
    if (++got === N) done();
  });
  const w = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads');
    (async () => {
      const { Transport } = await import(workerData.dist + '/transport/index.js');
      const b = await Transport.listen({ host: '127.0.0.1', port: 0, secret: 's'.repeat(32), memberId: 'b', log: () => undefined });
      await b.connect(workerData.url);
      parentPort.postMessage('go');
      for (let i = 0; i < workerData.n; i += 64) {
        for (let k = 0; k < 64; k++) b.notify('a', 'w', i + k);
        await new Promise((r) => setImmediate(r));
      }
      parentPort.once('message', async () => { await b.close(); parentPort.postMessage('closed'); });
    })();
  `, { eval: true, workerData: { dist, url: a.url, n: N } });
  await new Promise((r) => w.once('message', r));
  const t0 = performance.now();
  await all;
  const ms = performance.now() - t0;
  const s = a._stats;
  w.postMessage('close');
  await new Promise((r) => w.once('message', r));
  await w.terminate();
  await a.close();
  return { rate: (N / ms) * 1000, frames: s.framesIn, turns: s.turns ?? 0, deferred: s.fairDeferred ?? 0 };
}
const res = { A: [], B: [] };
for (let i = 0; i < Number(R); i++) {
  for (const [k, d] of [['A', A], ['B', B]]) {
    const r = await run(d);
    res[k].push(r.rate);
    console.log(`${k} ${d}: ${(r.rate / 1000).toFixed(1)}k msgs/s, ${r.frames} frames in ${r.turns} turns, ${r.deferred} queued by the fairness policy`);
  }
}
const med = (x) => [...x].sort((p, q) => p - q)[x.length >> 1];
console.log(`median A ${(med(res.A) / 1000).toFixed(1)}k, B ${(med(res.B) / 1000).toFixed(1)}k msgs/s, B/A ${(med(res.B) / med(res.A)).toFixed(2)}`);
