#!/usr/bin/env node
/**
 * The `shardgrid` command: `start` runs a cluster member until SIGINT/SIGTERM/SIGHUP, `status` prints
 * the cluster status from any member, `secret` prints a new random cluster secret. Arguments are
 * parsed by commander.
 *
 * The cluster secret comes from `--secret-file <path>` or SHARDGRID_SECRET, never from argv (any
 * user of the machine can read a process's arguments): `--secret <value>` is refused.
 *
 * Exit codes: 0 done (for start: left the cluster, or stopped by a signal before it had joined);
 * 1 the grid or the cluster failed (createGrid refused its options, a member could not be reached
 * or refused the secret), or the output of secret / status could not be written; 2 usage (unknown
 * command or flag, bad value, missing, unreadable or short secret, a secret in argv, TLS files
 * missing, unreadable or unusable, a wss:// url without them); 130 a second signal while the
 * member was joining or leaving.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import { Command, CommanderError, InvalidArgumentError as BadArgument } from 'commander';
import { MIN_SECRET_BYTES, MODULE_NAME, OPTION_RANGES, MEMBER_URL_FORM, dialHostOf, isHostPort, isMemberUrl, isStrongEnoughSecret, moduleHref, parseBytes, tlsMaterialProblem } from '../config.js';
import { GridError, createGrid, fetchClusterStatus, type Grid, type GridOptions } from '../index.js';
import { formatBytes, renderStatus } from './format.js';

const SECRET_ENV = 'SHARDGRID_SECRET';
const RESP_PASSWORD_ENV = 'SHARDGRID_RESP_PASSWORD';
const STATUS_TIMEOUT_MS = 5000;
const EXIT_USAGE = 2;
const EXIT_SECOND_SIGNAL = 130;

interface StartOptions {
  host: string;
  /** undefined: the default of createGrid (7400, or 0 for a lite member) */
  port: number | undefined;
  advertise?: string;
  sourceAddress?: string;
  seeds?: string[];
  secretFile?: string;
  computeModule?: Record<string, string>;
  workers?: number;
  memory?: string;
  backups: number;
  lite?: boolean;
  partitions?: number;
  tlsKey?: string;
  tlsCert?: string;
  tlsCa?: string;
  respPort?: number;
  respHost?: string;
  respPasswordFile?: string;
  metricsPort?: number;
  metricsHost?: string;
}

interface StatusOptions {
  secretFile?: string;
  json?: boolean;
  timeout: number;
  tlsKey?: string;
  tlsCert?: string;
  tlsCa?: string;
}

/** The three PEM files of --tls-key / --tls-cert / --tls-ca. */
interface TlsFlags {
  tlsKey?: string;
  tlsCert?: string;
  tlsCa?: string;
}

/** A usage mistake found outside commander's parsing (the secret): exit 2 like commander's own errors. */
class UsageError extends Error {}

/** A member as the Grid reports it in member-joined / member-left. */
interface MemberEvent {
  id: string;
  url: string;
  lite: boolean;
}

/**
 * The parts of a clustered Grid this command uses: `grid.cluster` and the membership events.
 * Read through this view so the command does not depend on how Grid declares them.
 */
interface ClusteredGrid {
  cluster?: { memberId: string; url: string; boundUrl: string };
  on?(event: 'member-joined', fn: (m: MemberEvent) => void): unknown;
  on?(event: 'member-left', fn: (m: MemberEvent, reason: 'dead' | 'left') => void): unknown;
  on?(event: 'rejoined', fn: (newId: string) => void): unknown;
  on?(event: 'partition-lost', fn: (partitions: number[]) => void): unknown;
}

const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

// ── argument parsers: a thrown BadArgument becomes commander's "option '--x' argument 'v' is invalid" ──

