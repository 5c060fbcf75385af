/**
 * The RESP endpoint: a node:net server on a port of its own that speaks RESP2 and RESP3 to Redis
 * clients, over one map of the grid. On a cluster member the map is the routed one, so keys whose
 * primary is elsewhere take the same path as any library call.
 *
 * Per connection: a RespParser (limits before allocation), a queue of parsed requests run one at a
 * time in order (a request waits for the one before it, as Redis replies in order), replies
 * gathered per read and written together. Output backpressure: when the socket's write buffer is
 * over `outputHighWater`, the connection stops reading and running requests until 'drain'. A
 * protocol error is answered with "-ERR Protocol error: ..." and closes that connection only.
 *
 * Safety as Redis: a password (AUTH, HELLO 3 AUTH) checked in constant time; protected mode
 * (without a password only loopback clients are served); maxClients; pre-auth request limits.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import os from 'node:os';
import type { ResolvedRespOptions } from '../config.js';
import { CpCapacityError, CpSessionError, InvalidOptionError } from '../errors.js';
import type { Grid } from '../grid.js';
import { NEED, type GridMap } from '../map.js';
import type { RoutedMap } from '../cluster/routed-map.js';
import { ERR_IN_MULTI, REDIS_VERSION, arityOk, errorReply, lookup, runsInRefusedMulti, unknownCommand, type RespClient, type RespContext } from './commands.js';
import type { CoordinationPrimitives, CpSession } from '../cp/primitives.js';
import { isCpName } from '../cluster/metadata/cp-state.js';
import { keyOf } from './keys.js';
import { RespParser } from './parser.js';
import { tryLock, unlock } from '../sync/mutex.js';
import { ReplyWriter } from './reply.js';
import type { UpdateReply } from '../updates.js';
import { ChurnSet } from '../churn.js';

/** Redis's words, then how to lift protected mode here. */
export const DENIED_TEXT =
  'DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. ' +
  'In this mode connections are only accepted from the loopback interface. If you want to connect from external computers, ' +
  'set a password (createGrid({ resp: { password } }), or shardgrid start --resp-password-file <path>), ' +
  'or disable protected mode (resp.protectedMode: false) only on a network you trust.';
export const MAX_CLIENTS_TEXT = 'ERR max number of clients reached';

/** Counters of the endpoint (INFO, metrics). */
export interface RespStats {
  connected: number;
  totalConnections: number;
  rejectedConnections: number;
  commands: number;
  /** Error replies written, whatever wrote them (as Redis's total_error_replies; ReplyWriter counts them). */
  errorReplies: number;
  protocolErrors: number;
  authFailures: number;
  /** Requests that ran while an earlier request of the same connection was still waiting (pipelining; see Connection.run). */
  overlapped: number;
  /** Commands by name (only names of known commands; unknown ones count as 'unknown'). */
  byCommand: Map<string, number>;
}

/** True for an address of the loopback interface (127.0.0.0/8, ::1, and their IPv4-mapped form). */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

export interface RespServerHooks {
  /** Tests: how a connection's address is judged for protected mode (default isLoopback). */
  isLocal?: (address: string | undefined) => boolean;
}

export class RespServer implements RespContext {
  readonly map: GridMap<unknown>;
  readonly getNow: (key: string) => unknown;
  readonly updateNow: ((key: string, kind: string, arg: unknown) => UpdateReply | undefined) | undefined;
  readonly need: unknown = NEED;
  readonly partitions: number;
  readonly maxKeyBytes: number;
  readonly maxReplyBytes: number;
  blocked = 0;
  /**
   * Requests that may still start beside an earlier one (Connection.run), over every connection:
   * options.maxInFlightBytes / maxValueBytes at first, one taken per request until it settles.
   */
  private overlapFree: number;
  /** Connections holding a CP session now (openCpSession). */
  private cpSessions = 0;
  readonly stats: RespStats = { connected: 0, totalConnections: 0, rejectedConnections: 0, commands: 0, errorReplies: 0, protocolErrors: 0, authFailures: 0, overlapped: 0, byCommand: new Map() };
  private readonly server: Server;
  private readonly conns = new Set<Connection>();
  /** Connections that have not authenticated yet (a password is set), oldest first: evicted for a newcomer at maxClients. */
  private readonly unauthenticated = new Set<Connection>();
  private readonly passwordHash: Buffer | undefined;
  private readonly isLocal: (address: string | undefined) => boolean;
  private readonly started = Date.now();
  /** What INFO's stats subtract: their values at the last CONFIG RESETSTAT (the counters themselves, and so the Prometheus metrics, keep counting). */
  private statsBase = { totalConnections: 0, commands: 0, rejectedConnections: 0, expirations: 0, evictions: 0, hits: 0, misses: 0, errorReplies: 0, overlapped: 0 };
  private nextId = 1;
  private bound: AddressInfo | undefined;

