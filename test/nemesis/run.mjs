#!/usr/bin/env node
// The fault harness runner: `npm run nemesis -- --schedules N --seed S [options]` (see README.md).
//
// For each schedule: a fresh cluster of CLI members behind proxies, recording clients in this
// process, the schedule's faults one at a time, then heal, wait for the members to agree on one
// table version, read every key back through a fresh lite member, and run the checkers.
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { checkAckedWrites, checkCounters, checkLinearizable, readHistory, summarize } from './checker.mjs';
import { Clients, DEFAULT_MIX, History, MEMBER_CLOCK_SLACK_MS, MemberRecorder, cpMap, finalReads, longestWriteGap, startLite } from './clients.mjs';
import { Cluster, sleep } from './cluster.mjs';
import { FAULTS, SCENARIOS, describeEvent, makeSchedule, prng, runSchedule, scenarioSchedule } from './nemesis.mjs';
import { Network } from './proxy.mjs';
import { lruInversions, readEvictions } from './evictions.mjs';
import { checkLock, pauser, startLockClient, startResource } from './lock-workload.mjs';

const HERE = fileURLToPath(new URL('.', import.meta.url));
/** --member-clients: logical clients in each data member's process (README, "Member clients") */
const DEFAULT_MEMBER_CLIENTS = 8;

const USAGE = `usage: npm run nemesis -- [options]
  --schedules N        schedules to run (default 1)
  --first I            index of the first schedule (default 0): reruns schedule I of a seed alone
  --seed S             seed of the run (integer; default: random, printed)
  --scenario NAME      a named schedule instead of random ones: ${Object.keys(SCENARIOS).join(', ')}
  --duration MS        length of the faulty period of a random schedule (default 20000)
  --faults LIST        comma-separated faults to draw from (default ${FAULTS.join(',')})
  --beyond-tolerance   two members down (or cut off) at once: more than backups=1 tolerates
  --members N          data members (default 3)
  --concurrency N      logical clients on the lite members (default 64; 0 with --member-clients: only member clients)
  --member-clients N   logical clients in each data member's process, on its own grid.map (member.mjs),
                       recorded in the same history (default ${DEFAULT_MEMBER_CLIENTS}; kv workload only)
  --lites N            lite members in the harness the clients share (1 or 2, default 2)
  --mix U,I,R          weights of unique-key sets, increments, register ops (default ${DEFAULT_MIX.unique},${DEFAULT_MIX.incr},${DEFAULT_MIX.register})
  --no-cas             register ops are get and set only (no compareAndSet)
  --memory SIZE        each data member's memory (default 128MB: no member evicts). With it, members
                       evict under the load and record every eviction; the checkers then accept a key
                       that reads absent where some member evicted it (never an older value)
  --pad BYTES          bytes added to every unique key's value (default 2000 with --memory, else 0)
  --unsafe-ship-wrong-key  negative control for --memory: members run with
                       SHARDGRID_UNSAFE_SHIP_WRONG_KEY=1 (an eviction makes copies drop another key)
  --timeout MS         client-side timeout of one operation (default 20000)
  --lin-budget MS      linearizability search budget per key (default 5000)
  --converge-limit MS  how long to wait for the members to agree after healing (default 30000)
  --final-limit MS     no final read starts after this long (default 120000): keys left are unread
  --out DIR            results folder (default test/nemesis/results/<timestamp>-seed<S>)
  --keep               keep history.jsonl of schedules that pass (default: kept only when not valid)
  --quiet              print only the summary
  --unsafe-unfenced    negative control: members run with SHARDGRID_UNSAFE_UNFENCED=1 (no lease
                       check, no epoch fence); the checkers are expected to catch it
  --unsafe-early-own-ack  negative control for --member-clients: members run with
                       SHARDGRID_UNSAFE_EARLY_OWN_ACK=1 (a member's set on its own primary is
                       acknowledged once applied there, replicated a second later); a kill is
                       expected to lose acknowledged sets of member clients
  --unsafe-cp-reads    negative control for --workload cp: data members answer grid.cp reads
                       from their own state, without ReadIndex; the checker is expected to
                       catch stale reads
  --workload NAME      kv (default: sets, increments, registers), cp (the same clients and
                       checkers on grid.cp: atomicLong increments, atomicRef registers; no
                       unique sets) or lock (lock-workload.mjs: grid.cp lock clients in
                       separate processes, a fenced resource, clients paused past their lease)
  --lock-clients N     lock workload: client processes (default 4)
  --lease MS           lock workload: the lock's leaseMs (default 800)
  --unsafe-ttl-lock    lock workload negative control: a TTL-only lock, no token, no fence;
                       the checker is expected to catch overlapping sections`;

