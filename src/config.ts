/**
 * Options: every option is optional in the public type and required in the resolved one; one
 * frozen DEFAULTS; fill defaults, then validate from a rule table (one rule per option path, so no
 * check can test the wrong field); unknown keys are rejected; messages name the full path.
 * Validation happens once, at the public edge; workers trust resolved options.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { statSync } from 'node:fs';
import { isIP } from 'node:net';
import os from 'node:os';
import { isAbsolute } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { InvalidArgumentError, InvalidOptionError } from './errors.js';
import { CLAIM_MAP } from './fetch.js';
import { isLogger, type Logger } from './log.js';
import { formatSize, parseSize } from './size.js';

/**
 * `options.cluster` of createGrid: this process joins (or founds) a cluster of members over
 * WebSocket. Every member needs the same secret and the same partition count.
 */
export interface ClusterOptions {
  /** Address the member port listens on. Default '127.0.0.1'. */
  host?: string;
  /** The member port. Default 7400 for a data member, 0 (any free port) for a lite member. */
  port?: number;
  /**
   * The 'host:port' other members dial to reach this one, when it differs from the bind address
   * (containers, NAT, `host: '0.0.0.0'`, test proxies). Default: host and the bound port. A joining
   * member's seed dials it back there first: an address that does not lead to it fails the start
   * with GRID_ERR_INVALID_OPTION naming options.cluster.advertise (a proxy in front must be up first).
   */
  advertise?: string;
  /** Local IP address this member's outbound connections come from (as Redis's bind-source-addr). Default: chosen by the OS. */
  sourceAddress?: string;
  /**
   * ws:// (wss:// with `tls`) URLs of members to join through; any live member will do. A member
   * started without seeds founds a cluster. Default: none.
   */
  seeds?: string[];
  /**
   * Shared cluster secret, at least MIN_SECRET_BYTES (16) UTF-8 bytes; default: the
   * SHARDGRID_SECRET environment variable. Use a random one (`shardgrid secret` prints 32 random
   * bytes): every member proves it knows the secret, so a short or guessable one can be brute-forced
   * offline from one recorded handshake.
   */
  secret?: string;
  /** Synchronous backup copies of every partition, each on another member (0 to 6). Default 1. */
  backups?: number;
  /** Join as a lite member: it owns no data and routes every operation to the members that own it; its store has no pages (options.memory is ignored). Default false. */
  lite?: boolean;
  /**
   * Mutual TLS on the member port and on connections to other members: this member's key and
   * certificate and the CA that signs every member's certificate (PEM strings or buffers). The
   * member then listens with https, advertises and dials wss:// (seeds must be wss://). Frames are
   * sealed with session keys either way. Checked at createGrid (GRID_ERR_INVALID_OPTION naming
   * options.cluster.tls.key, .cert or .ca): PEM that parses, a certificate matching the key,
   * valid now and signed by a certificate of `ca`. Default: off.
   */
  tls?: ClusterTlsOptions;
}

/** `options.cluster.tls`: mutual TLS between members (PEM strings or Buffers). */
export interface ClusterTlsOptions {
  /** This member's private key. */
  key: string | Buffer;
  /** This member's certificate. */
  cert: string | Buffer;
  /** The CA certificate (or certificates) that signs every member's certificate. */
  ca: string | Buffer | Array<string | Buffer>;
}

/**
 * Options of {@link createGrid}. Every option is optional; unknown or invalid ones are rejected
 * with GRID_ERR_INVALID_OPTION and a message naming the option (`options.cluster.port`, …).
 */
export interface GridOptions {
  /** Virtual nodes (worker threads) of this process. Default os.availableParallelism(). */
  workers?: number;
  /** Partition count; must be equal on every member. Default 271. */
  partitions?: number;
  /** Hard memory budget for all shard stores of this process: bytes, or '64MB' / '1GB' (binary units). Default '256MB'. */
  memory?: number | string;
  /** Longest key in UTF-8 bytes. Default 4096. */
  maxKeyBytes?: number;
  /** Longest encoded value in bytes. Default 1 MiB, at most memory / 8. */
  maxValueBytes?: number;
  /** How long a write waits for a partition lock before failing with GRID_ERR_LOCK_TIMEOUT, ms. Default 5000. */
  lockTimeout?: number;
  /** How often virtual nodes run active expiry and background eviction, ms. Default 100. */
  expiryInterval?: number;
  /** Named maps per grid. Default 256. The library's internal map (map.fetch's claims) has a slot of its own and does not count. */
  maxMaps?: number;
  /** Older name of compute.workers (still accepted; give one or the other). */
  computeWorkers?: number;
  /** Compute next to the data: the modules calls may name, and the pool size. */
  compute?: ComputeOptions;
  /** Limits of the coordination primitives (grid.cp) of a single-process grid; the CP session TTL of a clustered one. */
  cp?: CpOptions;
  /** Make this process a member of a cluster (or a lite member: `cluster.lite`); omit for a single-process grid. */
  cluster?: ClusterOptions;
  /**
   * Where the library's messages go: a pino-compatible logger (`{ debug, info, warn, error }`:
   * pino, console, …). Default: silent, except warnings, which become process warnings
   * (`process.emitWarning`), each kind once.
   */
  logger?: Logger;
  /** A Redis protocol (RESP2/RESP3) endpoint on a port of its own; omit for none. */
  resp?: RespOptions;
  /** Prometheus metrics: `/metrics` on a port of its own, and/or the application's prom-client registry. */
  metrics?: MetricsOptions;
  /**
   * Stops createGrid while it starts: aborted before the grid is up (a member still joining its
   * cluster, which can take up to ~35 s when the cluster cannot admit it), createGrid stops at
   * once, closes what it started and rejects with GRID_ERR_CLOSED. No effect once it resolved.
   */
  signal?: AbortSignal;
}

