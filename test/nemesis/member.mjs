#!/usr/bin/env node
// A data member of the fault harness that also runs recording clients (`--member-clients N`):
// cluster.mjs starts this file instead of `shardgrid start`, with the same options, so the process
// is the same data member (its proxy, advertised address and source address as the CLI's), and
// N of the kv workload's logical clients run on its own `grid.map('nemesis')`. A set, increment
// or register op of theirs whose key this member is the primary of takes the member's local write
// path (replicas.ts: lease check, epoch fence, unsettled keys, synchronous backup); the others are
// routed to the primary from here, as any data member's.
//
//   node member.mjs --host H --port P --advertise H:P --source-address IP --backups B --memory M
//                   --workers W [--seeds URLS] --clients JSON
//   SHARDGRID_SECRET in the environment. JSON: { n, mix, cas, timeoutMs, pad, prefix, seed }.
//
// stdin, one command a line: `start` (the clients begin), `stop` (they issue nothing more; once
// every op has completed: `@h {"e":"stopped"}`). SIGTERM: the clients stop and the member leaves
// the cluster, as `shardgrid start` does.
// stdout: the CLI's listening line, then every invoke and completion of the clients as a line
// `@h {"e":"i",...}` / `@h {"e":"c",...}` with absolute times (performance.timeOrigin +
// performance.now(), the eviction log's convention), written synchronously (stdout to a pipe is
// synchronous on Linux): a SIGKILL loses no line already written. The harness (clients.mjs,
// MemberRecorder) turns them into history lines and records the ops still open when this process
// is gone as `info`.
import { parseArgs } from 'node:util';
import { createGrid } from '../../dist/index.js';
import { Clients } from './clients.mjs';
import { rng } from './histgen.mjs';

const { values: a } = parseArgs({
  options: {
    host: { type: 'string' }, port: { type: 'string' }, advertise: { type: 'string' }, 'source-address': { type: 'string' },
    backups: { type: 'string' }, memory: { type: 'string' }, workers: { type: 'string' }, seeds: { type: 'string' }, clients: { type: 'string' },
  },
  strict: true,
});
const cfg = JSON.parse(a.clients);
const emit = (o) => process.stdout.write(`@h ${JSON.stringify(o)}\n`);
const say = (line) => process.stdout.write(`${line}\n`);

/** The History interface Clients and `recorded` use (clients.mjs), sending each event to the harness. */
class EmittedHistory {
  nextId = 1;

  invoke(proc, f, key, value) {
    const op = { id: this.nextId++, proc, f, key, value };
    emit({ e: 'i', id: op.id, proc, f, key, value, t: performance.timeOrigin + performance.now() });
    return op;
  }

  complete(op, type, value, err) {
    const e = { e: 'c', id: op.id, type, value, t: performance.timeOrigin + performance.now() };
    if (err !== undefined) e.err = err instanceof Error ? `${err.code ?? err.name}: ${err.message.slice(0, 160)}` : String(err).slice(0, 160);
    emit(e);
  }
}

let grid;
try {
  grid = await createGrid({
    workers: Number(a.workers),
    memory: a.memory,
    cluster: {
      host: a.host, port: Number(a.port), advertise: a.advertise, sourceAddress: a['source-address'],
      seeds: a.seeds === undefined ? [] : a.seeds.split(','), secret: process.env.SHARDGRID_SECRET, backups: Number(a.backups),
    },
  });
} catch (err) {
  process.stderr.write(`member.mjs: ${err?.stack ?? err}\n`);
  process.exit(1);
}
const id = () => grid.stats().cluster?.memberId ?? '(unknown)';
grid.on('rejoined', (newId) => say(`rejoined as ${newId}`));
grid.on('partition-lost', (parts) => say(`partition-lost ${parts.length} partition(s)`));
say(`shardgrid member ${id()} listening on ws://${a.host}:${a.port} advertised as ws://${a.advertise} (member.mjs: ${cfg.n} recording clients)`);

const clients = new Clients({
  history: new EmittedHistory(),
  lites: [{ map: grid.map('nemesis') }],
  concurrency: cfg.n,
  mix: cfg.mix,
  cas: cfg.cas,
  timeoutMs: cfg.timeoutMs,
  pad: cfg.pad,
  prefix: cfg.prefix,
  random: rng(cfg.seed),
});
let started = false;
const stop = async () => {
  await clients.stop();
  emit({ e: 'stopped' });
};
process.stdin.setEncoding('utf8');
let pending = '';
process.stdin.on('data', (d) => {
  pending += d;
  for (let i = pending.indexOf('\n'); i >= 0; i = pending.indexOf('\n')) {
    const cmd = pending.slice(0, i).trim();
    pending = pending.slice(i + 1);
    if (cmd === 'start' && !started) {
      started = true;
      clients.start();
      say(`${cfg.n} recording clients started`);
    } else if (cmd === 'stop') {
      void stop();
    }
  }
});

let leaving = false;
process.on('SIGTERM', async () => {
  if (leaving) process.exit(3);
  leaving = true;
  say(`SIGTERM: member ${id()} is leaving the cluster`);
  clients.stopping = true;
  try {
    await grid.close();
  } catch (err) {
    process.stderr.write(`member.mjs: leaving the cluster failed: ${err?.message ?? err}\n`);
  }
  say(`member ${id()} stopped`);
  process.exit(0);
});
