// CPU cost of sealing and opening one frame (AES-256-GCM, transport/wire.ts FrameCipher) by frame
// size, against the buffer copy a plaintext send made of a FAST frame. Usage: node bench/seal-cost.mjs
// (after npm run build). Prints µs per frame (median of 7 rounds); timing on a shared machine is noisy.
import { createSecretKey, randomBytes } from 'node:crypto';
import { FrameCipher } from '../dist/transport/wire.js';

const key = createSecretKey(randomBytes(32));
const sizes = [64, 1024, 8 * 1024, 64 * 1024, 256 * 1024];
const median = (a) => a.sort((x, y) => x - y)[a.length >> 1];
console.log('bytes      seal µs   open µs   copy µs   seal MB/s');
for (const n of sizes) {
  const plain = randomBytes(n);
  const iters = Math.max(200, Math.floor(20e6 / (n + 200)));
  const seal = [];
  const open = [];
  const copy = [];
  for (let round = 0; round < 7; round++) {
    const tx = new FrameCipher(key);
    const rx = new FrameCipher(key);
    const sealed = [];
    let t = performance.now();
    for (let i = 0; i < iters; i++) sealed.push(tx.seal(plain));
    seal.push(((performance.now() - t) * 1000) / iters);
    t = performance.now();
    for (let i = 0; i < iters; i++) if (rx.open(sealed[i]) === undefined) throw new Error('open failed');
    open.push(((performance.now() - t) * 1000) / iters);
    t = performance.now();
    for (let i = 0; i < iters; i++) {
      const b = Buffer.allocUnsafe(n);
      plain.copy(b, 0, 0, n);
    }
    copy.push(((performance.now() - t) * 1000) / iters);
  }
  const s = median(seal);
  console.log(`${String(n).padEnd(9)}  ${s.toFixed(2).padStart(7)}  ${median(open).toFixed(2).padStart(8)}  ${median(copy).toFixed(2).padStart(8)}  ${(n / s).toFixed(0).padStart(9)}`);
}
