// Builds the plaintext reference for bench/ab-transport.mjs: a copy of this checkout's dist/ in
// which FrameCipher.seal is a copy and FrameCipher.open returns the frame, so everything else of
// the protocol (binary handshake, admission, scan before decode, framing) stays the same and an
// A/B against it measures what sealing costs. Never used outside benchmarks.
// Usage: npm run build && node bench/plain-dist.mjs [bench/results/plain-dist]   (prints the path)
import { cpSync, appendFileSync, rmSync } from 'node:fs';
import path from 'node:path';

const out = path.resolve(process.argv[2] ?? 'bench/results/plain-dist');
rmSync(out, { recursive: true, force: true });
cpSync(path.resolve('dist'), out, { recursive: true });
appendFileSync(
  path.join(out, 'transport/wire.js'),
  `
// bench/plain-dist.mjs: sealing replaced by a copy (plaintext reference, NOT secure)
FrameCipher.prototype.seal = function (plain, len = plain.length) { return Buffer.from(plain.subarray(0, len)); };
FrameCipher.prototype.open = function (frame) { return frame.length > 0 ? frame : undefined; };
`,
);
console.log(out);