  constructor(
    private readonly grid: Grid,
    readonly options: ResolvedRespOptions,
    hooks: RespServerHooks = {},
  ) {
    this.map = grid.map(options.map);
    // a single-process grid reads straight from shared memory with no promise; a cluster member
    // (whose maps are RoutedMaps) does so for the keys it serves and routes the rest
    const m = this.map;
    const routed = m as unknown as RoutedMap<unknown>;
    this.getNow = grid.cluster === undefined ? (k) => m.getLocal(k) : (k) => routed.getServed(k);
    this.updateNow = grid.cluster === undefined ? (k, kind, arg) => m.updateBytesNow(k, kind, arg) : undefined;
    this.partitions = grid.store.partitions;
    this.maxKeyBytes = grid.store.maxKeyBytes;
    this.maxReplyBytes = options.maxReplyBytes;
    this.overlapFree = Math.floor(options.maxInFlightBytes / grid.store.maxValueBytes);
    this.passwordHash = options.password === undefined ? undefined : sha256(Buffer.from(options.password, 'utf8'));
    this.isLocal = hooks.isLocal ?? isLoopback;
    // half-open: a client's FIN must not end our side before the replies to its last requests are
    // written (they wait for the end of the turn, flushLater); Connection.onEnd ends it after them
    this.server = createServer({ noDelay: true, allowHalfOpen: true }, (s) => this.accept(s));
    this.server.on('error', () => undefined);
  }