/** `options.metrics` of createGrid: Prometheus metrics (prom-client). */
export interface MetricsOptions {
  /** Serve GET /metrics on this port (0: a free one; grid.metrics.address tells which). Default: no server. */
  port?: number;
  /** Address of the /metrics server. Default '127.0.0.1'. */
  host?: string;
  /** TCP connections the /metrics server holds at once; more are closed as they arrive. Default 32. */
  maxConnections?: number;
  /** A prom-client Registry of the application to register the grid's metrics on. */
  registry?: unknown;
}

export interface ResolvedMetricsOptions {
  port: number | undefined;
  host: string;
  maxConnections: number;
  registry: unknown;
}

/** `options.resp` of createGrid: a Redis protocol endpoint whose keys live in one map of the grid. */
export interface RespOptions {
  /** Port to listen on; 0 picks a free one (grid.resp.port tells which). Default 6379. */
  port?: number;
  /** Address to listen on. Default '127.0.0.1'. */
  host?: string;
  /**
   * Password clients give with AUTH or HELLO 3 AUTH (Redis's requirepass; user 'default'). Default:
   * none, and then protected mode serves loopback clients only.
   */
  password?: string;
  /** The map RESP keys live in. Default 'default'. Not one of the library's own maps (INTERNAL_MAPS: 'shardgrid:fetch', nor any name starting with 'shardgrid:'). */
  map?: string;
  /** Most connections at once (Redis's maxclients). Default 10000. */
  maxClients?: number;
  /** Without a password, refuse clients that are not on the loopback interface (Redis's protected-mode). Default true. */
  protectedMode?: boolean;
  /** Longest argument of a request, bytes or '512MB' (Redis's proto-max-bulk-len). Default '512MB'. */
  maxBulkLength?: number | string;
  /** Most bytes a connection may buffer for requests not yet complete (Redis's client-query-buffer-limit). Default '1GB'. */
  queryBufferLimit?: number | string;
  /** Most arguments in one request. Default 1048576. */
  maxMultibulkLength?: number;
  /** Bytes of unsent replies past which a connection stops reading requests until its client reads. Default '1MB'. */
  outputHighWater?: number | string;
  /**
   * Largest reply of one MGET, bytes or '64MB'; a bigger one is refused with GRID_ERR_VALUE_TOO_LARGE
   * before it is built (a few bytes naming one key a million times asked for a million copies of
   * its value). As a cluster member's FAST MGET reply is bounded by maxPayload. Default '64MB'.
   */
  maxReplyBytes?: number | string;
  /**
   * On a cluster member, bytes that replies of pipelined requests running beside an earlier one
   * (while it waits for another member) may take at once, over all connections. Each such request
   * counts as maxValueBytes, as its reply's size is known only once it arrives, so at most
   * maxInFlightBytes / maxValueBytes of them run at once; past that a connection runs its requests
   * one after another. 0: none runs beside another. Default '1GB'.
   */
  maxInFlightBytes?: number | string;
  /**
   * Most connections holding a CP session at once: a connection opens one with its first CP.LOCK
   * or CP.ACQUIRE (its locks and permits are its own) and closes it when it disconnects. Past this
   * those commands fail with GRID_ERR_CP_CAPACITY, so RESP clients cannot use up the grid's CP
   * sessions (options.cp.waiters in one process; 4096 in a whole cluster). Default 256.
   */
  maxCpSessions?: number;
  /**
   * Most distinct CP names (locks, atomics, refs, semaphores together) that commands through this
   * endpoint may name over its lifetime. Primitive names are never freed, so without a bound a
   * RESP client could use up the grid's name table (options.cp.primitives in one process, 4096 in
   * a whole cluster) and leave the application none. Every name a CP.* command names counts once,
   * whether it existed before or not; past the bound a new name gets GRID_ERR_CP_CAPACITY and the
   * names already counted keep working. Default 256.
   */
  maxCpNames?: number;
}

export interface ResolvedRespOptions {
  port: number;
  host: string;
  password: string | undefined;
  map: string;
  maxClients: number;
  protectedMode: boolean;
  maxBulkLength: number;
  queryBufferLimit: number;
  maxMultibulkLength: number;
  outputHighWater: number;
  maxReplyBytes: number;
  maxInFlightBytes: number;
  maxCpSessions: number;
  maxCpNames: number;
}

/** `options.cp` of createGrid: limits of the coordination primitives (grid.cp). */
export interface CpOptions {
  /** Distinct primitive names (locks, atomics, semaphores together). Default 1024. */
  primitives?: number;
  /** Longest encoded atomicRef value in bytes (each ref reserves twice this). Default 1024. */
  maxValueBytes?: number;
  /** Waiter and permit-holding records shared by all primitives (one per waiting call, one per thread holding permits of a semaphore). Default 1024. */
  waiters?: number;
  /**
   * Clustered grids: a member's CP session ends (its locks and permits are released) when the
   * metadata leader has not heard its heartbeat (sent every quarter of this) for this long, ms.
   * Default 10000.
   */
  sessionTtlMs?: number;
}

/** `options.compute` of createGrid: the modules compute and aggregate calls may name, and the pool that runs aggregations. */
export interface ComputeOptions {
  /**
   * The ES modules of entry processors and aggregators, registered by name at start:
   * `{ procs: new URL('./procs.mjs', import.meta.url) }` (a file: URL, a file: URL string or an
   * absolute path of an existing file). Calls name them (`{ module: 'procs', name: 'addToCart' }`);
   * only the name crosses threads and the wire, and every receiver loads the module it registered
   * under that name. Members of one cluster must register the same names. Nothing else is ever
   * imported: not a path, a file: URL, a data: URL or any other URL given in a call.
   */
  modules?: Record<string, string | URL>;
  /** Threads of the compute pool that runs aggregations (created on first use). Default: workers. */
  workers?: number;
  /**
   * How long an aggregation may run, ms (default 60000): past it, its tasks still running are
   * stopped (their pool threads are replaced) and it fails with GRID_ERR_TIMEOUT. In a cluster the
   * caller's value bounds every member's share.
   */
  timeoutMs?: number;
  /**
   * How long one entry processor (map.compute) may run, ms (default 2000 in a cluster, 0 in one
   * process). Past it the processor is stopped, the entry is unchanged and the call fails with
   * GRID_ERR_TIMEOUT. In one process a processor runs on the calling thread under a watchdog
   * (about 20x the cost of a trivial call, so opt-in there); on a cluster member it runs on the
   * member's compute pool, never on its main thread; the caller's value bounds it. 0: no limit and
   * no watchdog or pool: the processor runs on the calling thread (on a cluster member, its main
   * thread), as fast as it can, and one that never returns hangs that thread.
   */
  processorTimeoutMs?: number;
}