function integer(min: number, max?: number): (value: string) => number {
  return (value) => {
    const n = /^[+-]?\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || (max !== undefined && n > max)) {
      throw new BadArgument(max === undefined ? `expected an integer >= ${min}` : `expected an integer from ${min} to ${max}`);
    }
    return n;
  };
}

function wsUrl(value: string): string {
  if (!isMemberUrl(value)) throw new BadArgument(`expected ${MEMBER_URL_FORM}`);
  return value;
}

function hostPort(value: string): string {
  if (!isHostPort(value)) throw new BadArgument(`expected host:port such as 10.0.0.5:7400`);
  return value;
}

function ipAddress(value: string): string {
  if (isIP(value) === 0) throw new BadArgument(`expected an IPv4 or IPv6 address such as 127.0.0.2`);
  return value;
}

/** `--seeds a,b` and `--seeds a --seeds b` both add to the list. */
function seedList(value: string, previous: string[] | undefined): string[] {
  const urls = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const u of urls) if (!isMemberUrl(u)) throw new BadArgument(`'${u}' is not ${MEMBER_URL_FORM}`);
  return [...(previous ?? []), ...urls];
}

/**
 * Checked with the library's own parser and range (OPTION_RANGES), passed on as written: a size
 * out of range used to reach createGrid and exit 1 naming options.memory, not --memory.
 */
function memorySize(value: string): string {
  const [min, max] = OPTION_RANGES.memory;
  const range = `from ${formatBytes(min)} to ${formatBytes(max)}`;
  let n: number;
  try {
    n = parseBytes(value, '--memory');
  } catch {
    throw new BadArgument(`expected a byte count or a size ${range}, such as 256MB, 512KB or 1.5GB`);
  }
  if (n < min || n > max) throw new BadArgument(`expected a size ${range} (${value} is ${n} bytes)`);
  return value;
}

/** `--compute-module name=path`, repeatable: name → absolute path (or file: URL) of an existing file. */
function computeModule(value: string, previous: Record<string, string> | undefined): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0 || eq === value.length - 1) throw new BadArgument('expected name=path such as procs=./procs.mjs');
  const name = value.slice(0, eq);
  const where = value.slice(eq + 1);
  if (!MODULE_NAME.test(name)) throw new BadArgument(`'${name}' is not a module name: 1 to 64 letters, digits, _ . or -, not starting with . or -`);
  const prev = previous ?? {};
  if (Object.hasOwn(prev, name)) throw new BadArgument(`module '${name}' is given twice`);
  // a file: URL as written; anything else is a path, relative to the working directory
  const path = /^file:/i.test(where) ? where : resolvePath(where);
  if (moduleHref(path) === undefined) throw new BadArgument(`'${where}' is not an existing ES module file (a path, or a file: URL)`);
  return { ...prev, [name]: path };
}

/** Largest --secret-file / --resp-password-file read, and largest TLS file (a CA bundle can be a few hundred KB). */
const MAX_SECRET_FILE_BYTES = 64 * 1024;
const MAX_TLS_FILE_BYTES = 4 * 1024 * 1024;

/**
 * The contents of a file the command reads, at most `max` bytes: more throws (a file that never
 * ends, /dev/zero by mistake, was read until the process aborted with std::bad_alloc). Read in
 * chunks, so a pipe (`--secret-file <(pass show cluster)`) works as a regular file does.
 */
function readBounded(file: string, max: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    const chunk = Buffer.allocUnsafe(64 * 1024);
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) return Buffer.concat(chunks, total);
      total += n;
      if (total > max) throw new Error(`more than ${max} bytes: not the file meant`);
      chunks.push(Buffer.from(chunk.subarray(0, n)));
    }
  } finally {
    closeSync(fd);
  }
}

const SECRET_FILE_HELP = `file holding the shared cluster secret, at least ${MIN_SECRET_BYTES} bytes (trailing newlines ignored; default: the ${SECRET_ENV} environment variable)`;
const NEW_SECRET_HINT = '`shardgrid secret` prints a random one';

