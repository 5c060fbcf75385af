// The shardgrid benchmark suite: runs every scenario of bench/scenarios/ in a fresh Node process
// (so one scenario does not warm the JIT for the next), every peer of a scenario in that same
// process, then prints a table per scenario, checks the targets, and writes
// bench/results/latest.json (+ a timestamped copy) and bench/results/latest.html.
//
// Usage: node bench/run.mjs [--quick] [--only name,name] [--no-redis] [--list]
//   (npm run bench -- --quick   builds first)
// Redis rows need `redis-server` on the PATH; the suite starts its own on a free loopback port
// and stops it at the end, also on errors and Ctrl-C. Without it those rows say "skipped".
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { REDIS_INSTALL_HINT, startRedis } from './lib/redis-server.mjs';
import { checkTargets, formatTargets, headlineMarkdown, printScenario, renderHtml } from './lib/report.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(HERE);
const SCENARIO_DIR = path.join(HERE, 'scenarios');
const RESULTS_DIR = path.join(HERE, 'results');
/** Run order; scenario files not listed here run afterwards in name order. */
const ORDER = ['get-hit', 'get-miss', 'set', 'values-16b', 'values-4kb', 'values-object', 'mix-zipf', 'sizes-10k', 'sizes-100k', 'sizes-1m', 'full', 'batch-100', 'ttl', 'concurrency', 'threads', 'memory'];
const SCENARIO_TIMEOUT_MS = { quick: 60_000, full: 240_000 };
/**
 * Scenarios whose timeout is this many times the default: the sizes sweeps fill 100,000s of keys
 * into three peers first; resp runs redis-benchmark -n 500,000 for 3 commands × 2 pipelines ×
 * 2 servers, twice (single process, then a cluster member: 141 s for the first half alone on a
 * quiet machine, 2026-11-26, which the plain 240 s cut off in the second).
 */
const TIMEOUT_SCALE = { 'sizes-100k': 2, 'sizes-1m': 4, resp: 4 };
const HELP = `Usage: npm run bench -- [options]     (or: node bench/run.mjs [options] after npm run build)

  --quick             short runs (whole suite well under a minute); numbers are rougher
  --only a,b,…        run only these scenarios (see --list)
  --no-redis          do not start redis-server; Redis rows are skipped
  --list              list the scenarios and exit
  --readme [file]     print the README headline tables (markdown) of a results file
                      (default bench/results/latest.json) and exit; runs nothing
  -h, --help          this text

Redis rows need redis-server (${REDIS_INSTALL_HINT}).
Results: bench/results/latest.json, a timestamped copy, and bench/results/latest.html.`;

function listScenarios() {
  const names = readdirSync(SCENARIO_DIR).filter((f) => f.endsWith('.mjs')).map((f) => f.slice(0, -4));
  const known = ORDER.filter((n) => names.includes(n));
  return [...known, ...names.filter((n) => !ORDER.includes(n)).sort()];
}

/** Cores' worth of CPU used by anything (other processes included) over `ms`, from os.cpus() times. */
async function busyCores(ms = 500) {
  const snap = () => os.cpus().map((c) => c.times).reduce((a, t) => ({ idle: a.idle + t.idle, all: a.all + t.user + t.nice + t.sys + t.idle + t.irq }), { idle: 0, all: 0 });
  const a = snap();
  await new Promise((r) => setTimeout(r, ms));
  const b = snap();
  const all = b.all - a.all;
  return all > 0 ? (1 - (b.idle - a.idle) / all) * os.cpus().length : 0;
}

function machineInfo(redis) {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model?.trim() ?? 'unknown',
    cores: cpus.length,
    availableParallelism: os.availableParallelism(),
    totalMemory: os.totalmem(),
    platform: `${os.platform()} ${os.release()}`,
    arch: os.arch(),
    node: process.version,
    redis: redis.version ?? null,
    loadAverage: os.loadavg(),
  };
}