/** Registered compute modules: name → file: URL href of an existing file (frozen, null prototype). */
export type ModuleTable = Readonly<Record<string, string>>;

/** Shortest cluster secret accepted, in UTF-8 bytes: 128 bits, beyond offline brute force when random. */
export const MIN_SECRET_BYTES = 16;

/** True for a secret of at least MIN_SECRET_BYTES UTF-8 bytes. */
export function isStrongEnoughSecret(v: unknown): v is string {
  return typeof v === 'string' && Buffer.byteLength(v, 'utf8') >= MIN_SECRET_BYTES;
}

export const SECRET_RULE_MESSAGE =
  `must be a shared secret of at least ${MIN_SECRET_BYTES} bytes (UTF-8), from the option or SHARDGRID_SECRET; ` +
  '`shardgrid secret` prints a random one';

/** A registered module name: what `{ module }` in a call and `--compute-module name=path` say. */
export const MODULE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
const MAX_MODULES = 256;

/**
 * Options of a map, given to {@link Grid.map}: registered for the map's name in the whole grid by
 * the first call that gives them (a later call with different values throws GRID_ERR_INVALID_OPTION).
 */
export interface MapOptions {
  /** Default time to live of the map's entries, ms; 0 or absent: no expiry. */
  ttl?: number;
  /**
   * Keep decoded object values in a per-thread read memo (default true). A memo entry is used only
   * while the entry's version in shared memory is unchanged, so it is never stale, but repeated
   * gets on one thread return the SAME object: callers must not mutate what get() returns. Set
   * false to decode a fresh object on every get. Strings and numbers are immutable and always
   * memoized; byte arrays are always copied.
   */
  cacheValues?: boolean;
}

export interface ResolvedClusterOptions {
  host: string;
  port: number;
  advertise: string | undefined;
  sourceAddress: string | undefined;
  seeds: string[];
  secret: string | undefined;
  backups: number;
  lite: boolean;
  tls: ClusterTlsOptions | undefined;
}

export interface ResolvedOptions {
  workers: number;
  partitions: number;
  memory: number;
  maxKeyBytes: number;
  maxValueBytes: number;
  lockTimeout: number;
  expiryInterval: number;
  maxMaps: number;
  logger: Logger | undefined;
  /** The top-level option as given (older name of compute.workers). */
  computeWorkers: number | undefined;
  compute: ResolvedComputeOptions;
  cp: Required<CpOptions>;
  cluster: ResolvedClusterOptions | undefined;
  resp: ResolvedRespOptions | undefined;
  metrics: ResolvedMetricsOptions | undefined;
  signal: AbortSignal | undefined;
}

export interface ResolvedComputeOptions {
  modules: ModuleTable;
  /** undefined: as many as workers. */
  workers: number | undefined;
  timeoutMs: number;
  /** 0: no limit. */
  processorTimeoutMs: number;
}

export const DEFAULTS = Object.freeze({
  partitions: 271,
  memory: '256MB',
  maxKeyBytes: 4096,
  maxValueBytes: 1024 * 1024,
  lockTimeout: 5000,
  expiryInterval: 100,
  maxMaps: 256,
  cp: Object.freeze({ primitives: 1024, maxValueBytes: 1024, waiters: 1024, sessionTtlMs: 10_000 }),
  compute: Object.freeze({ timeoutMs: 60_000, processorTimeoutMs: 2000 }),
  // port: data members; a lite member (a client) defaults to 0, any free port, so that two
  // applications on one machine do not collide (issue 15)
  cluster: Object.freeze({ host: '127.0.0.1', port: 7400, litePort: 0, seeds: Object.freeze([] as string[]), backups: 1, lite: false }),
  resp: Object.freeze({
    port: 6379, host: '127.0.0.1', map: 'default', maxClients: 10_000, protectedMode: true,
    maxBulkLength: '512MB', queryBufferLimit: '1GB', maxMultibulkLength: 1024 * 1024, outputHighWater: '1MB', maxReplyBytes: '64MB', maxInFlightBytes: '1GB', maxCpSessions: 256, maxCpNames: 256,
  }),
  metrics: Object.freeze({ host: '127.0.0.1', maxConnections: 32 }),
});

/**
 * The library's own maps, registered by createGrid in slots added to options.maxMaps, so that
 * the user's maps have all of theirs: map.fetch keeps its claims in CLAIM_MAP, and a grid with
 * maxMaps maps of the user's could not fetch when it counted against them. Not a `resp.map`:
 * RESP clients would read, overwrite and FLUSHDB the library's records.
 */
export const INTERNAL_MAPS: readonly string[] = Object.freeze([CLAIM_MAP]);

/**
 * The prefix of the library's own map names (CLAIM_MAP, and any a later version adds): refused as
 * `resp.map`, so a RESP map never becomes a library map of an upgrade.
 */
export const INTERNAL_MAP_PREFIX = 'shardgrid:';
const internalMapName = (v: unknown): boolean => typeof v === 'string' && (INTERNAL_MAPS.includes(v) || v.startsWith(INTERNAL_MAP_PREFIX));

const MIN_MEMORY = 4 * 1024 * 1024;
/** Longest options.compute.timeoutMs: the longest delay setTimeout keeps (about 24.8 days). */
export const MAX_COMPUTE_TIMEOUT_MS = 2 ** 31 - 1;
/**
 * Largest options.memory: the heap is one growable SharedArrayBuffer, which Node 20 grows to 4 GiB
 * at most (a larger maxByteLength throws "Invalid array buffer max length"), and the store
 * addresses it with unsigned 32-bit offsets (`>>> 3`, u32 record refs' words).
 */