  /** Listens on options.host:options.port; resolves with the bound address. */
  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => reject(new InvalidOptionError(`options.resp: cannot listen on ${this.options.host}:${this.options.port}: ${e.message}`, { option: 'options.resp.port' }));
      this.server.once('error', onError);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', onError);
        this.bound = this.server.address() as AddressInfo;
        resolve(this.bound);
      });
    });
  }

  /** The address the endpoint listens on (after listen). */
  get address(): { host: string; port: number } {
    const a = this.bound;
    return { host: a?.address ?? this.options.host, port: a?.port ?? this.options.port };
  }

  /** Connections whose replies wait for the end of this event-loop turn (see flushLater). */
  private flushList: Connection[] = [];
  private flushArmed = false;
  private readonly flushAllBound = (): void => this.flushAll();

  /**
   * Writes `c`'s gathered replies once this turn's reads are done (the check phase, after the
   * loop's poll phase has handed every readable socket its data), as Redis writes its replies
   * before it sleeps: a reply written in the middle of the reads wakes its client at once, and
   * those wake-ups made up most of the cost of each write at -c 50 (native-notes, "RESP").
   */
  flushLater(c: Connection): void {
    if (c.flushQueued) return;
    c.flushQueued = true;
    this.flushList.push(c);
    if (!this.flushArmed) {
      this.flushArmed = true;
      setImmediate(this.flushAllBound);
    }
  }

  private flushAll(): void {
    this.flushArmed = false;
    const list = this.flushList;
    this.flushList = [];
    for (const c of list) {
      c.flushQueued = false;
      c.flushNow();
    }
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    for (const c of this.conns) c.socket.destroy();
    await closed;
  }

  private accept(s: Socket): void {
    this.stats.totalConnections++;
    s.on('error', () => undefined);
    if (this.passwordHash === undefined && this.options.protectedMode && !this.isLocal(s.remoteAddress)) {
      this.stats.rejectedConnections++;
      s.end(`-${DENIED_TEXT}\r\n`);
      s.setTimeout(1000, () => s.destroy());
      return;
    }
    if (this.conns.size >= this.options.maxClients && !this.evictUnauthenticated()) {
      this.refuse(s);
      return;
    }
    const c = new Connection(this, s, this.nextId++, this.passwordHash === undefined);
    this.conns.add(c);
    if (!c.authenticated) this.unauthenticated.add(c);
    this.stats.connected++;
    s.once('close', () => {
      this.conns.delete(c);
      this.unauthenticated.delete(c);
      this.stats.connected--;
      c.closed();
    });
  }

  private refuse(s: Socket): void {
    this.stats.rejectedConnections++;
    s.end(`-${MAX_CLIENTS_TEXT}\r\n`);
    s.setTimeout(1000, () => s.destroy());
  }

  /**
   * At maxClients, makes room for a newcomer by closing the oldest connection that has not
   * authenticated (a client that knows the password authenticates in its first round trip): idle
   * connections of a client without the password took every slot and the application's own
   * clients got "max number of clients reached" for as long as they were held (Redis has no
   * timeout for them either). False when every connection has authenticated.
   */
  private evictUnauthenticated(): boolean {
    const oldest = this.unauthenticated.values().next();
    if (oldest.done === true) return false;
    const c = oldest.value;
    this.unauthenticated.delete(c);
    this.conns.delete(c); // its slot is the newcomer's now; 'close' finds it gone
    c.socket.pause(); // nothing more of it is read or run
    this.refuse(c.socket);
    return true;
  }

  /** A connection's loop threw (a defect): logged; the connection is closed (see Connection.kick). */
  loopFailed(c: { id: number }, e: unknown): void {
    this.grid.log('error', `RESP connection ${c.id} closed: its request loop threw (a defect; the member goes on)`, e);
  }

  /** Takes one of the member's places for a request beside others (false: none left; run it after those in flight). */
  takeOverlap(): boolean {
    if (this.overlapFree === 0) return false;
    this.overlapFree--;
    return true;
  }

  /** `n` requests beside others settled: their places are free again. */
  releaseOverlap(n: number): void {
    this.overlapFree += n;
  }

  /** A connection authenticated (AUTH, HELLO … AUTH): it is never evicted for a newcomer. */
  authenticatedNow(c: Connection): void {
    this.unauthenticated.delete(c);
  }

  get clients(): number {
    return this.conns.size;
  }

  /** grid.cp (atomicLong, atomicRef and reads need no owner). */
  get cp(): CoordinationPrimitives {
    return this.grid.cp;
  }

  /**
   * INFO keyspace's avg_ttl, ms: an estimate, as Redis's is (Redis keeps a running average of the
   * keys its expiry cycle samples). The mean time left of up to TTL_SAMPLE_ENTRIES entries of the
   * RESP map with an expiry still to come, read under each partition's lock from up to
   * TTL_SAMPLE_PARTITIONS partitions that hold some (from a random one on), TTL_SAMPLE_SLOTS slots
   * each at most; a partition whose lock is busy is passed over, not waited for. The copies this
   * member holds (on a cluster member, its primaries and backups); 0 when none was found.
   */
  private avgTtl(): number {
    const st = this.grid.store;
    const id = this.map.id;
    const now = Date.now();
    const acc = { sum: 0, n: 0 };
    const start = (Math.random() * st.partitions) | 0;
    let visited = 0;
    for (let k = 0; k < st.partitions && visited < TTL_SAMPLE_PARTITIONS && acc.n < TTL_SAMPLE_ENTRIES; k++) {
      const p = (start + k) % st.partitions;
      if (st.mapTtlCountIn(p, id) <= 0) continue;
      const li = st.lockIndex(p);
      if (!tryLock(st.ci, li)) continue;
      try {
        st.ttlSample(p, id, now, TTL_SAMPLE_ENTRIES - acc.n, TTL_SAMPLE_SLOTS, acc);
      } finally {
        unlock(st.ci, li);
      }
      visited++;
    }
    return acc.n === 0 ? 0 : Math.round(acc.sum / acc.n);
  }

  countRead(hit: boolean): void {
    if (hit) this.grid.store.hit();
    else this.grid.store.miss();
  }

  /** Distinct CP names named through this endpoint (at most options.resp.maxCpNames). */
  private readonly cpNames = new Set<string>();

  cpName(b: Buffer): string {
    // as a key (keyOf): UTF-8 text is the library's name, other bytes a name of their own. Decoded
    // as UTF-8, every name that is not UTF-8 was U+FFFD and so one primitive: CP.LOCK \xff
    // blocked CP.LOCK \xfe, and CP.UNLOCK \xc3 released the lock of \xff
    const name = keyOf(b);
    // a name the CP layer refuses (empty, over 256 bytes) is not counted, nor kept: its call throws
    if (!this.cpNames.has(name) && isCpName(name)) {
      if (this.cpNames.size >= this.options.maxCpNames) {
        throw new CpCapacityError(`RESP clients have named ${this.cpNames.size} distinct CP primitives (options.resp.maxCpNames); '${name.slice(0, 64)}' would be one more`, { limit: 'options.resp.maxCpNames' });
      }
      this.cpNames.add(name);
    }
    return name;
  }

  /** A connection's CP session, within options.resp.maxCpSessions. */
  openCpSession(): CpSession {
    if (this.cpSessions >= this.options.maxCpSessions) {
      throw new CpCapacityError(`${this.cpSessions} RESP connections hold a CP session (options.resp.maxCpSessions); this one cannot open one`, { limit: 'options.resp.maxCpSessions' });
    }
    const s = this.grid.cp.session();
    this.cpSessions++;
    return s;
  }

  closeCpSession(s: CpSession): void {
    this.cpSessions--;
    void s.close().catch(() => undefined);
  }

  checkPassword(user: string, pass: Buffer): boolean | undefined {
    if (this.passwordHash === undefined) return undefined;
    // both sides hashed: equal lengths for timingSafeEqual, and no early exit on length
    const ok = timingSafeEqual(sha256(pass), this.passwordHash) && user === 'default';
    if (!ok) this.stats.authFailures++;
    return ok;
  }

  config(name: string): string | undefined {
    const o = this.options;
    switch (name) {
      case 'maxclients': return String(o.maxClients);
      case 'proto-max-bulk-len': return String(o.maxBulkLength);
      case 'client-query-buffer-limit': return String(o.queryBufferLimit);
      case 'protected-mode': return o.protectedMode ? 'yes' : 'no';
      case 'port': return String(this.address.port);
      case 'bind': return this.address.host;
      case 'databases': return '1';
      case 'save': return '';
      case 'appendonly': return 'no';
      case 'maxmemory': return String(this.grid.stats().bytesLimit);
      case 'maxmemory-policy': return 'allkeys-lru';
      default: return undefined;
    }
  }

  /** CONFIG RESETSTAT: INFO's stats start from zero again, as Redis's do. */
  resetStats(): void {
    const g = this.grid.stats();
    const st = this.stats;
    this.statsBase = {
      totalConnections: st.totalConnections, commands: st.commands, rejectedConnections: st.rejectedConnections, expirations: g.expirations,
      evictions: g.evictions, hits: g.hits, misses: g.misses, errorReplies: st.errorReplies, overlapped: st.overlapped,
    };
  }

  configNames(): string[] {
    return ['maxclients', 'proto-max-bulk-len', 'client-query-buffer-limit', 'protected-mode', 'port', 'bind', 'databases', 'save', 'appendonly', 'maxmemory', 'maxmemory-policy'];
  }

  /** INFO text: the sections asked for ('all', 'default', 'everything' or one name; none: default). */
  async info(sections: readonly string[]): Promise<string> {
    // no section: the default set; INFO a b (Redis 7) gives each section named, unknown ones none
    const all = sections.length === 0 || sections.some((x) => x === 'all' || x === 'default' || x === 'everything');
    const want = (s: string): boolean => all || sections.includes(s);
    const g = this.grid.stats();
    const st = this.stats;
    const parts: string[] = [];
    const block = (name: string, rows: Array<[string, string | number]>): void => {
      parts.push(`# ${name}\r\n${rows.map(([k, v]) => `${k}:${v}`).join('\r\n')}\r\n`);
    };
    if (want('server')) {
      block('Server', [
        ['redis_version', REDIS_VERSION],
        ['shardgrid_version', SHARDGRID_VERSION],
        ['redis_mode', 'standalone'],
        ['os', `${os.type()} ${os.release()} ${os.arch()}`],
        ['arch_bits', process.arch.endsWith('64') ? 64 : 32],
        ['process_id', process.pid],
        ['tcp_port', this.address.port],
        ['uptime_in_seconds', Math.floor((Date.now() - this.started) / 1000)],
        ['uptime_in_days', Math.floor((Date.now() - this.started) / 86_400_000)],
        ['executable', process.execPath],
      ]);
    }
    if (want('clients')) {
      block('Clients', [
        ['connected_clients', this.conns.size],
        ['maxclients', this.options.maxClients],
        ['blocked_clients', this.blocked],
      ]);
    }
    if (want('memory')) {
      block('Memory', [
        ['used_memory', g.bytesUsed],
        ['used_memory_human', human(g.bytesUsed)],
        ['used_memory_dataset', g.liveBytes],
        ['maxmemory', g.bytesLimit],
        ['maxmemory_human', human(g.bytesLimit)],
        ['maxmemory_policy', 'allkeys-lru'],
      ]);
    }
    if (want('persistence')) block('Persistence', [['loading', 0], ['rdb_changes_since_last_save', 0], ['aof_enabled', 0]]);
    if (want('stats')) {
      const b = this.statsBase;
      block('Stats', [
        ['total_connections_received', st.totalConnections - b.totalConnections],
        ['total_commands_processed', st.commands - b.commands],
        ['rejected_connections', st.rejectedConnections - b.rejectedConnections],
        ['expired_keys', g.expirations - b.expirations],
        ['evicted_keys', g.evictions - b.evictions],
        ['keyspace_hits', g.hits - b.hits],
        ['keyspace_misses', g.misses - b.misses],
        ['total_error_replies', st.errorReplies - b.errorReplies],
        // not Redis's: pipelined requests that ran beside an earlier one still waiting
        ['shardgrid_overlapped_commands', st.overlapped - b.overlapped],
      ]);
    }
    if (want('replication')) block('Replication', [['role', 'master'], ['connected_slaves', 0]]);
    if (want('keyspace')) {
      const [keys, expires] = await Promise.all([this.map.size(), this.map.expiring()]);
      parts.push(keys > 0 ? `# Keyspace\r\ndb0:keys=${keys},expires=${expires},avg_ttl=${expires > 0 ? this.avgTtl() : 0}\r\n` : '# Keyspace\r\n');
    }
    return parts.join('\r\n');
  }
}