/** A warning (not a refusal) when other users may read or write `file`, a secret named `from` (`--secret-file x`). */
function warnIfShared(file: string, from: string): void {
  const mode = statSync(file).mode;
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    complain(`warning: ${from} can be read or written by other users (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); chmod 600 it`);
  }
}

/**
 * The cluster secret: the contents of --secret-file (read once, trailing CR/LF removed) or else
 * SHARDGRID_SECRET. Missing, unreadable or under MIN_SECRET_BYTES: a UsageError (exit 2). A file
 * other users may read or write gets a warning, not a refusal (Kubernetes and Docker mount
 * secrets 0644 / 0444 by default, where no other user shares the mount).
 */
function clusterSecret(file: string | undefined, command: string): string {
  let secret: string | undefined;
  let from: string;
  if (file !== undefined) {
    from = `--secret-file ${file}`;
    try {
      warnIfShared(file, from);
      secret = readBounded(file, MAX_SECRET_FILE_BYTES).toString('utf8').replace(/[\r\n]+$/, '');
    } catch (err) {
      throw new UsageError(`cannot read ${from}: ${(err as Error).message}`);
    }
  } else {
    from = SECRET_ENV;
    secret = process.env[SECRET_ENV];
    if (secret === undefined || secret === '') {
      throw new UsageError(`no cluster secret: pass --secret-file <path> or set ${SECRET_ENV} (see shardgrid ${command} --help; ${NEW_SECRET_HINT})`);
    }
  }
  if (!isStrongEnoughSecret(secret)) {
    throw new UsageError(
      `the cluster secret from ${from} is ${Buffer.byteLength(secret, 'utf8')} bytes; at least ${MIN_SECRET_BYTES} are needed (options.cluster.secret): ${NEW_SECRET_HINT}`,
    );
  }
  return secret;
}

/**
 * Refuses `--secret <value>` / `--secret=<value>` before anything else runs (the value is never
 * printed): a secret in argv is visible to every user of the machine in ps and /proc/<pid>/cmdline.
 */
function refuseSecretInArgv(args: readonly string[]): void {
  for (const a of args) {
    if (a === '--') return;
    if (a === '--secret' || a.startsWith('--secret=')) {
      throw new UsageError(
        `--secret is not accepted: a secret on the command line can be read by every user of this machine (ps, /proc/<pid>/cmdline). ` +
          `Put it in a file only you can read and pass --secret-file <path>, or set ${SECRET_ENV}; ${NEW_SECRET_HINT}`,
      );
    }
  }
}

/**
 * cluster.tls from --tls-key, --tls-cert and --tls-ca (PEM files, read once): all three or none;
 * a missing one, an unreadable file or unusable contents (tlsMaterialProblem: not PEM, a key of
 * another certificate, an expired certificate, one the CA did not sign, one that does not name
 * `dialHost`, the host other members dial) is a UsageError (exit 2) naming the flag and file.
 * Undefined without the flags.
 */
function clusterTls(o: TlsFlags, dialHost?: string): { key: Buffer; cert: Buffer; ca: Buffer } | undefined {
  const given = [o.tlsKey, o.tlsCert, o.tlsCa].filter((x) => x !== undefined).length;
  if (given === 0) return undefined;
  if (given !== 3) throw new UsageError('--tls-key, --tls-cert and --tls-ca go together (mutual TLS needs this member\'s key and certificate and the cluster CA)');
  const read = (flag: string, file: string): Buffer => {
    try {
      return readBounded(file, MAX_TLS_FILE_BYTES);
    } catch (err) {
      throw new UsageError(`cannot read ${flag} ${file}: ${(err as Error).message}`);
    }
  };
  const tls = { key: read('--tls-key', o.tlsKey!), cert: read('--tls-cert', o.tlsCert!), ca: read('--tls-ca', o.tlsCa!) };
  const file = { key: o.tlsKey!, cert: o.tlsCert!, ca: o.tlsCa! };
  const problem = tlsMaterialProblem(tls, (part) => `--tls-${part} ${file[part]}`, dialHost);
  if (problem !== undefined) throw new UsageError(`--tls-${problem.part} ${file[problem.part]} ${problem.message}`);
  return tls;
}