const MAX_MEMORY = 4 * 1024 * 1024 * 1024;

/**
 * The ranges of the options the CLI takes as flags (`--workers`, `--partitions`, `--backups`,
 * `--memory`): the rule table checks them, and the CLI checks its flags against the same numbers,
 * so a flag out of range is a usage error naming the flag.
 */
export const OPTION_RANGES = Object.freeze({
  workers: [1, 256],
  partitions: [1, 65535],
  backups: [0, 6],
  memory: [MIN_MEMORY, MAX_MEMORY],
} as const);

const fail = (path: string, message: string): never => {
  throw new InvalidOptionError(`${path} ${message}`, { option: path });
};

/** Parses a byte count or a size string ('64MB', '1.5GB', '512KiB'; binary units, case-insensitive: size.ts). */
export function parseBytes(v: number | string, optionPath: string): number {
  const n = parseSize(v);
  if (n !== undefined) return n;
  return fail(optionPath, `must be a byte count or a size string such as '64MB' (got ${typeof v === 'string' ? `'${v}'` : String(v)})`);
}

const isPlainObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x) && (Object.getPrototypeOf(x) === Object.prototype || Object.getPrototypeOf(x) === null);

const intRule = (min: number, max: number) => ({
  check: (v: unknown) => Number.isInteger(v) && (v as number) >= min && (v as number) <= max,
  message: `must be an integer from ${min} to ${max}`,
});

interface Rule {
  check: (v: unknown, all: ResolvedOptions) => boolean;
  message: string | ((v: unknown, all: ResolvedOptions) => string);
  /**
   * False: the message does not end with the value given, `(got ...)`: a secret (never shown), a
   * rule about how options go together (the value alone is not the mistake), or a message that
   * says what it got itself.
   */
  echo?: false;
}

/** The fields of options.resp given as sizes (bytes or '64MB'): resolveResp reads each with parseBytes. */
const RESP_SIZES = ['maxBulkLength', 'queryBufferLimit', 'outputHighWater', 'maxReplyBytes', 'maxInFlightBytes'] as const;

/** Options read with parseBytes: a refusal shows the value as given and the bytes it means. */
const SIZE_PATHS: ReadonlySet<string> = new Set(['options.memory', ...RESP_SIZES.map((k) => `options.resp.${k}`)]);

/** What the `(got ...)` of a refused option shows: the value as the caller gave it (a size string with its bytes). */
function given(path: string, raw: unknown, resolved: unknown): string {
  if (SIZE_PATHS.has(path)) return typeof raw === 'string' ? `'${raw.length > 40 ? `${raw.slice(0, 40)}...` : raw}' = ${String(resolved)} bytes` : `${String(resolved)} bytes`;
  return shownArg(raw);
}