function options(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      schedules: { type: 'string', default: '1' },
      first: { type: 'string', default: '0' },
      seed: { type: 'string' },
      scenario: { type: 'string' },
      duration: { type: 'string', default: '20000' },
      faults: { type: 'string' },
      'beyond-tolerance': { type: 'boolean', default: false },
      members: { type: 'string', default: '3' },
      concurrency: { type: 'string', default: '64' },
      'member-clients': { type: 'string' },
      lites: { type: 'string', default: '2' },
      mix: { type: 'string' },
      'no-cas': { type: 'boolean', default: false },
      'unsafe-unfenced': { type: 'boolean', default: false },
      memory: { type: 'string' },
      pad: { type: 'string' },
      'unsafe-ship-wrong-key': { type: 'boolean', default: false },
      'unsafe-cp-reads': { type: 'boolean', default: false },
      'unsafe-early-own-ack': { type: 'boolean', default: false },
      workload: { type: 'string', default: 'kv' },
      'lock-clients': { type: 'string', default: '4' },
      lease: { type: 'string', default: '800' },
      'unsafe-ttl-lock': { type: 'boolean', default: false },
      timeout: { type: 'string', default: '20000' },
      'lin-budget': { type: 'string', default: '5000' },
      'converge-limit': { type: 'string', default: '30000' },
      'final-limit': { type: 'string', default: '120000' },
      out: { type: 'string' },
      keep: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const int = (name, lo, hi) => {
    const v = Number(values[name]);
    if (!Number.isInteger(v) || v < lo || v > hi) throw new Error(`--${name} must be an integer from ${lo} to ${hi} (got ${values[name]})`);
    return v;
  };
  // the members inherit the runner's environment
  if (values['unsafe-unfenced']) process.env.SHARDGRID_UNSAFE_UNFENCED = '1';
  if (values['unsafe-cp-reads']) process.env.SHARDGRID_UNSAFE_CP_LOCAL_READS = '1';
  if (values['unsafe-early-own-ack']) process.env.SHARDGRID_UNSAFE_EARLY_OWN_ACK = '1';
  if (values['unsafe-ship-wrong-key']) {
    if (values.memory === undefined) throw new Error('--unsafe-ship-wrong-key needs --memory');
    process.env.SHARDGRID_UNSAFE_SHIP_WRONG_KEY = '1';
  }
  if (values.memory !== undefined && !/^\d+(MB|GB)$/.test(values.memory)) throw new Error(`--memory must be like 16MB or 1GB (got ${values.memory})`);
  const o = {
    help: values.help,
    schedules: int('schedules', 1, 10_000),
    first: int('first', 0, 1_000_000),
    seed: values.seed === undefined ? randomBytes(4).readUInt32BE() % 1_000_000 : int('seed', 0, 2 ** 32 - 1),
    scenario: values.scenario,
    duration: int('duration', 2000, 3_600_000),
    faults: values.faults === undefined ? [...FAULTS] : values.faults.split(',').map((s) => s.trim()).filter(Boolean),
    beyondTolerance: values['beyond-tolerance'],
    members: int('members', 2, 9),
    concurrency: int('concurrency', 0, 1024),
    memberClients: values['member-clients'] === undefined ? undefined : int('member-clients', 0, 256),
    lites: int('lites', 1, 2),
    mix: DEFAULT_MIX,
    cas: !values['no-cas'],
    timeout: int('timeout', 100, 600_000),
    linBudget: int('lin-budget', 10, 3_600_000),
    convergeLimit: int('converge-limit', 1000, 3_600_000),
    finalLimit: int('final-limit', 1000, 3_600_000),
    out: values.out,
    keep: values.keep,
    quiet: values.quiet,
    workload: values.workload,
    lockClients: int('lock-clients', 1, 64),
    lease: int('lease', 50, 600_000),
    unsafeTtlLock: values['unsafe-ttl-lock'],
    memory: values.memory,
    pad: values.pad === undefined ? (values.memory === undefined ? 0 : 2000) : int('pad', 0, 1 << 20),
    unsafeShipWrongKey: values['unsafe-ship-wrong-key'],
  };
  if (o.workload !== 'kv' && o.workload !== 'lock' && o.workload !== 'cp') throw new Error(`--workload must be kv, cp or lock (got ${o.workload})`);
  if (o.unsafeTtlLock && o.workload !== 'lock') throw new Error('--unsafe-ttl-lock needs --workload lock');
  if (o.workload !== 'kv' && o.memberClients > 0) throw new Error('--member-clients: kv workload only');
  o.memberClients ??= o.workload === 'kv' ? DEFAULT_MEMBER_CLIENTS : 0;
  if (o.concurrency === 0 && o.memberClients === 0) throw new Error('--concurrency 0 needs --member-clients N (N > 0)');
  if (values['unsafe-early-own-ack'] && o.memberClients === 0) throw new Error('--unsafe-early-own-ack needs --member-clients N (N > 0): only member clients set on their own primary');
  for (const f of o.faults) if (!FAULTS.includes(f)) throw new Error(`--faults: unknown fault ${f} (known: ${FAULTS.join(', ')})`);
  if (o.scenario !== undefined && SCENARIOS[o.scenario] === undefined) throw new Error(`--scenario: unknown ${o.scenario} (known: ${Object.keys(SCENARIOS).join(', ')})`);
  if (values.mix !== undefined) {
    const w = values.mix.split(',').map(Number);
    if (w.length !== 3 || w.some((x) => !Number.isFinite(x) || x < 0) || w[0] + w[1] + w[2] === 0) throw new Error('--mix must be three non-negative weights U,I,R, not all 0');
    o.mix = { unique: w[0], incr: w[1], register: w[2] };
    o.mixGiven = true; // an explicit --mix overrides a scenario's own
  }
  if (o.workload === 'cp') {
    // atomicLong increments and atomicRef registers; unique keys would each be a primitive of their own
    if (o.mixGiven && o.mix.unique > 0) throw new Error('--workload cp: the mix can have no unique sets (--mix 0,I,R)');
    if (!o.mixGiven) o.mix = { unique: 0, incr: 1, register: 1 };
    o.mixGiven = true;
  }
  return o;
}

