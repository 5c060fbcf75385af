// The A/B runner of bench/ab-remote.mjs and bench/ab-compute.mjs: two built trees, rounds
// alternating A, B, A, B … so that drift of a shared, noisy machine falls on both, each round in a
// fresh child process (`<script> --one <dir> …`; see ab-remote.mjs for why), then per task the
// figures of every round and the median ratio B/A.
import { execFileSync } from 'node:child_process';

/** argv: the two tree directories, `--name value` numbers (`opt(name, default)`), and a child's `--one <dir>`. */
export function abArgs(argv = process.argv.slice(2)) {
  const opt = (name, d) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? Number(argv[i + 1]) : d;
  };
  const dirs = argv.filter((a, i) => !a.startsWith('--') && !(i > 0 && argv[i - 1].startsWith('--')));
  const i = argv.indexOf('--one');
  return { opt, dirs, one: i >= 0 ? argv[i + 1] : undefined };
}

/**
 * Runs `rounds` rounds of `script --one <dir> ...childArgs` for each of the two `dirs`; each child
 * prints one JSON object `{ task: figure }`. `childArgs`: an array, or a function of the side
 * ('A' | 'B') returning one. `show(figure)` formats a figure with its unit.
 */
export function abRounds(script, dirs, rounds, childArgs, show) {
  const results = { A: [], B: [] };
  for (let r = 0; r < rounds; r++) {
    for (const [label, dir] of [['A', dirs[0]], ['B', dirs[1]]]) {
      const more = typeof childArgs === 'function' ? childArgs(label) : childArgs;
      const res = JSON.parse(execFileSync(process.execPath, [script, '--one', dir, ...more], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }));
      results[label].push(res);
      console.log(`round ${r + 1} ${label} (${dir}): ${Object.entries(res).map(([k, v]) => `${k} ${show(v)}`).join(', ')}`);
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  for (const task of Object.keys(results.A[0])) {
    const ratios = results.A.map((a, i) => results.B[i][task] / a[task]);
    console.log(`${task}: B/A median ${median(ratios).toFixed(2)} (rounds: ${ratios.map((x) => x.toFixed(2)).join(', ')}); A median ${show(median(results.A.map((x) => x[task])))}, B median ${show(median(results.B.map((x) => x[task])))}`);
  }
}