const RULES: Record<string, Rule> = {
  'options.workers': intRule(...OPTION_RANGES.workers),
  'options.partitions': intRule(...OPTION_RANGES.partitions),
  'options.memory': { check: (v) => (v as number) >= MIN_MEMORY && (v as number) <= MAX_MEMORY, message: `must be from ${formatSize(MIN_MEMORY)} to ${formatSize(MAX_MEMORY)}` },
  'options.maxKeyBytes': intRule(1, 65535),
  'options.maxValueBytes': {
    check: (v, all) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= Math.floor(all.memory / 8),
    message: (_v, all) => `must be an integer from 1 to memory / 8 (${Math.floor(all.memory / 8)})`,
  },
  'options.lockTimeout': intRule(1, 600_000),
  'options.expiryInterval': intRule(10, 60_000),
  'options.maxMaps': intRule(1, 4096),
  'options.logger': { check: (v) => v === undefined || isLogger(v), message: 'must be a pino-compatible logger: an object with debug, info, warn and error methods' },
  'options.cp.primitives': intRule(1, 65536),
  'options.cp.maxValueBytes': intRule(1, 1024 * 1024),
  'options.cp.waiters': intRule(1, 65536),
  'options.cp.sessionTtlMs': intRule(500, 24 * 3600_000),
  'options.computeWorkers': { check: (v) => v === undefined || intRule(1, 256).check(v), message: 'must be an integer from 1 to 256' },
  'options.compute.workers': {
    check: (v, all) => v === undefined || (intRule(1, 256).check(v) && all.computeWorkers === undefined),
    message: (v) => (intRule(1, 256).check(v) ? 'and options.computeWorkers (its older name) are both given: give one' : `must be an integer from 1 to 256 (got ${shownArg(v)})`),
    echo: false,
  },
  'options.compute.timeoutMs': intRule(1, MAX_COMPUTE_TIMEOUT_MS),
  'options.compute.processorTimeoutMs': intRule(0, MAX_COMPUTE_TIMEOUT_MS),
  'options.compute.modules': {
    check: (v) => isPlainObject(v) && Object.keys(v).length <= MAX_MODULES,
    message: `must be an object of at most ${MAX_MODULES} entries, { name: file URL or absolute path }`,
  },
  'options.cluster.host': { check: (v) => typeof v === 'string' && v.length > 0, message: 'must be a non-empty host name or address' },
  'options.cluster.port': intRule(0, 65535),
  'options.cluster.advertise': {
    check: (v) => v === undefined || isHostPort(v),
    message: "must be 'host:port' (a host name, IPv4 address or [IPv6] address, and a port from 1 to 65535)",
  },
  'options.cluster.sourceAddress': { check: (v) => v === undefined || (typeof v === 'string' && isIP(v) !== 0), message: 'must be an IPv4 or IPv6 address' },
  'options.cluster.seeds': {
    // with TLS every seed is dialled over TLS; without, a wss:// member (mutual TLS: it asks for a
    // certificate of its CA) would refuse every dial, which looked like an unreachable seed
    check: (v, o) => Array.isArray(v) && v.every((s) => isMemberUrl(s) && s.startsWith('wss://') === (o.cluster?.tls !== undefined)),
    message: (v, o) =>
      !Array.isArray(v) || !v.every(isMemberUrl)
        ? `must be an array of member urls, each ${MEMBER_URL_FORM}`
        : o.cluster?.tls === undefined
          ? 'must be ws:// URLs without options.cluster.tls (a wss:// member asks for a certificate of its CA)'
          : 'must be an array of wss:// URLs when options.cluster.tls is set',

    echo: false,
  },
  'options.cluster.backups': intRule(...OPTION_RANGES.backups),
  'options.cluster.lite': {
    // a lite member owns nothing: alone it has no table to route by (it used to wait 15 s for one)
    check: (v, o) => typeof v === 'boolean' && (v === false || (o.cluster?.seeds.length ?? 0) > 0),
    message: (v) => (typeof v === 'boolean' ? 'needs options.cluster.seeds: a lite member owns no partitions and joins a cluster of data members' : 'must be true or false'),

    echo: false,
  },
  'options.cluster.tls': { check: (v) => v === undefined || isTls(v), message: 'must be { key, cert, ca } of PEM strings or Buffers (ca may be an array)', echo: false },
  // last of the cluster rules: a missing secret is reported after any other mistake of the block
  'options.cluster.secret': { check: isStrongEnoughSecret, message: SECRET_RULE_MESSAGE, echo: false },
  'options.resp.port': intRule(0, 65535),
  'options.resp.host': { check: (v) => typeof v === 'string' && v.length > 0, message: 'must be a non-empty host name or address' },
  'options.resp.password': {
    check: (v) => v === undefined || (typeof v === 'string' && v.length > 0 && Buffer.byteLength(v) <= 4096),
    message: 'must be a non-empty string of at most 4096 bytes',
    echo: false,
  },
  'options.resp.map': {
    check: (v) => typeof v === 'string' && v.length > 0 && Buffer.byteLength(v) <= 256 && !internalMapName(v),
    message: (v) => (internalMapName(v) ? `must not be one of the library's own maps (${INTERNAL_MAPS.join(', ')}, or another name starting with '${INTERNAL_MAP_PREFIX}')` : `must be a map name (1 to 256 UTF-8 bytes) (got ${shownArg(v)})`),
    echo: false,
  },
  'options.resp.maxClients': intRule(1, 1_000_000),
  'options.resp.protectedMode': { check: (v) => typeof v === 'boolean', message: 'must be true or false' },
  'options.resp.maxBulkLength': intRule(1, 4 * 1024 ** 3),
  'options.resp.queryBufferLimit': intRule(1024, 16 * 1024 ** 3),
  'options.resp.maxMultibulkLength': intRule(1, 2 ** 31 - 1),
  'options.resp.outputHighWater': intRule(1024, 4 * 1024 ** 3),
  'options.resp.maxReplyBytes': intRule(1024, 4 * 1024 ** 3),
  'options.resp.maxInFlightBytes': intRule(0, 1024 ** 4),
  'options.resp.maxCpSessions': intRule(0, 4096),
  'options.resp.maxCpNames': intRule(0, 65536),
  'options.metrics.port': { check: (v) => v === undefined || intRule(0, 65535).check(v), message: 'must be an integer from 0 to 65535' },
  'options.metrics.host': { check: (v) => typeof v === 'string' && v.length > 0, message: 'must be a non-empty host name or address' },
  'options.metrics.maxConnections': intRule(1, 65535),
  'options.signal': { check: (v) => v === undefined || v instanceof AbortSignal, message: 'must be an AbortSignal' },
  'options.metrics.registry': {
    check: (v) => v === undefined || (typeof v === 'object' && v !== null && typeof (v as { registerMetric?: unknown }).registerMetric === 'function'),
    message: 'must be a prom-client Registry',
  },
};

