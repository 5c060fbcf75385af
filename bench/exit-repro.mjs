// The issue-12 reproduction of 'an attached worker never exits': fill KEYS keys of 100 B, then per
// round start 2 workers that attach, run READS random getSync, await grid.close() and end; the main
// thread waits for both exit events (60 s bound) and prints how long after close() each exited.
// Usage: node bench/exit-repro.mjs [keys=100000] [reads=200000] [rounds=6]   (after npx tsc -p .)
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';
import { createGrid, attachGrid } from '../dist/index.js';
if (isMainThread) {
  const KEYS = Number(process.argv[2] ?? 100000), READS = Number(process.argv[3] ?? 200000), ROUNDS = Number(process.argv[4] ?? 6);
  const grid = await createGrid({ workers: 2, memory: '512MB' });
  const m = grid.map('m');
  const v = 'x'.repeat(100);
  for (let i = 0; i < KEYS; i++) await m.set('k' + i, v);
  console.log('filled');
  let stuck = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = Date.now();
    const ws = [0, 1].map(() => new Worker(new URL(import.meta.url), { workerData: { handle: grid.handle, KEYS, READS } }));
    const res = await Promise.all(ws.map((w) => new Promise((resolve) => {
      let closed = false;
      w.on('message', (x) => { if (x === "closed") closed = Date.now(); });
      const t = setTimeout(() => { resolve('STUCK closed=' + closed); w.terminate(); }, 60000);
      w.once("exit", () => { clearTimeout(t); resolve(closed ? "exit+" + (Date.now() - closed) : "exit-noclosed"); });
    })));
    if (res.some((x) => x.startsWith('STUCK'))) stuck++;
    console.log('round', r, res.join(','), Date.now() - t0, 'ms');
  }
  console.log('stuck rounds', stuck, 'of', ROUNDS);
  await grid.close();
} else {
  const { handle, KEYS, READS } = workerData;
  const g = await attachGrid(handle);
  const m = g.map('m');
  let n = 0;
  for (let i = 0; i < READS; i++) if (m.getSync('k' + ((Math.random() * KEYS) | 0)) !== undefined) n++;
  await g.close();
  parentPort.postMessage("closed");
}
