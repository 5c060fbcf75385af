// Child-process side of the benchmark suite. A scenario file calls `scenario(meta, body)`; body
// gets a context to create grids, peers and Redis clients and to run tinybench tables. The result
// goes back to bench/run.mjs as one JSON message over the IPC channel. Run directly
// (`node bench/scenarios/get-hit.mjs [--quick]`) a scenario prints its own tables.
//
// Measuring sub-microsecond operations: tinybench times every call of a task function with
// performance.now(), and its per-call bookkeeping costs more than a Map lookup. So each task
// function here is a *batch*: B calls of the operation in a loop, B calibrated per task so one
// batch takes ~20 µs (B = 1 for anything slower, e.g. Redis round trips or getMany of 100 keys).
// ops/s = B × ops-per-call / mean batch time. Mean latency is the mean time per call; p99 is the
// 99th percentile of the per-call mean over each batch (a true per-call p99 when B = 1).
// Each batch loop is compiled separately (new Function) so every task has its own type feedback
// and its operation can be inlined — a shared loop would go megamorphic and tax all tasks alike.
import { Bench } from 'tinybench';
import { createGrid } from '../../dist/index.js';
import { startRedis } from './redis-server.mjs';
import { printScenario } from './report.mjs';

const TARGET_BATCH_MS = 0.02;
const MAX_BATCH = 1024;

function readOptions() {
  const env = process.env.SHARDGRID_BENCH_OPTS;
  if (env) return JSON.parse(env);
  return { quick: process.argv.includes('--quick'), redis: undefined, standalone: true };
}

/** The task function tinybench times: ctl.B calls of fn. ctl.B is read once per batch. */
function makeBatch(fn, isAsync, ctl) {
  const src = isAsync
    ? 'return async function batch() { const n = ctl.B; let r; for (let i = 0; i < n; i++) r = await fn(); ctl.v = r; }'
    : 'return function batch() { const n = ctl.B; let r; for (let i = 0; i < n; i++) r = fn(); ctl.v = r; }';
  return new Function('fn', 'ctl', src)(fn, ctl);
}

async function msPerCall(batch, isAsync, ctl, ms) {
  let calls = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    if (isAsync) await batch();
    else batch();
    calls += ctl.B;
    t = performance.now();
  }
  return (t - t0) / calls;
}

/**
 * Sets ctl.B so one batch takes ~20 µs. Runs the task's own batch function, so it is warm after
 * this: passes repeat until two in a row agree within 15% (the JIT has settled), at most 8 passes;
 * the fastest pass decides.
 */
async function calibrate(batch, isAsync, ctl, ms) {
  ctl.B = 4;
  let best = Infinity;
  let prev = Infinity;
  for (let pass = 0; pass < 8; pass++) {
    const perCall = await msPerCall(batch, isAsync, ctl, ms);
    best = Math.min(best, perCall);
    ctl.B = Math.max(1, Math.min(MAX_BATCH, Math.round(TARGET_BATCH_MS / best)));
    if (pass > 0 && Math.abs(perCall - prev) <= 0.15 * prev) break;
    prev = perCall;
  }
  return ctl.B;
}

class Context {
  constructor(meta, opts) {
    this.meta = meta;
    this.opts = opts;
    this.quick = !!opts.quick;
    this.tables = [];
    this.notes = [];
    this.extra = {};
    this.warnings = [];
    this.grids = [];
    this.clients = [];
    this.redisInfo = opts.redis ?? null;
    this.redisSkip = opts.redisSkip ?? null;
    this.time = this.quick ? 120 : 1500;
    this.warmupTime = this.quick ? 40 : 250;
    this.started = performance.now();
  }

  /** phase: 'step' (a new part of the scenario), 'run' (a task is measured), 'detail' (calibration, warm-up). */
  progress(text, phase = 'step') {
    if (process.send) process.send({ type: 'progress', text, phase });
    else if (phase !== 'detail') process.stderr.write(`  · ${text}\n`);
  }