const isPem = (x: unknown): boolean => (typeof x === 'string' && x.length > 0) || (Buffer.isBuffer(x) && x.length > 0);
function isTls(v: unknown): boolean {
  if (!isPlainObject(v)) return false;
  const t = v as Record<string, unknown>;
  if (Object.keys(t).some((k) => k !== 'key' && k !== 'cert' && k !== 'ca')) return false;
  return isPem(t.key) && isPem(t.cert) && (isPem(t.ca) || (Array.isArray(t.ca) && t.ca.length > 0 && t.ca.every(isPem)));
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** The certificates of PEM text (a file may hold a chain or a bundle); undefined when it holds none or one does not parse. */
export function pemCertificates(pem: string | Buffer): X509Certificate[] | undefined {
  const blocks = (typeof pem === 'string' ? pem : pem.toString('latin1')).match(PEM_CERT);
  if (blocks === null) return undefined;
  try {
    return blocks.map((b) => new X509Certificate(b));
  } catch {
    return undefined;
  }
}

/** A part of cluster.tls, as `tlsMaterialProblem` names it. */
export type TlsPart = 'key' | 'cert' | 'ca';

/**
 * What makes cluster.tls unusable, or undefined: a key that is not an unencrypted PEM private
 * key, a certificate or CA without a PEM certificate that parses, a certificate that does not
 * match the key, that is expired or not yet valid, or that no certificate of `ca` signed (other
 * members, which trust the same CA, would refuse it: the member could neither join nor be
 * joined). Node's TLS would throw raw OpenSSL errors for the first ones and take the others
 * silently. `name` says how to call each part in the message (an option path, a CLI flag).
 */
export function tlsMaterialProblem(
  tls: { key: string | Buffer; cert: string | Buffer; ca: string | Buffer | Array<string | Buffer> },
  name: (part: TlsPart) => string,
  dialHost?: string,
): { part: TlsPart; message: string } | undefined {
  let key: KeyObject;
  try {
    key = createPrivateKey(tls.key);
  } catch (err) {
    const encrypted = (err as { code?: string }).code === 'ERR_MISSING_PASSPHRASE';
    return { part: 'key', message: encrypted ? 'is an encrypted private key: give it unencrypted (openssl pkey -in <file> -out <file>)' : 'is not a PEM private key' };
  }
  const chain = pemCertificates(tls.cert);
  if (chain === undefined) return { part: 'cert', message: 'holds no PEM certificate that parses' };
  const cas: X509Certificate[] = [];
  for (const c of Array.isArray(tls.ca) ? tls.ca : [tls.ca]) {
    const parsed = pemCertificates(c);
    if (parsed === undefined) return { part: 'ca', message: 'holds no PEM certificate that parses' };
    cas.push(...parsed);
  }
  const leaf = chain[0]!;
  if (!leaf.checkPrivateKey(key)) return { part: 'cert', message: `does not match ${name('key')} (its public key is another key's)` };
  const now = Date.now();
  if (Date.parse(leaf.validTo) < now) return { part: 'cert', message: `expired on ${leaf.validTo}: other members refuse it` };
  if (Date.parse(leaf.validFrom) > now) return { part: 'cert', message: `is not valid before ${leaf.validFrom}: other members refuse it (is this machine's clock right?)` };
  // with a chain, any of its certificates may be the one a CA of the bundle issued
  const trusted = chain.some((c) => cas.some((ca) => c.fingerprint256 === ca.fingerprint256 || (c.checkIssued(ca) && c.verify(ca.publicKey))));
  if (!trusted) return { part: 'cert', message: `is not signed by ${name('ca')} (issuer ${leaf.issuer.replace(/\n/g, ', ')}): other members will refuse it` };
  // other members check the certificate against the host they dial, as any TLS client does
  if (dialHost !== undefined) {
    const ip = isIP(dialHost) !== 0;
    if ((ip ? leaf.checkIP(dialHost) : leaf.checkHost(dialHost)) === undefined) {
      return { part: 'cert', message: `does not name ${dialHost}, the address other members dial (it names ${leaf.subjectAltName ?? leaf.subject.replace(/\n/g, ', ')}): their TLS refuses it` };
    }
  }
  return undefined;
}

/** The host other members dial to reach a member: that of `advertise`, else the bind host; undefined for a wildcard bind without one. */
export function dialHostOf(host: string, advertise: string | undefined): string | undefined {
  const h = advertise === undefined ? host : advertise.slice(0, advertise.lastIndexOf(':'));
  const bare = h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
  return bare === '0.0.0.0' || bare === '::' ? undefined : bare;
}

/** The rule of each entry of options.compute.modules (path `options.compute.modules.<name>`). */
const MODULE_RULE: Rule = {
  check: (v) => moduleHref(v) !== undefined,
  message: (v) => `must be a file: URL or an absolute path of an existing ES module file${describeModuleValue(v)}`,
};
const MODULE_NAME_MESSAGE = 'is not a valid module name: 1 to 64 letters, digits, _ . or -, not starting with . or -';

/** What a member url looks like, for error messages (isMemberUrl). */
export const MEMBER_URL_FORM = 'a ws:// or wss:// url of a host and a port such as ws://127.0.0.1:7400 (a port from 1 to 65535; no path, not even a trailing /, and no user:password@)';

/**
 * A member url: ws:// or wss://, then `host:port` as isHostPort takes it, and nothing else. The
 * one form a member advertises, the membership and the metadata log take, and Transport.connect
 * and probe dial: a url from a peer (a HELLO, gossip, an answer) can name no path, query or
 * credentials, so it cannot make a member GET /latest/meta-data/... with Basic auth from any HTTP
 * server. A seed or `status` url with a path, a trailing slash or credentials never worked either
 * (the listener refuses a dialled url that is not its own, GRID_ERR_AUTH) and is refused here.
 */
export function isMemberUrl(v: unknown): v is string {
  if (typeof v !== 'string') return false;
  const scheme = /^wss?:\/\//.exec(v);
  return scheme !== null && isHostPort(v.slice(scheme[0].length));
}

/**
 * The file: URL href of a module given at registration, or undefined when it is not a file: URL
 * (URL object or string) or an absolute path naming an existing regular file. data:, http:,
 * node: and every other scheme, relative paths and missing files are all undefined.
 */
export function moduleHref(v: unknown): string | undefined {
  let url: URL;
  try {
    if (v instanceof URL) url = new URL(v.href);
    else if (typeof v !== 'string' || v.length === 0 || v.length > 4096) return undefined;
    else if (/^file:/i.test(v)) url = new URL(v);
    else if (isAbsolute(v)) url = pathToFileURL(v);
    else return undefined;
    if (url.protocol !== 'file:') return undefined;
    return statSync(fileURLToPath(url)).isFile() ? url.href : undefined;
  } catch {
    return undefined;
  }
}

function describeModuleValue(v: unknown): string {
  if (v instanceof URL) return v.protocol === 'file:' ? ` (no such file: ${v.href})` : ` (got a ${v.protocol} URL)`;
  if (typeof v !== 'string') return ` (got ${v === null ? 'null' : typeof v})`;
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(v);
  if (scheme !== null && scheme[1].toLowerCase() !== 'file' && !isAbsolute(v)) return ` (got a ${scheme[1].toLowerCase()}: URL)`;
  if (!/^file:/i.test(v) && !isAbsolute(v)) return ` (got the relative path '${v.slice(0, 200)}')`;
  return ` (no such file: '${v.slice(0, 200)}')`;
}

/** 'host:port' with a plain host name, IPv4 address or bracketed IPv6 address, and a port 1-65535. */
export function isHostPort(v: unknown): v is string {
  if (typeof v !== 'string' || v.length > 260) return false;
  // `_` too: not in RFC 952 host names, but Docker's DNS resolves container and Compose service
  // names that have one (proj_grid_1), and a member advertised as such was refused
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):([0-9]{1,5})$/.exec(v);
  if (m === null) return false;
  const port = Number(m[2]);
  return port >= 1 && port <= 65535;
}

function rejectUnknown(obj: Record<string, unknown>, known: readonly string[], path: string): void {
  for (const k of Object.keys(obj)) if (!known.includes(k)) fail(`${path}.${k}`, 'is not a known option');
}