const pkgVersion = (name) => {
  try {
    return JSON.parse(readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
};

// ── progress display ────────────────────────────────────────────────────────────────────────────

class Progress {
  constructor(total) {
    this.total = total;
    this.tty = process.stdout.isTTY;
    this.t0 = performance.now();
    this.timer = undefined;
    this.line = '';
  }

  elapsed(from) {
    return `${((performance.now() - from) / 1000).toFixed(1)}s`;
  }

  start(i, name) {
    this.i = i;
    this.name = name;
    this.sceneT0 = performance.now();
    this.text = 'starting';
    if (this.tty) this.timer = setInterval(() => this.render(), 250);
    else console.log(`[${i}/${this.total}] ${name} …`);
    this.render();
  }

  update(text, phase) {
    this.text = text;
    if (this.tty) this.render();
    else if (phase !== 'detail') console.log(`[${this.i}/${this.total}] ${this.name} +${this.elapsed(this.sceneT0)}  ${text}`);
  }

  render() {
    if (!this.tty) return;
    const line = `[${this.i}/${this.total}] ${this.name}  ${this.elapsed(this.sceneT0)} (suite ${this.elapsed(this.t0)})  ${this.text}`;
    const cols = process.stdout.columns || 120;
    process.stdout.write(`\r\x1b[K${line.slice(0, cols - 1)}`);
  }

  /** Clears the status line so that results can be printed. */
  clear() {
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.tty) process.stdout.write('\r\x1b[K');
  }
}

// ── one scenario in a child process ─────────────────────────────────────────────────────────────

let currentChild;

function runScenario(name, childOpts, progress, timeoutMs) {
  return new Promise((resolve) => {
    const started = performance.now();
    const file = path.join(SCENARIO_DIR, `${name}.mjs`);
    const child = spawn(process.execPath, [file], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, SHARDGRID_BENCH_OPTS: JSON.stringify(childOpts) },
    });
    currentChild = child;
    let output = '';
    const keep = (d) => { output = (output + d).slice(-8000); };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let result;
    child.on('message', (m) => {
      if (m?.type === 'progress') progress.update(m.text, m.phase);
      else if (m?.type === 'result') result = m.result;
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => keep(`\n${e.stack}`));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      currentChild = undefined;
      const durationMs = performance.now() - started;
      if (result) {
        result.durationMs = durationMs;
        if (result.status === 'failed' && output.trim()) result.output = output.trim();
        resolve(result);
        return;
      }
      const why = timedOut ? `timed out after ${timeoutMs / 1000} s` : `exited with ${signal ?? `code ${code}`} without a result`;
      resolve({ name, title: name, status: 'failed', error: `${why}\n${output.trim()}`, durationMs, tables: [], notes: [], warnings: [] });
    });
  });
}

// ── main ────────────────────────────────────────────────────────────────────────────────────────