const withTimeout = (p, ms, what) =>
  Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms).unref())]);

/** Runs one schedule; returns its summary object. */
async function runOne(schedule, o, dir, say) {
  mkdirSync(dir, { recursive: true });
  const logFile = join(dir, 'harness.log');
  const log = (line) => {
    const l = `[${(performance.now() / 1000).toFixed(3)}] ${line}`;
    appendFileSync(logFile, `${l}\n`);
    say(`  ${line}`);
  };
  const secret = randomBytes(24).toString('base64url');
  const network = new Network();
  // --memory: members evict, and record each eviction here (src/storage/eviction-log.ts)
  const evictionDir = o.memory === undefined ? undefined : join(dir, 'evictions');
  if (evictionDir !== undefined) mkdirSync(evictionDir, { recursive: true });
  const history = new History(join(dir, 'history.jsonl'));
  const pad = o.pad > 0 ? `|${'x'.repeat(o.pad - 1)}` : '';
  const mix = o.mixGiven ? o.mix : (schedule.mix ?? o.mix);
  const random = prng((schedule.seed ^ Math.imul(schedule.index + 1, 0x9e3779b1)) >>> 0);
  const members = o.memberClients === 0 ? undefined : new MemberRecorder({ history, n: o.memberClients, mix, cas: o.cas, timeoutMs: o.timeout, pad, seed: Math.floor(random() * 2 ** 32), log });
  const cluster = new Cluster({ network, dir, secret, members: o.members, log, memory: o.memory, env: evictionDir === undefined ? {} : { SHARDGRID_TEST_EVICTION_LOG: evictionDir }, clients: members });
  const lites = [];
  const result = { seed: schedule.seed, index: schedule.index, scenario: schedule.scenario, dir, planned: schedule.events.map(describeEvent) };
  try {
    const tBoot = performance.now();
    await cluster.start();
    const boot = await cluster.waitConverged(60_000);
    if (!boot.ok) throw new Error(`the cluster did not converge after start: ${boot.why}`);
    log(`cluster of ${o.members} up and converged in ${Math.round(performance.now() - tBoot)} ms (table version ${boot.tableVersion})`);
    // --concurrency 0: member clients only, no lite member to start
    for (let i = 0; i < (o.concurrency === 0 ? 0 : o.lites); i++) lites.push(await startLite({ network, name: `c${i + 1}`, ip: `127.0.0.${50 + i}`, seeds: cluster.urls(), secret }));
    if (o.workload === 'cp') for (const l of lites) l.map = cpMap(l.grid);
    const clients = new Clients({ history, lites, concurrency: o.concurrency, mix, timeoutMs: o.timeout, cas: o.cas, pad, random }).start();
    members?.start(cluster);

    const tStart = performance.now();
    const events = await runSchedule(schedule, { cluster, network, clients: lites.map((l) => l.name), log });
    const rest = schedule.duration - (performance.now() - tStart);
    if (rest > 0) await sleep(rest);
    const tEnd = performance.now();
    log(`schedule done after ${Math.round(tEnd - tStart)} ms; stopping the clients (outstanding ops end within ${o.timeout} ms)`);
    await Promise.all([clients.stop(), members?.stop(o.timeout + 10_000)]);
    if (members !== undefined) log(`member clients (${o.memberClients} per member): ${JSON.stringify(members.counts)}`);

    // heal: links, paused and stopped members
    const tHeal = performance.now();
    network.heal();
    for (const k of cluster.members.keys()) cluster.resume(k);
    for (const k of cluster.members.keys()) if (cluster.members.get(k).state === 'down') await cluster.launch(k);
    const conv = await cluster.waitConverged(o.convergeLimit);
    const convergenceMs = Math.round(performance.now() - tHeal);
    const views = conv.ok ? undefined : await cluster.views();
    log(conv.ok ? `converged ${convergenceMs} ms after healing (table version ${conv.tableVersion})` : `NOT converged ${convergenceMs} ms after healing: ${conv.why}; views (* = coordinator): ${views.join(' | ')}`);

    // final reads through a fresh lite member
    const reader = await withTimeout(startLite({ network, name: 'final', ip: '127.0.0.60', seeds: cluster.urls(), secret }), 60_000, 'starting the final reader');
    lites.push(reader);
    if (o.workload === 'cp') reader.map = cpMap(reader.grid);
    const keys = [...clients.uniqueKeys, ...(members?.uniqueKeys ?? []), ...clients.counterKeys(), ...clients.registerKeys()];
    const tFinal = performance.now();
    const { unread } = await finalReads(history, reader.map, keys, { timeoutMs: o.timeout, limitMs: o.finalLimit, pad });
    log(`final reads of ${keys.length} keys in ${Math.round(performance.now() - tFinal)} ms (${unread.length} unread)`);
    await history.close();

    // checks
    const ops = readHistory(history.lines);
    const isUnique = (op) => op.key.startsWith('u');
    const isCounter = (op) => op.key.startsWith('c');
    const isRegister = (op) => op.key.startsWith('r');
    const tCheck = performance.now();
    const ev = evictionDir === undefined ? undefined : readEvictions(evictionDir, 'nemesis');
    const evictions = ev?.byKey;
    const ackedWrites = checkAckedWrites(ops.filter(isUnique), { evictions });
    const counters = checkCounters(ops.filter(isCounter), { evictions });
    const regOps = ops.filter(isRegister);
    const linearizable = regOps.some((op) => op.f !== 'final') ? checkLinearizable(regOps, { budgetMs: o.linBudget, evictions }) : undefined;
    const checkMs = Math.round(performance.now() - tCheck);
    const sum = summarize({ linearizable, counters, ackedWrites });

    const ackedSets = ops.filter((op) => isUnique(op) && op.f === 'set' && op.status === 'ok').length;
    let incrLost = 0, incrTwice = 0, dupResults = 0, ackedIncr = 0;
    for (const c of counters.counters) {
      ackedIncr += c.acked;
      const finals = c.final.map((v) => (v === null ? 0 : v)).filter(Number.isFinite);
      if (finals.length === 0) continue;
      incrLost += Math.max(0, c.low - Math.min(...finals));
      incrTwice += Math.max(0, Math.max(...finals) - c.high);
      if (c.verdict === 'duplicate results') dupResults++;
    }
    const byType = {};
    for (const [f, c] of Object.entries(history.counts)) byType[f] = c;
    const workloadOps = Object.entries(history.counts).reduce((n, [f, c]) => (f === 'final' ? n : n + c.ok + c.fail + c.info), 0);
    // member clients' completions arrive a little out of order
    const gap = longestWriteGap(history.okWriteTimes.sort((x, y) => x - y), tStart, tEnd);
    if (ev !== undefined) {
      const count = (prefix) => [...ev.byKey.keys()].filter((k) => k.startsWith(prefix)).length;
      result.memory = {
        evictions: ev.total, evictionsOtherMaps: ev.otherMaps, malformedLines: ev.malformed, files: ev.files,
        evictedUniqueKeys: count('u'), evictedCounters: count('c'), evictedRegisters: count('r'),
        vanishedSets: ackedWrites.vanished.length,
        countersEvicted: counters.counters.filter((c) => c.verdict === 'evicted').length,
        lru: lruInversions(ops, ev.byKey, { isHot: (k) => k.startsWith('c') || k.startsWith('r'), isCold: (k) => k.startsWith('u') }),
      };
      log(`memory ${o.memory}: ${ev.total} evictions recorded by ${ev.files} threads (${ev.otherMaps} of other maps, ${ev.malformed} malformed lines); acknowledged sets read back absent after an eviction: ${ackedWrites.vanished.length}`);
    }
    // a memory run in which nothing was evicted judged nothing about eviction
    const pressure = ev === undefined || ev.total - ev.otherMaps > 0;
    if (!pressure) log('memory mode: no member evicted a key of the workload; the verdict is unknown (raise --pad or lower --memory)');
    Object.assign(result, {
      valid: pressure || sum.valid === false ? sum.valid : 'unknown',
      faults: events.map((e) => ({ kind: e.kind, description: e.description, target: e.target, targets: e.targets, leader: e.leader === true, atMs: Math.round(e.start - tStart), lengthMs: Math.round(e.end - e.start), recovered: e.recovered, recoveryMs: e.recoveryMs, error: e.error })),
      ops: byType,
      errors: history.errors,
      procsRetired: clients.procsRetired,
      memberClients: members === undefined ? undefined : { perMember: o.memberClients, ...members.counts, ofOps: workloadOps },
      ackedSets,
      lostSets: ackedWrites.lost.length,
      staleSets: ackedWrites.stale.length,
      corruptSets: ackedWrites.corrupt.length,
      unreadKeys: unread.length,
      ackedIncrements: ackedIncr,
      lostIncrements: incrLost,
      duplicatedIncrements: incrTwice,
      countersWithDuplicateResults: dupResults,
      linearizable: linearizable === undefined ? 'not run (no register ops)' : linearizable.valid,
      nonLinearizableKeys: linearizable === undefined ? 0 : linearizable.keys.filter((k) => k.valid === false).length,
      unknownKeys: linearizable === undefined ? 0 : linearizable.keys.filter((k) => k.valid === 'unknown').length,
      longestWriteUnavailabilityMs: gap.ms,
      longestWriteUnavailabilityAt: [gap.from - tStart, gap.to - tStart].map(Math.round),
      converged: conv.ok,
      convergenceMs,
      viewsAfterHealing: views,
      checkMs,
      checker: sum.json,
    });
    result.proxy = network.stats;
    log(`proxy: ${JSON.stringify(network.stats)}`);
    writeFileSync(join(dir, 'check.txt'), `${sum.text}\n`);
    log(`checks (${checkMs} ms): ${sum.text.split('\n').join(' | ')}`);
  } catch (err) {
    result.valid = false;
    result.error = String(err?.stack ?? err);
    log(`harness error: ${result.error}`);
  } finally {
    await history.close().catch(() => undefined);
    for (const l of lites) await withTimeout(l.grid.close(), 10_000, `closing lite ${l.name}`).catch((e) => log(String(e.message)));
    await cluster.stopAll();
    await network.close();
  }
  return result;
}

