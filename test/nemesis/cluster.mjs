// A cluster of shardgrid data members run as CLI child processes, each behind its own proxy.
//
// Member k (1-based) listens on 127.0.0.1:<realPort>, advertises 127.0.0.1:<proxyPort> (so every
// other member and every client reaches it through the proxy), and dials from 127.0.0.(10+k), so
// the proxies know which member a connection comes from (see proxy.mjs). Its stdout and stderr go
// to <dir>/m<k>.log, one block per incarnation. The harness itself asks for status on the real
// ports: a partition never hides a member from the harness.
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { fetchClusterStatus } from '../../dist/index.js';
import { freePort } from './proxy.mjs';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const MEMBER = fileURLToPath(new URL('./member.mjs', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** A sleep that does not keep the process alive (for give-up timers). */
const idle = (ms) => new Promise((r) => setTimeout(r, ms).unref());

/** Every child of every Cluster of this process: killed on exit, whatever the reason. */
const ALL_CHILDREN = new Set();
let exitHooked = false;
function hookExit() {
  if (exitHooked) return;
  exitHooked = true;
  process.on('exit', () => {
    for (const c of ALL_CHILDREN) {
      try {
        c.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => {
      process.stderr.write(`nemesis: ${sig}: killing ${ALL_CHILDREN.size} member process(es)\n`);
      process.exit(130);
    });
  }
}

/** Another child of the harness (a lock client) killed on exit like the members. */
export function adoptChild(child) {
  hookExit();
  ALL_CHILDREN.add(child);
  child.once('exit', () => ALL_CHILDREN.delete(child));
}

/**
 * What a Cluster with member clients calls (clients.mjs, MemberRecorder), k the member and i its
 * incarnation.
 * @typedef {object} MemberHooks
 * @property {(k: number, i: number) => object} config  member.mjs's --clients
 * @property {(k: number, i: number, text: string) => void} event  one `@h` line of its stdout
 * @property {(k: number, i: number) => void} up  it printed its listening line
 * @property {(k: number, i: number) => void} gone  it exited and every line it wrote was read
 */

export const memberName = (k) => `m${k}`;
export const memberIp = (k) => `127.0.0.${10 + k}`;

export class Cluster {
  /**
   * @param {{ network: import('./proxy.mjs').Network, dir: string, secret: string, members?: number,
   *           backups?: number, memory?: string, workers?: number, log?: (line: string) => void,
   *           env?: Record<string, string>, clients?: MemberHooks }} o  env: added to every member's
   *           environment. clients: members run as member.mjs (the same data member, with recording
   *           clients) instead of the CLI, and their events go to these hooks
   */
  constructor(o) {
    this.network = o.network;
    this.dir = o.dir;
    this.secret = o.secret;
    this.n = o.members ?? 3;
    this.backups = o.backups ?? 1;
    this.memory = o.memory ?? '128MB';
    this.workers = o.workers ?? 1;
    this.log = o.log ?? (() => undefined);
    this.env = o.env ?? {};
    this.clients = o.clients;
    /** @type {Map<number, { k: number, realPort: number, proxyPort: number, proxy: any, child?: import('node:child_process').ChildProcess, id?: string, state: 'down'|'up'|'paused', incarnation: number, logFile: string }>} */
    this.members = new Map();
    mkdirSync(this.dir, { recursive: true });
    hookExit();
  }

  /** Allocates ports, starts the proxies, then the members one by one (each joining the earlier ones). */
  async start() {
    for (let k = 1; k <= this.n; k++) {
      const realPort = await freePort();
      const name = memberName(k);
      this.network.addNode(name, memberIp(k));
      const proxy = await this.network.proxy(name, 0, realPort);
      this.members.set(k, { k, realPort, proxyPort: proxy.listenPort, proxy, state: 'down', incarnation: 0, logFile: join(this.dir, `${name}.log`) });
    }
    for (let k = 1; k <= this.n; k++) await this.launch(k, k === 1 ? [] : this.seedsFor(k, (j) => j < k));
  }

  /** The url other nodes dial to reach member k: its proxy. */
  url(k) {
    return `ws://127.0.0.1:${this.members.get(k).proxyPort}`;
  }

  realUrl(k) {
    return `ws://127.0.0.1:${this.members.get(k).realPort}`;
  }

  /** Proxy urls of the other members (those `pick` selects): a (re)starting member joins through any. */
  seedsFor(k, pick = () => true) {
    return [...this.members.keys()].filter((j) => j !== k && pick(j)).map((j) => this.url(j));
  }

  /** The proxy urls of every member: seeds for clients. */
  urls() {
    return [...this.members.keys()].map((k) => this.url(k));
  }

  up() {
    return [...this.members.values()].filter((m) => m.state !== 'down').map((m) => m.k);
  }

  /**
   * Starts member k (a new process, a new identity, the same ports) and waits for its listening
   * line. The member's real port was free when it was picked, but another process on the machine
   * can take it before the member binds it (`--seed 19000` schedule 17 beside other test runs):
   * then the member is started again on a new port, and its proxy retargeted (the url the others
   * dial, the proxy's, does not change).
   */
  async launch(k, seeds = this.seedsFor(k), timeoutMs = 45_000) {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.launchOnce(k, seeds, timeoutMs);
      } catch (err) {
        if (!err?.addressInUse || attempt >= 3) throw err;
        const m = this.members.get(k);
        await m.exited;
        m.realPort = await freePort();
        m.proxy.targetPort = m.realPort;
        this.log(`member ${k}: its port was taken by another process; starting it again on ${m.realPort}`);
      }
    }
  }

  async launchOnce(k, seeds, timeoutMs) {
    const m = this.members.get(k);
    if (m.state !== 'down') throw new Error(`member ${k} is already running`);
    m.incarnation++;
    const args = [
      ...(this.clients === undefined ? [CLI, 'start'] : [MEMBER]),
      '--host', '127.0.0.1', '--port', String(m.realPort),
      '--advertise', `127.0.0.1:${m.proxyPort}`,
      '--source-address', memberIp(k),
      '--backups', String(this.backups), '--memory', this.memory, '--workers', String(this.workers),
    ];
    if (seeds.length > 0) args.push('--seeds', seeds.join(','));
    if (this.clients !== undefined) args.push('--clients', JSON.stringify(this.clients.config(k, m.incarnation)));
    const out = createWriteStream(m.logFile, { flags: 'a' });
    out.write(`\n=== ${new Date().toISOString()} incarnation ${m.incarnation}: node ${args.slice(1).join(' ')}\n`);
    const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...this.env, SHARDGRID_SECRET: this.secret, SHARDGRID_TRACE: '1' }, stdio: [this.clients === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    ALL_CHILDREN.add(child);
    child.stdin?.on('error', () => undefined); // a command written as it dies
    m.child = child;
    m.state = 'up';
    m.id = undefined;
    m.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        ALL_CHILDREN.delete(child);
        out.write(`=== ${new Date().toISOString()} exited code ${code} signal ${signal}\n`);
        if (m.child === child) m.state = 'down';
        resolve({ code, signal });
      }),
    );
    child.stderr.pipe(out, { end: false });
    let errText = '';
    child.stderr.on('data', (d) => {
      if (errText.length < 4096) errText += d.toString();
    });
    // 'exit' can come before the last of stderr is read
    const stderrDone = new Promise((resolve) => child.stderr.once('close', resolve));
    const lines = createInterface({ input: child.stdout, crlfDelay: Infinity });
    const incarnation = m.incarnation;
    // every line of this process read (readline's close comes after its last line) and the process
    // gone: then its log ends, and its clients' ops still open are recorded
    const linesDone = new Promise((resolve) => lines.once('close', resolve));
    void Promise.all([m.exited, linesDone, stderrDone]).then(() => {
      out.end();
      this.clients?.gone(k, incarnation);
    });
    const listening = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`member ${k} did not print its listening line within ${timeoutMs} ms (see ${m.logFile})`)), timeoutMs);
      lines.on('line', (line) => {
        if (line.startsWith('@h ')) {
          this.clients?.event(k, incarnation, line.slice(3));
          return;
        }
        out.write(`${line}\n`);
        if (m.id !== undefined) return;
        const hit = /shardgrid member (\S+) listening on/.exec(line);
        if (hit) {
          m.id = hit[1];
          clearTimeout(timer);
          resolve();
        }
      });
      m.exited.then(async ({ code, signal }) => {
        clearTimeout(timer);
        await Promise.race([stderrDone, new Promise((r) => setTimeout(r, 1000))]);
        const err = new Error(`member ${k} exited (code ${code}, signal ${signal}) before listening (see ${m.logFile})`);
        if (/EADDRINUSE/.test(errText)) err.addressInUse = true;
        reject(err);
      });
    });
    try {
      await listening;
    } catch (err) {
      if (m.child === child && m.state !== 'down') child.kill('SIGKILL');
      throw err;
    }
    this.log(`member ${k} up: ${m.id} (incarnation ${m.incarnation}, pid ${child.pid})`);
    this.clients?.up(k, incarnation);
    return m.id;
  }

  /** Writes a command line to member k's stdin (member.mjs); false when it is not running. */
  send(k, line) {
    const m = this.members.get(k);
    if (m.state === 'down' || m.child?.stdin == null) return false;
    m.child.stdin.write(`${line}\n`);
    return true;
  }

  /** SIGSTOP member k for ms, then SIGCONT. */
  async pause(k, ms) {
    const m = this.members.get(k);
    if (m.state !== 'up') throw new Error(`member ${k} is ${m.state}, cannot pause`);
    m.child.kill('SIGSTOP');
    m.state = 'paused';
    try {
      await sleep(ms);
    } finally {
      this.resume(k);
    }
  }

  resume(k) {
    const m = this.members.get(k);
    if (m.state === 'paused') {
      m.child.kill('SIGCONT');
      m.state = 'up';
    }
  }

  /** kill -9 member k and wait for the process to be gone. */
  async kill9(k) {
    const m = this.members.get(k);
    if (m.state === 'down') return;
    m.child.kill('SIGKILL');
    await m.exited;
  }

  /** A new process for member k (new identity, same ports), joining through the other members. */
  async restart(k) {
    if (this.members.get(k).state !== 'down') await this.kill9(k);
    return this.launch(k);
  }

  /** Graceful leave: SIGTERM, wait for the exit (kill -9 after timeoutMs). */
  async leave(k, timeoutMs = 30_000) {
    const m = this.members.get(k);
    if (m.state === 'down') return;
    this.resume(k);
    m.child.kill('SIGTERM');
    const r = await Promise.race([m.exited, idle(timeoutMs).then(() => undefined)]);
    if (r === undefined) {
      this.log(`member ${k} did not leave within ${timeoutMs} ms: kill -9`);
      await this.kill9(k);
      return { code: null, signal: 'SIGKILL', timedOut: true };
    }
    return r;
  }

  /**
   * The status of every running member, asked on its real port (members that do not answer get
   * { k, error }): [{ k, status?, error? }].
   */
  async statusAll(timeoutMs = 2000) {
    return Promise.all(
      [...this.members.values()].map(async (m) => {
        if (m.state !== 'up') return { k: m.k, error: m.state };
        try {
          return { k: m.k, status: await fetchClusterStatus(this.realUrl(m.k), this.secret, timeoutMs) };
        } catch (err) {
          return { k: m.k, error: err?.code ?? String(err?.message ?? err) };
        }
      }),
    );
  }

  /** The first answer from a running member, or undefined when none answers. */
  async status(timeoutMs = 2000) {
    for (const r of await this.statusAll(timeoutMs)) if (r.status !== undefined) return r.status;
    return undefined;
  }

  /** Member number of a url or member id seen in a status, or undefined. */
  memberOf(urlOrId) {
    for (const m of this.members.values()) if (m.id === urlOrId || this.url(m.k) === urlOrId || this.realUrl(m.k) === urlOrId) return m.k;
    return undefined;
  }

  /**
   * The member that status calls the coordinator (today the oldest data member; with Raft, the
   * leader), by majority of the answering members' views; undefined when none answers.
   */
  async leader(timeoutMs = 2000) {
    const votes = new Map();
    for (const r of await this.statusAll(timeoutMs)) {
      const c = r.status?.members.find((x) => x.coordinator && !x.lite);
      const k = c === undefined ? undefined : this.memberOf(c.id) ?? this.memberOf(c.url);
      if (k !== undefined) votes.set(k, (votes.get(k) ?? 0) + 1);
    }
    let best;
    for (const [k, v] of votes) if (best === undefined || v > votes.get(best)) best = k;
    return best;
  }

  /**
   * Converged: every member runs, answers status, lists exactly the running data members, all
   * alive, and all report the same table version with nothing migrating.
   */
  async converged(timeoutMs = 2000) {
    const all = await this.statusAll(timeoutMs);
    // by advertised url: a member removed from the cluster (say, paused past its lease) rejoins under a new id at the same url
    const urls = new Set([...this.members.keys()].map((k) => this.url(k)));
    let version;
    for (const r of all) {
      if (r.status === undefined) return { ok: false, why: `m${r.k}: ${r.error}` };
      const s = r.status;
      const data = s.members.filter((x) => !x.lite);
      if (data.length !== this.n || data.some((x) => !urls.has(x.url) || x.status !== 'alive')) return { ok: false, why: `m${r.k} sees ${data.map((x) => `${x.id}:${x.status}`).join(',')}` };
      if (s.migrating !== 0) return { ok: false, why: `m${r.k}: ${s.migrating} migrating` };
      if (version === undefined) version = s.tableVersion;
      else if (version !== s.tableVersion) return { ok: false, why: `table versions differ (${version} vs ${s.tableVersion} at m${r.k})` };
    }
    return { ok: true, tableVersion: version };
  }

  /** Each member's view, e.g. ['m1 v37: m1', 'm2 v52: m2,m3', 'm3 v52: m2,m3'] (split brain shows here). */
  async views() {
    return (await this.statusAll()).map((r) => {
      if (r.status === undefined) return `m${r.k}: ${r.error}`;
      const data = r.status.members.filter((x) => !x.lite).map((x) => `${this.memberOf(x.id) !== undefined ? `m${this.memberOf(x.id)}` : x.id}${x.status === 'alive' ? '' : `(${x.status})`}${x.coordinator ? '*' : ''}`);
      return `m${r.k} v${r.status.tableVersion}: ${data.join(',')}`;
    });
  }

  /** Polls until converged; returns { ok, ms, tableVersion?, why? }. */
  async waitConverged(limitMs = 60_000) {
    const t0 = performance.now();
    let last;
    while (performance.now() - t0 < limitMs) {
      last = await this.converged();
      if (last.ok) return { ...last, ms: Math.round(performance.now() - t0) };
      await sleep(200);
    }
    return { ...last, ok: false, ms: Math.round(performance.now() - t0) };
  }

  /** Kills every member process (kill -9: nothing to keep) and waits for them; closes the proxies. */
  async stopAll() {
    const waits = [];
    for (const m of this.members.values()) {
      if (m.state === 'down' || m.child === undefined) continue;
      try {
        m.child.kill('SIGKILL');
      } catch {
        /* gone */
      }
      waits.push(m.exited);
    }
    await Promise.race([Promise.all(waits), idle(10_000)]);
  }
}