/** avg_ttl's sample: entries at most, partitions visited at most, slots read per partition at most. */
const TTL_SAMPLE_ENTRIES = 100;
const TTL_SAMPLE_PARTITIONS = 32;
const TTL_SAMPLE_SLOTS = 1024;

const SHARDGRID_VERSION = '0.1.0';

const sha256 = (b: Buffer): Buffer => createHash('sha256').update(b).digest();

function human(n: number): string {
  const u = ['B', 'K', 'M', 'G', 'T'];
  let i = 0;
  let x = n;
  while (x >= 1024 && i < u.length - 1) {
    x /= 1024;
    i++;
  }
  return `${i === 0 ? x : x.toFixed(2)}${u[i]}`;
}

class Connection implements RespClient {
  readonly out: ReplyWriter;
  name = '';
  inRefusedMulti = false;
  private readonly parser: RespParser;
  private readonly queue: Buffer[][] = [];
  private head = 0;
  private running = false;
  private closing = false;
  /** The protocol error that ends this connection once the requests before it are answered. */
  private fatal: string | undefined;
  private waitingDrain = false;
  private inputPaused = false;
  /** In the server's list of connections to flush at the end of this turn. */
  flushQueued = false;
  /** The client ended its side (FIN): ours ends once every request it sent is answered. */
  private peerEnded = false;
  /** Holds this connection's locks and permits (CP.*): opened on first use, closed with the socket. */
  private session: CpSession | undefined;
  /** The socket closed: no session may open any more. */
  private gone = false;
  /** Requests running at once behind the first (see run()), in request order, and their keys. */
  private inFlight: Array<{ r: Promise<void> | undefined; w: ReplyWriter | undefined }> = [];
  private readonly inFlightKeys = new ChurnSet<string>();
  /** Most requests in flight at once now: outputHighWater / replyMax (see learn()). */
  private window = FIRST_WINDOW;
  /** Bytes of the largest reply of a round in flight, halved at each round whose replies are smaller. */
  private replyMax = 0;
  /** out.total when the first request in flight (which replies into out) started. */
  private headMark = 0;