/** One schedule of the lock workload (lock-workload.mjs); returns its summary object. */
async function runLockOne(schedule, o, dir, say) {
  mkdirSync(dir, { recursive: true });
  const logFile = join(dir, 'harness.log');
  const log = (l) => {
    appendFileSync(logFile, `[${(performance.now() / 1000).toFixed(3)}] ${l}\n`);
    say(`  ${l}`);
  };
  const secret = randomBytes(24).toString('base64url');
  const network = new Network();
  const cluster = new Cluster({ network, dir, secret, members: o.members, log });
  const result = { seed: schedule.seed, index: schedule.index, workload: 'lock', unsafe: o.unsafeTtlLock, dir, planned: schedule.events.map(describeEvent) };
  const resource = await startResource({ fenced: !o.unsafeTtlLock });
  const clients = [];
  const sections = [];
  const errors = {};
  try {
    await cluster.start();
    const boot = await cluster.waitConverged(60_000);
    if (!boot.ok) throw new Error(`the cluster did not converge after start: ${boot.why}`);
    // started side by side (each is a lite member joining: a few seconds here)
    clients.push(...await Promise.all(Array.from({ length: o.lockClients }, (_, i) => startLockClient({
        id: `k${i + 1}`, seeds: cluster.urls(), secret, leaseMs: o.lease, ttlMs: 3000, resource: resource.url, unsafe: o.unsafeTtlLock, logFile: join(dir, `k${i + 1}.log`),
        onLine: (x) => {
          if (x.ev === 'section') sections.push(x);
          else if (x.ev === 'self-pause') result.selfPauses = (result.selfPauses ?? 0) + 1;
          else if (x.ev === 'error') errors[x.code ?? x.message] = (errors[x.code ?? x.message] ?? 0) + 1;
        },
      }))));
    log(`${o.lockClients} lock clients up (lease ${o.lease} ms${o.unsafeTtlLock ? ', UNSAFE TTL-only lock, unfenced resource' : ''})`);
    const random = prng((schedule.seed ^ Math.imul(schedule.index + 7, 0x9e3779b1)) >>> 0);
    const pauses = pauser(clients, { leaseMs: o.lease, everyMs: 1500, random, log });
    const tStart = performance.now();
    const events = await runSchedule(schedule, { cluster, network, clients: [], log });
    const rest = schedule.duration - (performance.now() - tStart);
    if (rest > 0) await sleep(rest);
    result.clientPauses = await pauses.stop();
    // stop: the resource's record is final from here (a client still waiting for the lock is killed)
    for (const c of clients) c.proc.kill('SIGTERM');
    await Promise.race([Promise.all(clients.map((c) => c.exited)), sleep(3000)]);
    result.faults = events.map((e) => ({ kind: e.kind, description: e.description, atMs: Math.round(e.start - tStart), lengthMs: Math.round(e.end - e.start), recovered: e.recovered }));
    const check = checkLock(resource.state, sections);
    Object.assign(result, check, { errors });
  } catch (err) {
    result.valid = false;
    result.error = String(err?.stack ?? err);
    log(`harness error: ${result.error}`);
  } finally {
    for (const c of clients) c.proc.kill('SIGKILL');
    await cluster.stopAll();
    await network.close();
    await resource.close();
  }
  return result;
}