/**
 * The RESP password: the contents of --resp-password-file (trailing CR/LF removed) or else
 * SHARDGRID_RESP_PASSWORD; undefined when neither is given (protected mode then serves loopback
 * clients only). Never from argv, like the cluster secret.
 */
function respPassword(file: string | undefined): string | undefined {
  if (file === undefined) {
    const v = process.env[RESP_PASSWORD_ENV];
    return v === undefined || v === '' ? undefined : v;
  }
  let v: string;
  try {
    // warned as --secret-file is: it was read whatever its mode, without a word
    warnIfShared(file, `--resp-password-file ${file}`);
    v = readBounded(file, MAX_SECRET_FILE_BYTES).toString('utf8').replace(/[\r\n]+$/, '');
  } catch (err) {
    throw new UsageError(`cannot read --resp-password-file ${file}: ${(err as Error).message}`);
  }
  if (v === '') throw new UsageError(`--resp-password-file ${file} is empty`);
  return v;
}

const TLS_HELP = {
  key: "PEM file of this member's private key for mutual TLS (with --tls-cert and --tls-ca; members then listen on wss://)",
  cert: "PEM file of this member's certificate, signed by the cluster CA",
  ca: 'PEM file of the cluster CA that signs every member certificate',
};

/** A wss:// url without --tls-*: such a member asks for a certificate of its CA and refuses anyone without one. */
const TLS_MEMBER_HINT = 'is a member with mutual TLS: pass --tls-key, --tls-cert and --tls-ca (this member\'s key and certificate and the cluster CA)';

function describeError(err: unknown): string {
  if (err instanceof GridError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

/**
 * The first error of stdout (a closed pipe: `shardgrid start | head -1` once head is done; a full
 * disk; a terminal gone). A stream error nobody listens to is thrown: it used to kill a member
 * on its next line (a member joining), without leaving the cluster. Later lines are dropped and
 * the member goes on; a command whose output is its product (secret, status) exits 1 instead.
 */
let stdoutError: Error | undefined;
process.stdout.on('error', (err: Error) => void (stdoutError ??= err));
process.stderr.on('error', () => undefined); // nowhere left to report it
const say = (line: string): void => {
  if (stdoutError === undefined) process.stdout.write(`${line}\n`);
};
const complain = (line: string): void => void process.stderr.write(`shardgrid: ${line}\n`);

/**
 * The library's process warnings (a peer that refused our secret, a member that failed
 * authentication) in the command's own form, `shardgrid: warning: ...`: Node's printer wrapped
 * them in "(node:<pid>) [SHARDGRID_CLUSTER] Warning:" and a hint about `node --trace-warnings`,
 * meant for a program's developer. Silent under --no-warnings / NODE_NO_WARNINGS=1, as Node's is.
 */
process.removeAllListeners('warning');
if (!process.execArgv.includes('--no-warnings') && process.env.NODE_NO_WARNINGS !== '1') {
  process.on('warning', (w: Error) => complain(`warning: ${w.message.replace(/^shardgrid /, '')}`));
}

/** 0 once everything said so far reached stdout, else 1 after saying why on stderr. */
function outputWritten(): Promise<number> {
  return new Promise((resolve) => {
    const done = (err?: Error | null): void => {
      const e = stdoutError ?? err ?? undefined;
      if (e === undefined) return resolve(0);
      complain(`cannot write the output: ${e.message}`);
      resolve(1);
    };
    if (stdoutError !== undefined) done();
    else process.stdout.write('', done);
  });
}

// ── commands ────────────────────────────────────────────────────────────────────────────────────

/**
 * Resolves with the first SIGINT, SIGTERM or SIGHUP (a closed terminal: it used to kill the member
 * without leaving the cluster); a second one exits at once.
 */
function firstSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let seen = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (seen) {
        complain(`${signal} again: exiting without leaving the cluster`);
        process.exit(EXIT_SECOND_SIGNAL);
      }
      seen = true;
      resolve(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('SIGHUP', onSignal);
  });
}

