// The A/B runner of bench/ab-remote.mjs and bench/ab-compute.mjs: two built trees, rounds
// alternating A, B, A, B … so that drift of a shared, noisy machine falls on both, each round in a
// fresh child process (`<script> --one <dir> …`; see ab-remote.mjs for why), then per task the
// figures of every round and the median ratio B/A.
import { execFileSync, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';

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

/**
 * Starts a data member of tree `dir` in a child process (<dir>/test/fixtures/grid-member.mjs,
 * backups 1; `secret` in SHARDGRID_SECRET, never argv); resolves to { proc, url, id } once it listens.
 */
export function startTreeMember(dir, seeds, secret) {
  const file = resolve(dir, 'test/fixtures/grid-member.mjs');
  const proc = spawn(process.execPath, [file, JSON.stringify({ seeds, backups: 1 })], { stdio: ['pipe', 'pipe', 'ignore'], env: { ...process.env, SHARDGRID_SECRET: secret } });
  return new Promise((res, rej) => {
    createInterface({ input: proc.stdout }).once('line', (l) => res({ proc, ...JSON.parse(l) }));
    proc.once('exit', () => rej(new Error('member exited during start')));
  });
}