  constructor(
    private readonly srv: RespServer,
    readonly socket: Socket,
    readonly id: number,
    authenticated: boolean,
  ) {
    const o = srv.options;
    this.out = new ReplyWriter(srv.stats);
    this.parser = new RespParser({ maxBulk: o.maxBulkLength, maxMultibulk: o.maxMultibulkLength, queryBufferLimit: o.queryBufferLimit }, authenticated);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.onDrain());
    socket.on('end', () => this.onEnd());
  }

  get authenticated(): boolean {
    return this.parser.authenticated;
  }

  set authenticated(v: boolean) {
    this.parser.authenticated = v;
    if (v) this.srv.authenticatedNow(this);
  }

  setProto(v: 2 | 3): void {
    this.out.proto = v;
  }

  quit(): void {
    this.out.ok();
    this.endAfterReplies();
  }

  /** QUIT (also of a request running beside others, Beside): the connection ends once its replies are written. */
  endAfterReplies(): void {
    this.closing = true;
  }

  cpSession(): CoordinationPrimitives {
    if (this.gone) throw new CpSessionError('the connection closed');
    return (this.session ??= this.srv.openCpSession());
  }

  /** The socket closed: what this connection holds is released, and its waits end. */
  closed(): void {
    this.gone = true;
    if (this.session !== undefined) this.srv.closeCpSession(this.session);
  }

  private onData(chunk: Buffer): void {
    if (this.closing || this.fatal !== undefined) return;
    let err = this.parser.feed(chunk, this.queue);
    // before AUTH the parser stops behind an AUTH or HELLO: run it (every request before AUTH
    // replies in the call), then read on with the limits it left, as Redis reads one at a time
    while (err === undefined && this.parser.stopped && !this.running) {
      this.kick();
      if (this.running || this.closing || this.fatal !== undefined) break;
      err = this.parser.feed(EMPTY_CHUNK, this.queue);
    }
    if (this.queue.length - this.head > MAX_QUEUED) {
      // requests arrive faster than they run (routed calls): stop reading until the queue drains
      this.inputPaused = true;
      this.socket.pause();
    }
    if (err !== undefined) {
      this.fatal = err;
      this.srv.stats.protocolErrors++;
      this.socket.pause();
    }
    if (!this.running) this.kick();
  }

  private onEnd(): void {
    this.peerEnded = true;
    if (this.running) return; // run() ends the socket after its last reply
    this.flushNow();
    this.socket.end();
  }

  private onDrain(): void {
    if (!this.waitingDrain) return;
    this.waitingDrain = false;
    if (this.fatal === undefined && !this.closing) this.socket.resume();
    if (!this.running) this.kick();
  }

  /**
   * Starts run(); whatever it throws closes this connection only, giving back the member's places
   * its requests in flight held: a throw out of run() was an unhandled rejection, which ended the
   * member's process (a 512 MiB key, overlapKey).
   */
  private kick(): void {
    this.run().catch((e: unknown) => {
      this.srv.loopFailed(this, e);
      const left = this.inFlight.length;
      this.inFlight = [];
      this.inFlightKeys.clear();
      if (left > 1) this.srv.releaseOverlap(left - 1);
      this.closing = true;
      this.socket.destroy();
    });
  }

  /**
   * Runs queued requests; stops at a full output buffer (resumed by 'drain'). Replies always go
   * out in request order. A request that waits (a key whose primary is another member, a write
   * waiting for its backup) does not hold up the single-key requests pipelined behind it on other
   * keys: up to `window` of those run at once (MAX_IN_FLIGHT at most, fewer when replies are
   * large: learn()), each replying into its own writer, absorbed into the connection's output in
   * order, and each taking one of the member's places (RespServer.takeOverlap, from
   * options.maxInFlightBytes). A request on a key already in flight, any other request, and one
   * that finds the window or the member's places full first waits for everything in flight: per
   * key, requests apply in the order sent.
   */
  private async run(): Promise<void> {
    this.running = true;
    const out = this.out;
    const s = this.socket;
    try {
      for (;;) {
        while (this.head < this.queue.length && !this.closing && !this.waitingDrain) {
          const argv = this.queue[this.head];
          const key = this.inFlight.length === 0 ? undefined : overlapKey(argv, this.srv.maxKeyBytes);
          if (this.inFlight.length > 0 && (key === undefined || this.inFlightKeys.has(key) || this.inFlight.length >= this.window || !this.srv.takeOverlap())) {
            await this.settleInFlight();
            continue;
          }
          this.queue[this.head++] = EMPTY_ARGV;
          if (this.inFlight.length === 0) {
            const r = this.exec(argv, this);
            if (r !== undefined) {
              const k = overlapKey(argv, this.srv.maxKeyBytes);
              if (k !== undefined) this.track(k, r, undefined);
              else await this.answered(r, out);
            }
          } else {
            // behind a request in flight: reply into a writer of its own
            this.srv.stats.overlapped++;
            const w = new ReplyWriter(this.srv.stats);
            w.proto = out.proto;
            const r = this.exec(argv, new Beside(this, w));
            this.track(key!, r, w);
          }
          if (this.head === this.queue.length && this.inFlight.length > 0) await this.settleInFlight();
          if (out.pending >= FLUSH_AT) this.flushNow();
          else if (this.head === this.queue.length) this.srv.flushLater(this);
        }
        // stopped with requests in flight (output over outputHighWater, QUIT, or all started): settle
        // them, then look again: a 'drain' while they settled found run() busy (onDrain starts
        // nothing then), and with no second look the requests still queued waited for data the
        // client had already sent (its replies stopped for good)
        if (this.inFlight.length === 0) break;
        await this.settleInFlight();
      }
      if (this.head === this.queue.length) {
        this.queue.length = 0;
        this.head = 0;
        if (this.inputPaused && !this.waitingDrain && this.fatal === undefined && !this.closing) {
          this.inputPaused = false;
          s.resume();
        }
      }
      const answered = this.head === this.queue.length;
      if (this.fatal !== undefined && answered && !this.closing) {
        out.error(`ERR ${this.fatal}`);
        this.flushNow();
        this.closing = true;
        s.end();
        s.setTimeout(1000, () => s.destroy());
      } else if (this.closing || (this.peerEnded && answered)) {
        this.flushNow();
        s.end();
      } else if (this.fatal !== undefined) this.flushNow();
      else if (out.pending > 0) this.srv.flushLater(this);
    } finally {
      this.running = false;
    }
  }

  /** Writes the replies gathered so far; a client that does not read its replies stops being read. */
  flushNow(): void {
    const s = this.socket;
    if (s.destroyed || !s.writable) return;
    if (!this.out.flush(s) && s.writableLength > this.srv.options.outputHighWater) {
      // the client is not reading its replies: stop reading its requests until it does
      this.waitingDrain = true;
      s.pause();
    }
  }

  /**
   * Settles with a request's reply promise; a rejection becomes an error reply in `w`. One
   * reaction, not an async function (a promise, its context and a resumption per request: a
   * tenth of what a cluster member's SET allocated at -P 16).
   */
  private answered(r: Promise<void>, w: ReplyWriter): Promise<void> {
    return r.then(undefined, (e: unknown) => {
      w.error(errorReply(e));
    });
  }

  /** A request now in flight on `key`; `w`: its own writer (undefined: it writes to the connection's). */
  private track(key: string, r: void | Promise<void>, w: ReplyWriter | undefined): void {
    if (w === undefined) this.headMark = this.out.total;
    this.inFlight.push({ r: r === undefined ? undefined : this.answered(r, w ?? this.out), w });
    this.inFlightKeys.add(key);
  }

  /**
   * Waits for every request in flight, in order, moving each reply into the connection's output;
   * the largest reply of the round sizes the next round (learn).
   */
  private async settleInFlight(): Promise<void> {
    const all = this.inFlight;
    this.inFlight = [];
    this.inFlightKeys.clear();
    let largest = 0;
    try {
      for (const f of all) {
        if (f.r !== undefined) await f.r;
        if (f.w === undefined) largest = Math.max(largest, this.out.total - this.headMark);
        else {
          largest = Math.max(largest, f.w.pending);
          this.out.absorb(f.w);
        }
      }
    } finally {
      // every entry but the first ran beside others and took a place of the member's (takeOverlap):
      // given back however the round ended, or the member would lose places for good
      this.srv.releaseOverlap(all.length - 1);
    }
    this.learn(largest);
  }

  /**
   * Sizes the window from the replies seen: a round may start as many requests as replies of the
   * largest size seen fit in outputHighWater (1 to MAX_IN_FLIGHT). A reply's size is known only
   * once it arrives, and the replies of a round are written before outputHighWater is looked at,
   * so a round of W requests holds W replies: 128 x 1 MiB for a client that read nothing
   * (native-notes, "RESP"). The largest size is halved at each round whose replies are smaller,
   * so one large reply does not keep a connection at one request per round.
   */
  private learn(largest: number): void {
    this.replyMax = Math.max(largest, Math.floor(this.replyMax / 2));
    const fit = Math.floor(this.srv.options.outputHighWater / Math.max(1, this.replyMax));
    this.window = Math.max(1, Math.min(MAX_IN_FLIGHT, fit));
  }

  /** Runs one request: undefined when it replied synchronously, else the promise of its reply. */
  private exec(argv: Buffer[], client: RespClient): void | Promise<void> {
    const stats = this.srv.stats;
    stats.commands++;
    const spec = lookup(argv[0]);
    if (spec === undefined) {
      count(stats, 'unknown');
      if (this.inRefusedMulti && this.authenticated) return client.out.error(ERR_IN_MULTI);
      // Redis 7 looks the command up and checks its argument count before authentication
      // (7.0.15: FOO and a bare GET answer these errors to a client that has not authenticated)
      return client.out.errorBytes(unknownCommand(argv));
    }
    count(stats, spec.name);
    if (!this.authenticated && spec.noAuth !== true) {
      return client.out.error(arityOk(spec, argv.length) ? 'NOAUTH Authentication required.' : `ERR wrong number of arguments for '${spec.name}' command`);
    }
    if (this.inRefusedMulti && !runsInRefusedMulti(spec.name)) return client.out.error(ERR_IN_MULTI);
    if (!arityOk(spec, argv.length)) {
      return client.out.error(`ERR wrong number of arguments for '${spec.name}' command`);
    }
    try {
      return spec.run(this.srv, client, argv);
    } catch (e) {
      client.out.error(errorReply(e));
    }
  }
}