/** The value at `path` ('options.a.b') of the resolved options, or of the input as given. */
function get(o: object, path: string): unknown {
  let cur: unknown = o;
  for (const part of path.split('.').slice(1)) cur = (cur as Record<string, unknown> | undefined)?.[part];
  return cur;
}

export function resolveOptions(input?: GridOptions): ResolvedOptions {
  if (input === undefined) input = {};
  if (!isPlainObject(input)) fail('options', 'must be an object');
  const i = input as Record<string, unknown>;
  rejectUnknown(i, ['workers', 'partitions', 'memory', 'maxKeyBytes', 'maxValueBytes', 'lockTimeout', 'expiryInterval', 'maxMaps', 'computeWorkers', 'compute', 'cp', 'cluster', 'resp', 'metrics', 'logger', 'signal'], 'options');
  if (i.cp !== undefined) {
    if (!isPlainObject(i.cp)) fail('options.cp', 'must be an object');
    rejectUnknown(i.cp as Record<string, unknown>, ['primitives', 'maxValueBytes', 'waiters', 'sessionTtlMs'], 'options.cp');
  }
  const cpi = (i.cp ?? {}) as Record<string, unknown>;
  if (i.compute !== undefined) {
    if (!isPlainObject(i.compute)) fail('options.compute', 'must be an object');
    rejectUnknown(i.compute as Record<string, unknown>, ['modules', 'workers', 'timeoutMs', 'processorTimeoutMs'], 'options.compute');
  }
  const ci = (i.compute ?? {}) as Record<string, unknown>;
  let cluster: ResolvedClusterOptions | undefined;
  if (i.cluster !== undefined) {
    if (!isPlainObject(i.cluster)) fail('options.cluster', 'must be an object');
    const c = i.cluster as Record<string, unknown>;
    rejectUnknown(c, ['host', 'port', 'advertise', 'sourceAddress', 'seeds', 'secret', 'backups', 'lite', 'tls'], 'options.cluster');
    const d = DEFAULTS.cluster;
    cluster = {
      host: (c.host ?? d.host) as string,
      port: (c.port ?? (c.lite === true ? d.litePort : d.port)) as number,
      advertise: c.advertise as string | undefined,
      sourceAddress: c.sourceAddress as string | undefined,
      seeds: ((c.seeds as string[] | undefined) ?? [...d.seeds]).slice(),
      secret: (c.secret ?? process.env.SHARDGRID_SECRET) as string | undefined,
      backups: (c.backups ?? d.backups) as number,
      lite: (c.lite ?? d.lite) as boolean,
      tls: c.tls as ClusterTlsOptions | undefined,
    };
  }
  const resp = resolveResp(i.resp);
  let metrics: ResolvedMetricsOptions | undefined;
  if (i.metrics !== undefined) {
    if (!isPlainObject(i.metrics)) fail('options.metrics', 'must be an object');
    const m = i.metrics as Record<string, unknown>;
    rejectUnknown(m, ['port', 'host', 'maxConnections', 'registry'], 'options.metrics');
    const d = DEFAULTS.metrics;
    metrics = { port: m.port as number | undefined, host: (m.host ?? d.host) as string, maxConnections: (m.maxConnections ?? d.maxConnections) as number, registry: m.registry };
  }
  const resolved: ResolvedOptions = {
    workers: (i.workers ?? os.availableParallelism()) as number,
    partitions: (i.partitions ?? DEFAULTS.partitions) as number,
    memory: parseBytes((i.memory ?? DEFAULTS.memory) as number | string, 'options.memory'),
    maxKeyBytes: (i.maxKeyBytes ?? DEFAULTS.maxKeyBytes) as number,
    maxValueBytes: 0, // filled below: the default depends on memory
    lockTimeout: (i.lockTimeout ?? DEFAULTS.lockTimeout) as number,
    expiryInterval: (i.expiryInterval ?? DEFAULTS.expiryInterval) as number,
    maxMaps: (i.maxMaps ?? DEFAULTS.maxMaps) as number,
    logger: i.logger as Logger | undefined,
    computeWorkers: i.computeWorkers as number | undefined,
    compute: { modules: (ci.modules ?? {}) as ModuleTable, workers: ci.workers as number | undefined, timeoutMs: (ci.timeoutMs ?? DEFAULTS.compute.timeoutMs) as number,
      // a limit by default where a processor would otherwise run on a cluster member's main
      // thread; in one process the caller's own thread runs it, and the watchdog costs ~20x a call
      processorTimeoutMs: (ci.processorTimeoutMs ?? (i.cluster !== undefined ? DEFAULTS.compute.processorTimeoutMs : 0)) as number },
    cp: Object.freeze({
      primitives: (cpi.primitives ?? DEFAULTS.cp.primitives) as number,
      maxValueBytes: (cpi.maxValueBytes ?? DEFAULTS.cp.maxValueBytes) as number,
      waiters: (cpi.waiters ?? DEFAULTS.cp.waiters) as number,
      sessionTtlMs: (cpi.sessionTtlMs ?? DEFAULTS.cp.sessionTtlMs) as number,
    }),
    cluster,
    resp,
    metrics,
    signal: i.signal as AbortSignal | undefined,
  };
  resolved.maxValueBytes = (i.maxValueBytes ?? Math.min(DEFAULTS.maxValueBytes, Math.floor(resolved.memory / 8))) as number;
  for (const [path, rule] of Object.entries(RULES)) {
    if (path.startsWith('options.cluster.') && cluster === undefined) continue;
    if (path.startsWith('options.resp.') && resp === undefined) continue;
    if (path.startsWith('options.metrics.') && metrics === undefined) continue;
    const v = get(resolved, path);
    if (rule.check(v, resolved)) continue;
    const message = typeof rule.message === 'string' ? rule.message : rule.message(v, resolved);
    fail(path, rule.echo === false ? message : `${message} (got ${given(path, get(i, path), v)})`);
  }
  if (cluster?.tls !== undefined) {
    const p = tlsMaterialProblem(cluster.tls, (part) => `options.cluster.tls.${part}`, dialHostOf(cluster.host, cluster.advertise));
    if (p !== undefined) fail(`options.cluster.tls.${p.part}`, p.message);
  }
  // each registered module: its own path in the message; the table then holds hrefs only
  const table: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [name, v] of Object.entries(resolved.compute.modules)) {
    const path = `options.compute.modules.${name}`;
    if (!MODULE_NAME.test(name)) fail(path, MODULE_NAME_MESSAGE);
    if (!MODULE_RULE.check(v, resolved)) fail(path, typeof MODULE_RULE.message === 'string' ? MODULE_RULE.message : MODULE_RULE.message(v, resolved));
    table[name] = moduleHref(v)!;
  }
  resolved.compute = Object.freeze({ modules: Object.freeze(table), workers: resolved.compute.workers ?? resolved.computeWorkers, timeoutMs: resolved.compute.timeoutMs, processorTimeoutMs: resolved.compute.processorTimeoutMs });
  if (cluster !== undefined) Object.freeze(cluster.seeds), Object.freeze(cluster);
  if (resp !== undefined) Object.freeze(resp);
  if (metrics !== undefined) Object.freeze(metrics);
  return Object.freeze(resolved);
}