function lockLine(r) {
  if (r.error !== undefined) return `schedule ${r.index} (seed ${r.seed}): HARNESS ERROR ${r.error.split('\n')[0]}`;
  return [
    `schedule ${r.index} (seed ${r.seed}, lock workload${r.unsafe ? ', UNSAFE TTL-only lock' : ''}): ${r.valid ? 'valid' : 'INVALID'}`,
    `  faults: ${r.faults.map((f) => `@${f.atMs}ms ${f.description} (${f.lengthMs} ms${f.recovered ? '' : ', NOT recovered'})`).join('; ') || 'none'}; client pauses past the lease: ${r.clientPauses} by SIGSTOP, ${r.selfPauses ?? 0} inside a section`,
    `  sections: ${r.sections} started, ${r.acceptedSections} accepted whole, ${r.refused} accesses refused by the fence; overlapping accepted sections: ${r.overlaps}; lost updates: ${r.lostUpdates} (final ${r.finalValue}, accepted writes ${r.acceptedWrites}); tokens granted twice: ${r.duplicateTokens}; accepted tokens out of order: ${r.tokenOrder}`,
    ...(r.examples.length > 0 ? [`  overlaps, e.g.: ${r.examples.join('; ')}`] : []),
    `  client errors: ${JSON.stringify(r.errors)}`,
  ].join('\n');
}