/**
 * The connection as a request running beside others in flight sees it: everything is the
 * connection's but the writer, which is the request's own (absorbed in request order). A class of
 * its own rather than Object.create(connection, { out }): that cost a third of Connection.run's
 * time at -P 16 on a cluster member, and gave every command a client of a new shape.
 */
class Beside implements RespClient {
  constructor(private readonly c: Connection, readonly out: ReplyWriter) {}
  get id(): number {
    return this.c.id;
  }
  get name(): string {
    return this.c.name;
  }
  set name(v: string) {
    this.c.name = v;
  }
  get authenticated(): boolean {
    return this.c.authenticated;
  }
  set authenticated(v: boolean) {
    this.c.authenticated = v;
  }
  get inRefusedMulti(): boolean {
    return this.c.inRefusedMulti;
  }
  set inRefusedMulti(v: boolean) {
    this.c.inRefusedMulti = v;
  }
  setProto(v: 2 | 3): void {
    this.c.setProto(v);
  }
  quit(): void {
    this.out.ok();
    this.c.endAfterReplies();
  }
  cpSession(): CoordinationPrimitives {
    return this.c.cpSession();
  }
}

function count(stats: RespStats, name: string): void {
  stats.byCommand.set(name, (stats.byCommand.get(name) ?? 0) + 1);
}