  note(text) { this.notes.push(text); }
  warn(text) { this.warnings.push(text); }

  /** createGrid, closed when the scenario ends. */
  async grid(options) {
    const g = await createGrid(options);
    this.grids.push(g);
    return g;
  }

  /** A connected ioredis client, or null when Redis is not available (see ctx.redisSkip). */
  async redis({ autoPipelining = false } = {}) {
    if (!this.redisInfo) return null;
    const { Redis } = await import('ioredis');
    const c = new Redis({
      host: this.redisInfo.host,
      port: this.redisInfo.port,
      lazyConnect: true,
      enableAutoPipelining: autoPipelining,
      maxRetriesPerRequest: 1,
    });
    await c.connect();
    this.clients.push(c);
    return c;
  }

  /** Adds a finished table (custom scenarios: threads, memory). */
  table(t) {
    this.tables.push(t);
    return t;
  }

  /**
   * Runs one tinybench Bench over `tasks` and records it as a table.
   * task: { id, name, subject, fn, async?, ops? (operations per call, default 1), group?, sg?, skip?,
   *         warmMs? (run the task for this long right before its measured run, on top of
   *         tinybench's warm-up: for peers whose JIT takes seconds to settle) }
   * Rows of the same group are compared: ratio = shardgrid row's ops/s ÷ this row's ops/s.
   * opts: { title, note, perKey?: label of an extra per-key column (ops × opsPerKey) }
   */
  async bench(id, tasks, opts = {}) {
    // Batch sizes are calibrated once before tinybench's warm-up (coarse: the JIT may not have
    // settled) and again right before each task's measured run.
    const calib = new Map();
    const bench = new Bench({
      time: this.time,
      warmupTime: this.warmupTime,
      throws: false,
      iterations: 32,
      warmupIterations: 8,
      setup: async (task, mode) => {
        const c = calib.get(task.name);
        if (mode === 'run' && c) {
          if (c.warmMs > 0) {
            this.progress(`${id}: warming up ${task.name} for ${c.warmMs} ms`, 'detail');
            await msPerCall(c.batch, c.isAsync, c.ctl, c.warmMs);
          }
          this.progress(`${id}: calibrating ${task.name}`, 'detail');
          c.row.batch = await calibrate(c.batch, c.isAsync, c.ctl, this.quick ? 10 : 25);
        }
      },
    });
    const live = [];
    const rows = [];
    let done = 0;
    const runnable = tasks.filter((t) => !t.skip);
    for (const t of tasks) {
      const row = { id: t.id, name: t.name, subject: t.subject, group: t.group ?? id, sg: !!t.sg, ops: t.ops ?? 1, status: 'ok' };
      rows.push(row);
      if (t.skip) {
        row.status = 'skipped';
        row.note = t.skip;
        continue;
      }
      const isAsync = !!t.async;
      const ctl = { B: 1, v: undefined };
      const batch = makeBatch(t.fn, isAsync, ctl);
      try {
        this.progress(`${id}: calibrating ${t.name}`, 'detail');
        row.batch = await calibrate(batch, isAsync, ctl, this.quick ? 10 : 25);
      } catch (e) {
        row.status = 'error';
        row.note = String(e?.message ?? e);
        continue;
      }
      calib.set(t.name, { row, batch, isAsync, ctl, warmMs: t.warmMs ?? 0 });
      bench.add(t.name, batch);
      const task = bench.getTask(t.name);
      task.addEventListener('warmup', () => this.progress(`${id}: warm-up ${t.name}`, 'detail'));
      task.addEventListener('start', () => this.progress(`${id}: ${t.name} (${++done}/${runnable.length})`, 'run'));
      live.push([row, task]);
    }
    await bench.run();
    for (const [row, task] of live) {
      const r = task.result;
      if (r.state !== 'completed' && r.state !== 'aborted-with-statistics') {
        row.status = 'error';
        row.note = String(r.error?.message ?? r.state);
        continue;
      }
      const perCallMs = r.latency.mean / row.batch;
      row.callsPerSec = 1000 / perCallMs;
      row.opsPerSec = row.callsPerSec * row.ops;
      row.meanUs = perCallMs * 1000;
      row.p99Us = (r.latency.p99 / row.batch) * 1000;
      row.rme = r.latency.rme;
      row.samples = r.latency.samplesCount;
    }
    for (const row of rows) {
      if (row.sg || row.status !== 'ok') continue;
      const sg = rows.find((x) => x.sg && x.group === row.group && x.status === 'ok');
      if (sg) row.ratio = sg.opsPerSec / row.opsPerSec;
    }
    const columns = [
      { key: 'name', label: 'task', fmt: 'text' },
      { key: opts.perKey ? 'callsPerSec' : 'opsPerSec', label: opts.perKey ? 'calls/s' : 'ops/s', fmt: 'rate' },
      ...(opts.perKey ? [{ key: 'opsPerSec', label: opts.perKey, fmt: 'rate' }] : []),
      { key: 'meanUs', label: 'mean µs', fmt: 'us' },
      { key: 'p99Us', label: 'p99 µs', fmt: 'us' },
      { key: 'rme', label: '±%', fmt: 'pct' },
      { key: 'batch', label: 'batch', fmt: 'int' },
      { key: 'ratio', label: 'shardgrid ÷ this', fmt: 'ratio' },
    ];
    return this.table({
      id,
      title: opts.title ?? id,
      note: opts.note,
      kind: 'bench',
      columns,
      rows,
      chart: { key: 'opsPerSec', label: opts.perKey ?? 'ops/s', fmt: 'rate' },
    });
  }