function line(r) {
  if (r.workload === 'lock') return lockLine(r);
  if (r.error !== undefined) return `schedule ${r.index} (seed ${r.seed}): HARNESS ERROR ${r.error.split('\n')[0]}`;
  const ops = Object.entries(r.ops).map(([f, c]) => `${f} ${c.ok}/${c.fail}/${c.info}`).join(', ');
  return [
    `schedule ${r.index} (seed ${r.seed}${r.scenario ? `, scenario ${r.scenario}` : ''}): ${r.valid === true ? 'valid' : r.valid === false ? 'INVALID' : 'unknown'}`,
    `  faults (${r.faults.length} of ${r.planned.length} planned ran): ${r.faults.map((f) => `@${f.atMs}ms ${f.description}${f.leader ? ' [leader]' : ''} (${f.lengthMs} ms, ${f.recovered ? `recovered in ${f.recoveryMs} ms` : `NOT recovered after ${f.recoveryMs} ms`})${f.error ? ' ERROR' : ''}`).join('; ') || 'none'}`,
    `  ops ok/fail/info: ${ops}; procs retired after info: ${r.procsRetired}`,
    ...(r.memberClients === undefined ? [] : [`  member clients (${r.memberClients.perMember} per data member): ${r.memberClients.invoked} of the ${r.memberClients.ofOps} ops (${r.memberClients.ok} ok, ${r.memberClients.fail} fail, ${r.memberClients.info} info, ${r.memberClients.lostWithProcess} of them open when their member's process ended); member clocks ahead of the harness's by ${r.memberClients.aheadMs} ms at most${r.memberClients.aheadMs > MEMBER_CLOCK_SLACK_MS ? ' (MORE THAN THE SLACK: real-time order is not reliable)' : ''}${r.memberClients.malformed > 0 ? `; ${r.memberClients.malformed} malformed lines` : ''}`]),
    `  acknowledged sets lost: ${r.lostSets} of ${r.ackedSets} (stale ${r.staleSets}, corrupt ${r.corruptSets}, unread keys ${r.unreadKeys})`,
    ...(r.memory === undefined ? [] : [`  memory: ${r.memory.evictions} evictions recorded (${r.memory.evictedUniqueKeys} unique keys, ${r.memory.evictedCounters} counters, ${r.memory.evictedRegisters} registers); acknowledged sets absent after an eviction: ${r.memory.vanishedSets}; counters evicted: ${r.memory.countersEvicted}`, `  LRU: ${r.memory.lru.hotEvictions} evictions of keys hit within 1 s, ${r.memory.lru.inversions} of them while colder keys were held${r.memory.lru.examples.length === 0 ? '' : ` (e.g. ${r.memory.lru.examples[0]})`}`]),
    `  increments lost: ${r.lostIncrements} of ${r.ackedIncrements} acknowledged; applied twice: ${r.duplicatedIncrements}; counters with duplicate results: ${r.countersWithDuplicateResults}`,
    `  linearizable: ${r.linearizable} (${r.nonLinearizableKeys} invalid keys, ${r.unknownKeys} unknown)`,
    `  longest write unavailability: ${r.longestWriteUnavailabilityMs} ms (at ${r.longestWriteUnavailabilityAt[0]}..${r.longestWriteUnavailabilityAt[1]} ms); convergence after healing: ${r.convergenceMs} ms${r.converged ? '' : ` (NOT converged; views, * = coordinator: ${r.viewsAfterHealing.join(' | ')})`}`,
  ].join('\n');
}