async function start(o: StartOptions): Promise<number> {
  const secret = clusterSecret(o.secretFile, 'start');
  const tls = clusterTls(o, dialHostOf(o.host, o.advertise));
  if (tls === undefined) for (const u of o.seeds ?? []) if (u.startsWith('wss://')) throw new UsageError(`--seeds ${u} ${TLS_MEMBER_HINT}`);
  const lite = o.lite === true;
  if (lite && (o.seeds ?? []).length === 0) throw new UsageError('--lite needs --seeds: a lite member owns no partitions and joins a cluster of data members');
  const options: GridOptions = { cluster: { host: o.host, port: o.port, advertise: o.advertise, sourceAddress: o.sourceAddress, seeds: o.seeds ?? [], secret, backups: o.backups, lite } };
  if (tls !== undefined) options.cluster!.tls = tls;
  if (o.computeModule !== undefined) options.compute = { modules: o.computeModule };
  if (o.workers !== undefined) options.workers = o.workers;
  if (o.memory !== undefined) options.memory = o.memory;
  if (o.partitions !== undefined) options.partitions = o.partitions;
  if (o.respPort !== undefined) {
    options.resp = { port: o.respPort, host: o.respHost ?? '127.0.0.1' };
    const password = respPassword(o.respPasswordFile);
    if (password !== undefined) options.resp.password = password;
  } else if (o.respHost !== undefined || o.respPasswordFile !== undefined) {
    throw new UsageError('--resp-host and --resp-password-file need --resp-port');
  }
  if (o.metricsPort !== undefined) options.metrics = { port: o.metricsPort, host: o.metricsHost ?? '127.0.0.1' };
  else if (o.metricsHost !== undefined) throw new UsageError('--metrics-host needs --metrics-port');

  // listen before createGrid: a signal during start-up stops it where it is (a join can take 35 s
  // when the cluster cannot admit this member: the signal used to wait for that, in silence)
  const signalled = firstSignal();
  const starting = new AbortController();
  let up = false;
  void signalled.then((signal) => {
    if (up) return;
    say(`${signal}: stopping before this member has joined the cluster`);
    starting.abort();
  });
  options.signal = starting.signal;
  let grid: Grid;
  try {
    grid = await createGrid(options);
    up = true;
  } catch (err) {
    if (starting.signal.aborted) {
      say('stopped');
      return 0;
    }
    complain(describeError(err));
    return 1;
  }
  const view = grid as unknown as ClusteredGrid;
  // read when said: a member the cluster removed rejoins under a new id (it printed the first one
  // to the end, "member m-old stopped" for a member that had been m-new for minutes)
  const id = (): string => view.cluster?.memberId ?? '(unknown)';
  const kind = (m: MemberEvent): string => (m.lite ? 'lite' : 'data');
  view.on?.('member-joined', (m) => say(`member-joined ${m.id} ${m.url} (${kind(m)})`));
  view.on?.('member-left', (m, reason) => say(`member-left ${m.id} ${m.url} (${kind(m)}, ${reason})`));
  view.on?.('rejoined', (newId) => say(`rejoined as ${newId} (this member was removed from the cluster; it dropped its data and joined again under a new id)`));
  view.on?.('partition-lost', (parts) => say(`partition-lost ${parts.length} partition(s): ${parts.slice(0, 20).join(',')}${parts.length > 20 ? ',…' : ''}`));
  const stats = grid.stats();
  // with --advertise the url others dial is not where this member listens: say both (the line
  // gave the advertised url as the one listened on, a port nothing listened on when they differ)
  const url = view.cluster?.url ?? `ws://${o.host}:${o.port ?? '?'}`;
  const bound = view.cluster?.boundUrl;
  say(
    `shardgrid member ${id()} listening on ${bound !== undefined && bound !== url ? `${bound} advertised as ${url}` : url} ` +
      // a lite member owns no partitions: it said "(workers 0, memory 256MB, backups 1, lite)", a
      // budget and copies it has no use for
      (lite ? '(lite: owns no partitions, routes every operation to the data members)' : `(workers ${stats.workers.length}, memory ${formatBytes(stats.bytesLimit)}, backups ${o.backups})`),
  );
  if (grid.resp !== undefined) say(`resp listening on ${grid.resp.host}:${grid.resp.port}`);
  const metricsAt = grid.metrics.address;
  if (o.metricsPort !== undefined && metricsAt !== undefined) say(`metrics on http://${metricsAt.host}:${metricsAt.port}/metrics`);

  const signal = await signalled;
  say(`${signal}: member ${id()} is leaving the cluster`);
  try {
    await grid.close();
  } catch (err) {
    complain(`leaving the cluster failed: ${describeError(err)}`);
    return 1;
  }
  say(`member ${id()} stopped`);
  return 0;
}