async function main() {
  let args;
  try {
    args = parseArgs({
      options: {
        quick: { type: 'boolean', default: false },
        only: { type: 'string' },
        'no-redis': { type: 'boolean', default: false },
        list: { type: 'boolean', default: false },
        readme: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (e) {
    console.error(`${e.message}\n\n${HELP}`);
    return 2;
  }
  const positionals = args.positionals;
  args = args.values;
  if (args.readme) {
    const file = positionals[0] ?? path.join(RESULTS_DIR, 'latest.json');
    console.log(headlineMarkdown(JSON.parse(readFileSync(file, 'utf8'))));
    return 0;
  }
  if (positionals.length) {
    console.error(`unexpected argument "${positionals[0]}"\n\n${HELP}`);
    return 2;
  }
  if (args.help) {
    console.log(HELP);
    return 0;
  }
  const all = listScenarios();
  if (args.list) {
    console.log(all.join('\n'));
    return 0;
  }
  let selected = all;
  if (args.only !== undefined) {
    const wanted = args.only.split(',').map((s) => s.trim()).filter(Boolean);
    const unknown = wanted.filter((w) => !all.includes(w));
    if (unknown.length || wanted.length === 0) {
      console.error(`--only: unknown scenario ${unknown.map((u) => `"${u}"`).join(', ') || '(none given)'}. Scenarios: ${all.join(', ')}`);
      return 2;
    }
    selected = all.filter((n) => wanted.includes(n));
  }
  const mode = args.quick ? 'quick' : 'full';
  const startedAt = new Date();
  const t0 = performance.now();

  let redis = { skipped: 'disabled with --no-redis' };
  let interrupted = false;
  const stopAll = async () => {
    currentChild?.kill('SIGKILL');
    await redis.stop?.();
  };
  const onSignal = (sig) => {
    if (interrupted) return;
    interrupted = true;
    process.stdout.write(`\n${sig}: stopping the running scenario and redis-server…\n`);
    stopAll().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  if (!args['no-redis']) redis = await startRedis();
  if (redis.skipped) {
    console.log(`Redis: skipped — ${redis.skipped}.`);
    if (/not installed/.test(redis.skipped)) console.log(`       To include Redis rows: ${REDIS_INSTALL_HINT}`);
  } else {
    console.log(`Redis: redis-server ${redis.version} started on 127.0.0.1:${redis.port} (no persistence); it is stopped at the end.`);
  }

  const machine = machineInfo(redis);
  console.log(`Machine: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}. Mode: ${mode}. Scenarios (${selected.length}): ${selected.join(', ')}`);
  machine.busyCoresAtStart = await busyCores();
  if (machine.busyCoresAtStart >= 0.5) {
    console.log(`Note: ${machine.busyCoresAtStart.toFixed(1)} of ${machine.cores} cores were busy with other work just before the run — figures will be noisy and thread scaling understated.`);
  }

  const childOpts = {
    quick: args.quick,
    redis: redis.skipped ? null : { host: redis.host, port: redis.port, version: redis.version },
    redisSkip: redis.skipped ?? null,
  };
  const progress = new Progress(selected.length);
  const scenarios = [];
  try {
    for (let i = 0; i < selected.length; i++) {
      progress.start(i + 1, selected[i]);
      const r = await runScenario(selected[i], childOpts, progress, SCENARIO_TIMEOUT_MS[mode] * (TIMEOUT_SCALE[selected[i]] ?? 1));
      progress.clear();
      if (interrupted) return 130;
      scenarios.push(r);
      printScenario(r);
      if (r.output) console.log(r.output.split('\n').slice(-20).map((l) => `  | ${l}`).join('\n'));
    }
  } finally {
    progress.clear();
    await redis.stop?.();
  }

  const targets = checkTargets(scenarios);
  const finishedAt = new Date();
  const report = {
    schema: 'shardgrid-bench/1',
    mode,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationMs: performance.now() - t0,
    options: { quick: args.quick, only: args.only ?? null, redis: !args['no-redis'] },
    machine,
    tinybench: pkgVersion('tinybench'),
    versions: { shardgrid: JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version, 'lru-cache': pkgVersion('lru-cache'), ioredis: pkgVersion('ioredis'), tinybench: pkgVersion('tinybench') },
    redis: redis.skipped ? { status: 'skipped', reason: redis.skipped } : { status: 'ok', version: redis.version },
    targets,
    scenarios,
  };
  console.log(`\n${formatTargets(targets)}`);

  mkdirSync(RESULTS_DIR, { recursive: true });
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const json = `${JSON.stringify(report, null, 2)}\n`;
  const files = [path.join(RESULTS_DIR, 'latest.json'), path.join(RESULTS_DIR, `bench-${stamp}-${mode}.json`), path.join(RESULTS_DIR, 'latest.html')];
  writeFileSync(files[0], json);
  writeFileSync(files[1], json);
  writeFileSync(files[2], renderHtml(report));
  const failed = scenarios.filter((s) => s.status !== 'ok');
  console.log(`\n${mode} run: ${scenarios.length} scenarios in ${(report.durationMs / 1000).toFixed(1)} s${failed.length ? `, ${failed.length} FAILED (${failed.map((s) => s.name).join(', ')})` : ''}.`);
  console.log(`Results: ${files.map((f) => path.relative(process.cwd(), f)).join(', ')}`);
  return failed.length ? 1 : 0;
}

main().then(
  (code) => { process.exitCode = code; },
  (e) => {
    console.error(e);
    process.exitCode = 1;
  },
);