async function main() {
  let o;
  try {
    o = options(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`nemesis: ${err.message}\n${USAGE}\n`);
    return 2;
  }
  if (o.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const root = o.out ?? join(HERE, 'results', `${stamp}-seed${o.seed}`);
  mkdirSync(root, { recursive: true });
  const say = o.quiet ? () => undefined : (l) => process.stdout.write(`${l}\n`);
  say(`nemesis: seed ${o.seed}, ${o.schedules} schedule(s)${o.scenario ? `, scenario ${o.scenario}` : ''}; results in ${root}`);
  const results = [];
  for (let i = o.first; i < o.first + o.schedules; i++) {
    const schedule = o.scenario !== undefined
      ? scenarioSchedule(o.scenario, o.seed, i)
      : makeSchedule({ seed: o.seed, index: i, duration: o.duration, faults: o.faults, members: o.members, beyondTolerance: o.beyondTolerance });
    say(`schedule ${i}: ${schedule.events.map(describeEvent).join('; ')}`);
    const r = o.workload === 'lock' ? await runLockOne(schedule, o, join(root, `schedule-${i}`), say) : await runOne(schedule, o, join(root, `schedule-${i}`), say);
    results.push(r);
    if (r.valid === true && !o.keep) rmSync(join(r.dir, 'history.jsonl'), { force: true });
    say(line(r));
  }
  const sumOf = (k) => results.reduce((s, r) => s + (typeof r[k] === 'number' ? r[k] : 0), 0);
  const totals = {
    schedules: results.length,
    invalid: results.filter((r) => r.valid === false).length,
    unknown: results.filter((r) => r.valid === 'unknown').length,
    harnessErrors: results.filter((r) => r.error !== undefined).length,
    notConverged: results.filter((r) => r.converged === false).length,
    ackedSets: sumOf('ackedSets'),
    evictions: results.reduce((s, r) => s + (r.memory?.evictions ?? 0), 0),
    vanishedSets: results.reduce((s, r) => s + (r.memory?.vanishedSets ?? 0), 0),
    lruInversions: results.reduce((s, r) => s + (r.memory?.lru.inversions ?? 0), 0),
    lostSets: sumOf('lostSets'),
    memberClientOps: results.reduce((n, r) => n + (r.memberClients?.invoked ?? 0), 0),
    workloadOps: results.reduce((n, r) => n + (r.memberClients?.ofOps ?? 0), 0),
    ackedIncrements: sumOf('ackedIncrements'),
    lostIncrements: sumOf('lostIncrements'),
    duplicatedIncrements: sumOf('duplicatedIncrements'),
    nonLinearizableKeys: sumOf('nonLinearizableKeys'),
    longestWriteUnavailabilityMs: Math.max(0, ...results.map((r) => r.longestWriteUnavailabilityMs ?? 0)),
    longestConvergenceMs: Math.max(0, ...results.map((r) => r.convergenceMs ?? 0)),
    overlappingSections: sumOf('overlaps'),
    lostUpdates: sumOf('lostUpdates'),
    acceptedSections: sumOf('acceptedSections'),
  };
  const summary = { seed: o.seed, scenario: o.scenario, options: { ...o, out: root }, totals, schedules: results };
  writeFileSync(join(root, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  const text = [
    `nemesis run: seed ${o.seed}${o.scenario ? `, scenario ${o.scenario}` : ''}, ${results.length} schedule(s), ${o.members} members, concurrency ${o.concurrency}${o.memberClients > 0 ? ` + ${o.memberClients} member clients per data member` : ''}`,
    ...results.map(line),
    ...(o.workload === 'lock' ? [`lock totals: ${totals.acceptedSections} accepted sections, ${totals.overlappingSections} overlapping, ${totals.lostUpdates} lost updates`] : []),
    `totals: ${totals.invalid} invalid, ${totals.unknown} unknown, ${totals.harnessErrors} harness errors, ${totals.notConverged} not converged after healing;${o.memberClients > 0 ? ` ops from member clients ${totals.memberClientOps} of ${totals.workloadOps};` : ''} acknowledged sets lost ${totals.lostSets} of ${totals.ackedSets}${o.memory === undefined ? '' : ` (members at ${o.memory}: ${totals.evictions} evictions, ${totals.vanishedSets} sets absent after an eviction, ${totals.lruInversions} evictions of keys hit within 1 s while colder keys were held)`}; increments lost ${totals.lostIncrements} of ${totals.ackedIncrements}, applied twice ${totals.duplicatedIncrements}; non-linearizable keys ${totals.nonLinearizableKeys}; longest write unavailability ${totals.longestWriteUnavailabilityMs} ms; longest convergence ${totals.longestConvergenceMs} ms`,
  ].join('\n');
  writeFileSync(join(root, 'summary.txt'), `${text}\n`);
  process.stdout.write(`\n${text}\nsummary: ${join(root, 'summary.txt')}\n`);
  return totals.invalid > 0 || totals.harnessErrors > 0 ? 1 : totals.unknown > 0 ? 3 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`nemesis: unexpected error: ${err?.stack ?? err}\n`);
    process.exit(1);
  },
);