const EMPTY_ARGV: Buffer[] = [];
const EMPTY_CHUNK = Buffer.alloc(0);
/** Most requests of one connection running at once (see Connection.run). */
const MAX_IN_FLIGHT = 128;
/**
 * Requests a connection's first round may run at once, before any reply has sized its window
 * (Connection.learn): as many as redis-benchmark -P 16 pipelines; 16 x maxValueBytes at most.
 */
const FIRST_WINDOW = 16;

/**
 * The key of a request that may run beside others in flight: a known single-key command (its
 * key is argv[1]); undefined for anything else (multi-key, connection and server commands), and
 * for a key over maxKeyBytes, which no map holds (it runs alone, and is refused or answered nil):
 * such a key was made a string here, before any check, and one of 512 MiB (maxBulkLength allows
 * it) threw ERR_STRING_TOO_LONG out of Connection.run, which ended the member's process.
 */
function overlapKey(argv: Buffer[], maxKeyBytes: number): string | undefined {
  if (argv.length < 2 || argv[1].length > maxKeyBytes) return undefined;
  const spec = lookup(argv[0]);
  if (spec === undefined || spec.firstKey !== 1 || spec.lastKey !== 1) return undefined;
  return argv[1].toString('latin1');
}
/** Parsed requests a connection may have waiting before it stops reading. */
const MAX_QUEUED = 4096;
/** Replies gathered beyond this many bytes are written before the next request runs. */
const FLUSH_AT = 64 * 1024;