function resolveResp(v: unknown): ResolvedRespOptions | undefined {
  if (v === undefined) return undefined;
  if (!isPlainObject(v)) fail('options.resp', 'must be an object');
  const r = v as Record<string, unknown>;
  rejectUnknown(r, ['port', 'host', 'password', 'map', 'maxClients', 'protectedMode', 'maxBulkLength', 'queryBufferLimit', 'maxMultibulkLength', 'outputHighWater', 'maxReplyBytes', 'maxInFlightBytes', 'maxCpSessions', 'maxCpNames'], 'options.resp');
  const d = DEFAULTS.resp;
  const sizes = {} as Record<(typeof RESP_SIZES)[number], number>;
  for (const k of RESP_SIZES) sizes[k] = parseBytes((r[k] ?? d[k]) as number | string, `options.resp.${k}`);
  return {
    ...sizes,
    port: (r.port ?? d.port) as number,
    host: (r.host ?? d.host) as string,
    password: r.password as string | undefined,
    map: (r.map ?? d.map) as string,
    maxClients: (r.maxClients ?? d.maxClients) as number,
    protectedMode: (r.protectedMode ?? d.protectedMode) as boolean,
    maxMultibulkLength: (r.maxMultibulkLength ?? d.maxMultibulkLength) as number,
    maxCpSessions: (r.maxCpSessions ?? d.maxCpSessions) as number,
    maxCpNames: (r.maxCpNames ?? d.maxCpNames) as number,
  };
}

/** Options of one write (set, setSync, setIfAbsent, setMany). A number is short for `{ ttl }`. */
export interface SetOptions {
  /** Time to live of the written entries, ms; 0: no expiry; absent: the map's default. */
  ttl?: number;
}

/**
 * The ttl a write's options ask for: undefined (the map's default) or ms >= 0. A number means
 * `{ ttl: number }`, as lru-cache's `set(k, v, { ttl })` and Keyv's `set(k, v, ttl)` allow.
 * Unknown keys (a misspelt `{ tll }`) and bad values are GRID_ERR_INVALID_ARGUMENT naming the
 * option: they are arguments of one call (createGrid's and map()'s are GRID_ERR_INVALID_OPTION).
 */
/**
 * A bad argument as an error message shows it: a number as itself, anything else with its type
 * (the string '1' printed as 1 read like a valid number).
 */
export function shownArg(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return `the string '${v.length > 40 ? `${v.slice(0, 40)}...` : v}'`;
  if (typeof v === 'bigint') return `the bigint ${v}n`;
  if (v === null || v === undefined) return String(v);
  return typeof v === 'object' ? (Array.isArray(v) ? 'an array' : 'an object') : `a ${typeof v}`;
}

export function setTtl(options: unknown): number | undefined {
  if (options === undefined) return undefined;
  const ttl = typeof options === 'number' ? options : isPlainObject(options) ? writeOptionsTtl(options) : badWriteOptions(options);
  if (ttl === undefined) return undefined;
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl < 0) {
    throw new InvalidArgumentError(`${typeof options === 'number' ? 'ttl' : 'options.ttl'} must be a finite number of ms >= 0 (got ${typeof ttl === 'string' ? `'${ttl}'` : String(ttl)})`, { option: 'options.ttl' });
  }
  return ttl;
}

function writeOptionsTtl(o: Record<string, unknown>): unknown {
  for (const k of Object.keys(o)) if (k !== 'ttl') throw new InvalidArgumentError(`options.${k} is not a known option (a write takes { ttl } or a number of ms)`, { option: `options.${k}` });
  return o.ttl;
}

function badWriteOptions(o: unknown): never {
  throw new InvalidArgumentError(`options must be { ttl } or a number of ms (got ${o === null ? 'null' : Array.isArray(o) ? 'an array' : typeof o})`, { option: 'options' });
}

export function resolveMapOptions(input?: MapOptions): { ttl: number; cacheValues: boolean } {
  if (input === undefined) return MAP_DEFAULTS;
  if (!isPlainObject(input)) fail('options', 'must be an object');
  rejectUnknown(input as Record<string, unknown>, ['ttl', 'cacheValues'], 'options');
  const ttl = input.ttl ?? 0;
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl < 0) fail('options.ttl', `must be a finite number of ms >= 0 (got ${String(ttl)})`);
  const cacheValues = input.cacheValues ?? true;
  if (typeof cacheValues !== 'boolean') fail('options.cacheValues', `must be a boolean (got ${typeof cacheValues})`);
  return Object.freeze({ ttl: ttl as number, cacheValues: cacheValues as boolean });
}
const MAP_DEFAULTS = Object.freeze({ ttl: 0, cacheValues: true });