async function status(url: string, o: StatusOptions): Promise<number> {
  const secret = clusterSecret(o.secretFile, 'status');
  const tls = clusterTls(o);
  if (tls === undefined && url.startsWith('wss://')) throw new UsageError(`${url} ${TLS_MEMBER_HINT}`);
  try {
    const s = await fetchClusterStatus(url, secret, o.timeout, tls);
    say((o.json === true ? JSON.stringify(s, null, 2) : renderStatus(s)).replace(/\n$/, ''));
    return await outputWritten();
  } catch (err) {
    complain(`cannot get the cluster status from ${url}: ${describeError(err)}`);
    return 1;
  }
}

// ── program ─────────────────────────────────────────────────────────────────────────────────────

function program(setExit: (code: number) => void): Command {
  const p = new Command('shardgrid')
    .description('Start shardgrid cluster members, show the status of a cluster, make a cluster secret.')
    .version(version, '-V, --version', 'print the shardgrid version')
    .helpOption('-h, --help', 'show help')
    .helpCommand(false)
    // settings below are inherited by the subcommands
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .configureOutput({ outputError: (message, write) => write(message.replace(/^error: /, 'shardgrid: ')) });

  p.command('start')
    .description('run a cluster member until SIGINT, SIGTERM or SIGHUP, then leave the cluster gracefully')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port (default: 7400, 0 with --lite); 0 picks a free one, printed when started', integer(0, 65535))
    .option('--advertise <host:port>', 'address other members dial to reach this one, when it differs from --host and --port (containers, NAT, proxies); a seed dials it back before this member joins', hostPort)
    .option('--source-address <ip>', 'local IP address outbound connections to other members come from (default: chosen by the OS)', ipAddress)
    .option('--seeds <urls>', 'comma-separated ws:// urls of members to join through (default: none, start a new cluster)', seedList)
    .option('--secret-file <path>', SECRET_FILE_HELP)
    .option(
      '--compute-module <name=path>',
      'register an ES module of entry processors / aggregators under a name that calls use (repeatable; the same names on every member)',
      computeModule,
    )
    .option('--workers <n>', 'virtual nodes (worker threads) of this member (default: available parallelism)', integer(...OPTION_RANGES.workers))
    .option('--memory <size>', "memory budget of this member's shard stores, e.g. 256MB or 1GB (default: 256MB)", memorySize)
    .option('--backups <n>', 'backup copies of each partition, on other members', integer(...OPTION_RANGES.backups), 1)
    .option('--lite', 'own no partitions: a member that only routes operations')
    .option('--partitions <n>', 'partition count, equal on every member (default: 271)', integer(...OPTION_RANGES.partitions))
    .option('--tls-key <path>', TLS_HELP.key)
    .option('--tls-cert <path>', TLS_HELP.cert)
    .option('--tls-ca <path>', TLS_HELP.ca)
    .option('--resp-port <port>', 'serve the Redis protocol (RESP2/RESP3) on this port; 0 picks a free one (default: no RESP endpoint)', integer(0, 65535))
    .option('--resp-host <host>', 'address the RESP endpoint listens on (default: 127.0.0.1)')
    .option('--resp-password-file <path>', `file holding the password RESP clients give with AUTH (default: the ${RESP_PASSWORD_ENV} environment variable; without one, only loopback clients are served)`)
    .option('--metrics-port <port>', 'serve Prometheus metrics on http://<metrics-host>:<port>/metrics; 0 picks a free one (default: none)', integer(0, 65535))
    .option('--metrics-host <host>', 'address of the metrics server (default: 127.0.0.1)')
    .addHelpText(
      'after',
      `\nThe cluster secret is never taken from the command line (others can read it there).\n` +
        `\nExample, a cluster of two on one machine:\n` +
        `  export ${SECRET_ENV}=$(shardgrid secret)\n` +
        `  shardgrid start --port 7400 --compute-module procs=./procs.mjs &\n` +
        `  shardgrid start --port 7401 --seeds ws://127.0.0.1:7400 --compute-module procs=./procs.mjs &\n` +
        `\nOr keep the secret in a file only you can read, and give every member a copy:\n` +
        `  (umask 077; shardgrid secret > cluster.secret)\n` +
        `  shardgrid start --secret-file cluster.secret\n` +
        // the client line gives the password: a bare `redis-cli -p 6380 ping`, as this said, gets NOAUTH
        `\nServe Redis clients too:\n` +
        `  shardgrid start --secret-file cluster.secret --resp-port 6380 --resp-password-file resp.password\n` +
        `  REDISCLI_AUTH="$(cat resp.password)" redis-cli -p 6380 ping\n`,
    )
    .action(async (o: StartOptions) => setExit(await start(o)));

  p.command('status')
    .description('print the status of the cluster, as seen by the member at <ws-url>')
    .argument('<ws-url>', 'url of any member, e.g. ws://127.0.0.1:7400', wsUrl)
    .option('--secret-file <path>', SECRET_FILE_HELP)
    .option('--json', 'print the status as JSON')
    .option('--timeout <ms>', 'give up after this many milliseconds', integer(1), STATUS_TIMEOUT_MS)
    .option('--tls-key <path>', 'PEM file of the private key to present to a member started with --tls-key (with --tls-cert and --tls-ca)')
    .option('--tls-cert <path>', TLS_HELP.cert)
    .option('--tls-ca <path>', TLS_HELP.ca)
    .action(async (url: string, o: StatusOptions) => setExit(await status(url, o)));

  p.command('secret')
    .description(`print a new random cluster secret (32 random bytes, base64url) and exit`)
    .addHelpText('after', `\nExample:\n  export ${SECRET_ENV}=$(shardgrid secret)\n  (umask 077; shardgrid secret > cluster.secret)\n`)
    .action(async () => {
      say(randomBytes(32).toString('base64url'));
      setExit(await outputWritten());
    });

  return p;
}

async function main(argv: string[]): Promise<number> {
  let code = 0;
  try {
    refuseSecretInArgv(argv.slice(2));
    await program((c) => (code = c)).parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT_USAGE; // commander printed the message
    if (err instanceof UsageError) {
      complain(err.message);
      return EXIT_USAGE;
    }
    throw err;
  }
  return code;
}

main(process.argv).then(
  (code) => process.exit(code),
  (err: unknown) => {
    complain(`unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