  gridSummary(grid) {
    const s = grid.stats();
    return { entries: s.entries, bytesUsed: s.bytesUsed, bytesLimit: s.bytesLimit, hits: s.hits, misses: s.misses, evictions: s.evictions, expirations: s.expirations };
  }

  async close() {
    for (const g of this.grids) {
      const s = g.stats();
      if (s.evictions > 0 && !this.evictionsExpected) this.warn(`the grid evicted ${s.evictions} entries during this scenario`);
      this.extra.grid ??= this.gridSummary(g);
    }
    await Promise.allSettled(this.clients.map((c) => c.quit().catch(() => c.disconnect())));
    await Promise.allSettled(this.grids.map((g) => g.close()));
  }
}

/** Entry point of every scenario file. */
export async function scenario(meta, body) {
  const opts = readOptions();
  let ownRedis;
  if (opts.standalone) {
    ownRedis = await startRedis();
    if (ownRedis.skipped) opts.redisSkip = ownRedis.skipped;
    else opts.redis = { host: ownRedis.host, port: ownRedis.port, version: ownRedis.version };
  }
  const ctx = new Context(meta, opts);
  if (!ctx.redisInfo) ctx.redisSkip ??= 'Redis is not available';
  let error;
  try {
    await body(ctx);
  } catch (e) {
    error = e;
  }
  try {
    await ctx.close();
  } catch (e) {
    error ??= e;
  }
  await ownRedis?.stop?.();
  const result = {
    name: meta.name,
    title: meta.title,
    description: meta.description,
    status: error ? 'failed' : 'ok',
    error: error ? String(error.stack ?? error) : undefined,
    durationMs: performance.now() - ctx.started,
    tables: ctx.tables,
    notes: ctx.notes,
    warnings: ctx.warnings,
    extra: ctx.extra,
  };
  if (process.send) {
    await new Promise((resolve) => process.send({ type: 'result', result }, resolve));
    process.disconnect();
  } else {
    printScenario(result);
  }
  process.exitCode = error ? 1 : 0;
  // Clients and grids are closed; anything still holding the loop open is a leak, not work.
  setTimeout(() => process.exit(), 200).unref();
}
