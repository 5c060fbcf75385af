// Times checkLinearizable on generated histories: `node test/nemesis/checker-bench.mjs`.
// Prints one line per scenario; nothing is asserted (the machine is shared and timing is noisy).
import { checkLinearizable, readHistory } from './checker.mjs';
import { bigHistory } from './histgen.mjs';

const scenarios = [
  { name: '10k ops, 50 keys, 32 procs, 1% info', ops: 10_000, keys: 50, procs: 32, infoRate: 0.01 },
  { name: '10k ops, 50 keys, 32 procs, 5% info', ops: 10_000, keys: 50, procs: 32, infoRate: 0.05 },
  { name: '10k ops, 10 keys, 32 procs, 1% info', ops: 10_000, keys: 10, procs: 32, infoRate: 0.01 },
  { name: '10k ops, 5 keys, 64 procs, 2% info', ops: 10_000, keys: 5, procs: 64, infoRate: 0.02 },
  { name: '50k ops, 50 keys, 32 procs, 2% info', ops: 50_000, keys: 50, procs: 32, infoRate: 0.02 },
];
for (const s of scenarios) {
  const h = bigHistory(1, s);
  const ops = readHistory(h.text);
  const t0 = performance.now();
  const r = checkLinearizable(ops, { budgetMs: 20_000 });
  const ms = performance.now() - t0;
  const info = ops.filter((o) => o.status === 'info').length;
  const steps = r.keys.reduce((n, k) => n + k.explored, 0);
  const worst = r.keys.reduce((m, k) => (k.explored > m.explored ? k : m));
  console.log(`${s.name}: ${ops.length} ops (${info} info) -> ${r.valid} in ${ms.toFixed(0)} ms; ${steps} search steps, most on one key ${worst.explored} (${worst.key}, ${worst.ops} ops)`);
}
