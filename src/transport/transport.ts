/**
 * Member-to-member transport: one authenticated WebSocket per pair of members, carrying requests,
 * replies and one-way notifications, coalesced per tick into BATCH frames (see wire.ts).
 *
 * Security (SECURITY.md): a new TCP connection is admitted against per-address and total caps on
 * unauthenticated connections and must upgrade and send HELLO within helloTimeout; until the
 * fixed-layout handshake completes ws accepts messages of at most preAuthMaxBytes and no msgpack
 * decoder runs; upgrades and handshake frames wait in a queue worked off in slices of
 * PRE_AUTH_SLICE_MS per event-loop turn and at most PRE_AUTH_SHARE of the thread's time, so open
 * links never wait behind a flood of handshakes.
 * The handshake binds the dialled url (and, on TLS, the TLS connection's exporter value); after it
 * every frame is sealed with per-direction AES-256-GCM session keys (FrameCipher), or on TLS
 * carried by the TLS records the handshake is bound to, and a BATCH is scanned (scanMsgpack)
 * before it is decoded. Peer-caused log lines are escaped (safeText) and rate-limited (peerLog), and a
 * failure while handling a frame closes only that link.
 *
 * Life of a request: request() pushes (REQUEST, id, type, body) onto the peer's open batch and,
 * once per tick, a setImmediate flush encodes the whole batch once and hands it to ws. The
 * receiver validates the whole frame, then runs the handlers; synchronous results go onto its own
 * batch towards the requester and leave in one frame at the end of the tick.
 *
 * The hot map operations travel as FAST frames (fast.ts): binary records written straight into a
 * per-connection frame (FastPeer.room) and answered by a FastServer, with no per-operation object
 * encoded. FAST and BATCH frames of one connection leave in the order their messages were queued
 * (one queue per connection; a FAST message after a BATCH message starts a new frame, and the
 * reverse), so ordering holds across both kinds, e.g. replicated writes and partition snapshots.
 *
 * Request deadlines: a request with the default timeout costs no timer (nor a clock read): it
 * takes the next number of a transport-wide sequence, and one interval timer, every quarter of
 * requestTimeout, notes the sequence reached and expires the requests numbered before the note
 * taken four ticks earlier, so such a request fails between 1 and 1.25 requestTimeout after it
 * was made. A request with another timeout keeps a timer of its own.
 *
 * One connection per pair: if both members dial each other at once, the connection dialled by
 * the smaller memberId is kept (each side decides alone, with the same rule, when the second
 * handshake completes) and the other is closed with CLOSE_DUPLICATE; the loser's connect()
 * resolves when the winning connection opens.
 */
import { LatencyHistogram } from './latency.js';
import { principalOf, principalOfId, principalOfPem } from './identity.js';
import { createLog } from '../log.js';
import { isIP } from 'node:net';
import { MEMBER_URL_FORM, isHostPort, isMemberUrl } from '../config.js';
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import WebSocket, { WebSocketServer } from 'ws';
import {
  AuthenticationError,
  FrameLimitError,
  GridClosedError,
  IntegrityError,
  GridError,
  InternalError,
  InvalidArgumentError,
  MemberLeftError,
  MemberUnreachableError,
  ProtocolError,
  TimeoutError,
  UnencodableValueError,
  UnsupportedError,
  ValueTooLargeError,
  errorFromWire,
  errorToWire,
  type WireError,
} from '../errors.js';
import {
  FAST_FRAME_BYTES,
  FAST_MAGIC,
  FastMap,
  FastReader,
  FastWriter,
  MAX_FAST_ID,
  MAX_LINK_MAPS,
  MAX_MGET_KEYS,
  MAX_NAME_BYTES,
  O_GET,
  O_MAP,
  O_MGET,
  O_REP,
  O_SET,
  R_OK,
  R_STATE,
  R_STATES,
  validateFast,
} from './fast.js';
import {
  CLOSE_AUTH,
  CLOSE_DISCONNECT,
  CLOSE_DUPLICATE,
  CLOSE_GOING_AWAY,
  CLOSE_HANDSHAKE_TIMEOUT,
  CLOSE_UNRESPONSIVE,
  CLOSE_INTEGRITY,
  CLOSE_PROTOCOL,
  CLOSE_SAME_ID,
  CLOSE_TOO_BIG,
  CLOSE_WRONG_URL,
  CHANNEL_BINDING_BYTES,
  CHANNEL_BINDING_LABEL,
  F_AUTH,
  F_BATCH,
  F_CHALLENGE,
  F_HELLO,
  F_WELCOME,
  FrameCipher,
  K_ERROR,
  K_NOTIFY,
  K_REPLY,
  K_REQUEST,
  MAX_HANDSHAKE_BYTES,
  MAX_ID_CHARS,
  STRIDE,
  TAG_BYTES,
  type Transcript,
  encodeChallenge,
  encodeHello,
  encodeProof,
  isMemberIdName,
  nonce,
  packr,
  parseChallenge,
  parseHello,
  parseProof,
  proof,
  proofMatches,
  safeText,
  scanMsgpack,
  sessionKeys,
  unpackr,
} from './wire.js';

export type LogFn = (level: 'info' | 'warn' | 'error', message: string, err?: unknown) => void;

/** Mutual TLS: PEM strings or buffers. The listener requests a client certificate and verifies it (and the dialler the server's) against `ca`. */
export interface TlsOptions {
  /** This side's private key. */
  key: string | Buffer;
  /** This side's certificate. */
  cert: string | Buffer;
  /** The CA certificate (or certificates) the other side's certificate is verified against. */
  ca: string | Buffer | Array<string | Buffer>;
}

export interface TransportOptions {
  /** Bind address, e.g. '127.0.0.1'. */
  host: string;
  /** 0 = pick a free port. */
  port: number;
  /** 'host:port' that peers dial to reach this transport (its `url`), when it differs from host and the bound port. */
  advertise?: string;
  /** Local address outbound connections are made from (Redis's bind-source-addr); default: chosen by the OS. */
  sourceAddress?: string;
  /** Shared cluster secret (non-empty). */
  secret: string;
  /** This member's unique id. */
  memberId: string;
  /** Largest frame in bytes (after authentication), both ways; a bigger incoming frame closes the connection. Default 64 MiB. */
  maxPayload?: number;
  /** Largest message a peer may send before it has authenticated (a handshake frame is at most ~3 KiB). Default 4 KiB. */
  preAuthMaxBytes?: number;
  /** How long a new TCP connection may take to upgrade and send HELLO, ms. Default 1000 (capped by handshakeTimeout). */
  helloTimeout?: number;
  /** Unauthenticated connections (raw TCP, upgrading, mid-handshake) allowed from one source address at once; more are dropped. Default 8. */
  maxHandshakesPerAddress?: number;
  /** All TCP connections to the member port at once (server.maxConnections), authenticated ones included. Default 1024. */
  maxConnections?: number;
  /** Values in one BATCH frame (msgpack elements, keys included). Default 2,097,152. */
  maxFrameElements?: number;
  /** Nesting of one BATCH frame. Default 64. */
  maxFrameDepth?: number;
  /** Keys of one FAST MGET record. Default 1,048,576. */
  maxMgetKeys?: number;
  /** Mutual TLS on the member port and on outbound connections (urls become wss://). Default: off (frames are still sealed). */
  tls?: TlsOptions;
  /** Default timeout of request(), ms. Default 5000. */
  requestTimeout?: number;
  /**
   * A link on which a replicated write or a lease renewal has waited this long, with no reply of
   * any kind from that peer meanwhile, is closed as unresponsive: its requests fail at once with
   * MemberUnreachableError instead of at their timeout (a blackholed or one-way partitioned peer
   * would otherwise hold every write that waits for it for requestTimeout). ms; default 2000.
   */
  unresponsiveMs?: number;
  /** How long an incoming connection may take to authenticate, ms. Default 2000. */
  handshakeTimeout?: number;
  /** Above this many bytes buffered on a socket, frames wait in the queue until it drains. Default 8 MiB. */
  maxBuffered?: number;
  /**
   * Bytes that may wait in a link's queue while its socket is over maxBuffered (the peer reads
   * nothing, or too slowly: Redis's client-output-buffer-limit); one more closes the link
   * (GRID_ERR_MEMBER_UNREACHABLE for its requests). At least maxPayload. Default 2 × maxPayload.
   */
  maxQueued?: number;
  /** Unauthenticated incoming connections allowed at once, from all addresses; more are dropped. Default 64. */
  maxHandshakes?: number;
  /** Default: 'warn' and 'error' as process warnings (each kind once), 'info' dropped (log.ts). */
  log?: LogFn;
}

export type Handler = (body: any, from: string) => unknown | Promise<unknown>;

const DEFAULTS = Object.freeze({
  maxPayload: 64 * 1024 * 1024,
  requestTimeout: 5000,
  unresponsiveMs: 2000,
  handshakeTimeout: 2000,
  maxBuffered: 8 * 1024 * 1024,
  maxHandshakes: 64,
  preAuthMaxBytes: 4096,
  helloTimeout: 1000,
  maxHandshakesPerAddress: 8,
  maxConnections: 1024,
  maxFrameElements: 2 * 1024 * 1024,
  maxFrameDepth: 64,
  maxMgetKeys: MAX_MGET_KEYS,
});

/** Peer-caused log lines: a burst of LOG_BURST, then one per LOG_REFILL_MS; the rest are counted and reported once. */
const LOG_BURST = 20;
const LOG_REFILL_MS = 500;
/** Longest peer-supplied string (id, url, type, close reason) quoted in a log line. */
const LOG_TEXT_CHARS = 80;

/** Messages per BATCH frame before a new frame is started (bounds encode size and latency). */
const MAX_BATCH_MESSAGES = 4096;
const MAX_BATCH_ITEMS = 1 + MAX_BATCH_MESSAGES * STRIDE;
/** Slots of a connection's PendingTable ring (a power of 2). */
const PENDING_RING = 1024;
/** Sweeps per requestTimeout (see the header: a request expires 1 to 1 + 1/SWEEP_TICKS timeouts after it was made). */
const SWEEP_TICKS = 4;
/**
 * Request kinds whose lateness holds writes, leases or clients (see unresponsiveMs): FAST GET,
 * SET, MGET and REP, generic grid.rep, lease renewals. Other requests (a compute, a snapshot
 * chunk) may keep a peer's main thread busy for long.
 */
const LIVE_KINDS: ReadonlySet<string> = new Set(['get', 'set', 'mget', 'rep', 'grid.rep', 'meta.lease']);
/** Liveness checks per unresponsiveMs. */
const LIVE_TICKS = 8;
/** After close() sends close frames, sockets that have not closed are destroyed after this long. */
const CLOSE_GRACE_MS = 250;
/** While a socket is over maxBuffered, also re-check this often in case 'drain' is missed. */
const DRAIN_POLL_MS = 20;
/**
 * Pre-authentication work (WebSocket upgrades and handshake frames) waits in a queue that is
 * worked off in slices of at most this many ms, one slice per event-loop turn, so frames of open
 * links (handled as they are read) never wait behind more than one slice of other peers'
 * handshakes however many connections are opened.
 */
const PRE_AUTH_SLICE_MS = 1;
/**
 * While it has a backlog, the pre-auth queue gets at most this share of the thread's time: its
 * slices spend from a token bucket (PRE_AUTH_BURST_MS, refilled at PRE_AUTH_SHARE ms per ms of
 * wall time); when the bucket is spent, the next slice waits on a timer until it is refilled. A
 * slice per turn alone would still let a flood of connections take most of a busy loop (the
 * turns of a member serving many links are only a few ms long, so 1 ms a turn was 20-25 % of the
 * fuzzed member's time, and the fuzzer's authenticated lanes reconnect as fast as handshakes
 * complete); the bucket bounds that to the share, and the burst still lets a member's handshake
 * (well under 1 ms of work) through at once when there is no flood. Over any span T the queue works
 * at most PRE_AUTH_BURST_MS + PRE_AUTH_SHARE * T plus one slice (the last one's overshoot).
 */
const PRE_AUTH_SHARE = 0.05;
const PRE_AUTH_BURST_MS = 5;
/**
 * A spent bucket is checked again after at most this long. The time the loop sat idle meanwhile
 * (nothing else wanted the thread) is credited to the bucket, so the share binds only while open
 * links or other work compete for the thread: a flood against an otherwise idle member is worked
 * off at close to full speed, and a member joining during it is not held up for nothing.
 */
const PRE_AUTH_WAIT_MS = 2;
/** Member urls remembered for urlOf (the most recently connected ids). */
const MAX_REMEMBERED_URLS = 4096;
/** Messages a link may have waiting in that queue; a peer that pipelines more before authenticating is cut off. */
const MAX_PRE_AUTH_QUEUED = 8;
/**
 * Fairness among open links. ws hands over every message of a socket read at once (a read is up
 * to 64 KiB, hundreds of small frames), so without a bound one link pipelining frames would hold
 * the thread for all of them while every other link's frames wait unread. Instead a link's frames
 * are handled as they are read only until they have taken LINK_SLICE_MS of the current event-loop
 * turn (a frame is never cut: the first one of a turn always runs); the rest wait in the link's
 * own queue (`inq`) with its socket paused, and the queued links are worked off round-robin in
 * the check phase, each at most LINK_SLICE_MS per turn and all of them together at most
 * FAIR_DRAIN_MS per turn (plus the last link's slice). Between two such drains the loop polls the
 * sockets again, so a link with a frame waiting is served within one turn of at most
 * FAIR_DRAIN_MS of queued work plus one slice of each other link read in the same poll, however
 * many links flood. With nothing else to do, the loop turns at once, so a link alone is not slowed.
 */
const LINK_SLICE_MS = 0.5;
const FAIR_DRAIN_MS = 2;

// link states
const S_DIAL = 0; // outbound, waiting for the socket to open
const S_HELLO = 1; // inbound, waiting for HELLO
const S_CHALLENGE = 2; // outbound, HELLO sent, waiting for CHALLENGE
const S_AUTH = 3; // inbound, CHALLENGE sent, waiting for AUTH
const S_WELCOME = 4; // outbound, AUTH sent, waiting for WELCOME
const S_OPEN = 5;
const S_CLOSED = 6;

const zeroMask = (mask: Buffer): Buffer => mask.fill(0);
const NO_CONTEXT = Buffer.alloc(0);

/** A request waiting for its reply: a BATCH request (GenericCall) or a FAST one (FastCall). */
interface Waiter {
  readonly fast: boolean;
  /** What the request is, for the latency histogram: `get`, `set`, `rep`, … or the message type. */
  readonly kind: string;
  /** When it was sent (performance.now; set by PendingTable). */
  t0: number;
  /** Request id (set by PendingTable). */
  id: number;
  /** Sequence number of a request with the default timeout (see the header); 0 when it has its own timer. */
  seq: number;
  readonly timer?: NodeJS.Timeout;
  reject(e: unknown): void;
}

class GenericCall implements Waiter {
  readonly fast = false;
  id = 0;
  seq = 0;
  t0 = 0;
  timer: NodeJS.Timeout | undefined = undefined;
  constructor(
    readonly kind: string,
    readonly resolve: (v: any) => void,
    readonly reject: (e: unknown) => void,
  ) {}
}

/**
 * A FAST request waiting for its reply record. Subclasses read their result from the reply
 * (`settle`, called with the reader on the reply: R_STATE / R_OK / R_STATES as `reply` says) or
 * get the error (`reject`: an ERROR reply, a timeout, the connection closing).
 */
export abstract class FastCall implements Waiter {
  id = 0;
  seq = 0;
  t0 = 0;
  abstract readonly kind: string;
  get fast(): boolean {
    return true;
  }
  abstract readonly reply: number;
  abstract settle(r: FastReader): void;
  abstract reject(e: unknown): void;
}

/**
 * The requests of one connection waiting for replies, by id: a ring of PENDING_RING slots indexed
 * by the low bits of the id (ids are sequential, so with fewer requests in flight every request
 * has a slot, and a request costs no hash-table insert, delete or rehash), and a Map for the rare
 * request whose slot is still taken by one PENDING_RING requests older.
 */
class PendingTable {
  /** Made at the first request, so a connection that never authenticates costs no ring. */
  private ring: Array<Waiter | undefined> = [];
  private readonly more = new Map<number, Waiter>();
  size = 0;

  set(id: number, w: Waiter): void {
    w.id = id;
    w.t0 = performance.now();
    if (this.ring.length === 0) this.ring = new Array<Waiter | undefined>(PENDING_RING).fill(undefined);
    const i = id & (PENDING_RING - 1);
    if (this.ring[i] === undefined) this.ring[i] = w;
    else this.more.set(id, w);
    this.size++;
  }

  get(id: number): Waiter | undefined {
    const w = this.ring[id & (PENDING_RING - 1)];
    if (w !== undefined && w.id === id) return w;
    return this.more.size > 0 ? this.more.get(id) : undefined;
  }

  delete(id: number): void {
    const i = id & (PENDING_RING - 1);
    const w = this.ring[i];
    if (w !== undefined && w.id === id) this.ring[i] = undefined;
    else if (!this.more.delete(id)) return;
    this.size--;
  }

  /** Every waiting request, in no particular order. */
  values(): Waiter[] {
    const out: Waiter[] = [];
    if (this.size === 0) return out;
    for (const w of this.ring) if (w !== undefined) out.push(w);
    for (const w of this.more.values()) out.push(w);
    return out;
  }

  clear(): void {
    this.ring.fill(undefined);
    this.more.clear();
    this.size = 0;
  }
}

/** One open connection as seen by FAST senders and servers. */
export interface FastPeer {
  /** Remote member id. */
  readonly id: string;
  /** False once the connection closed: nothing written to it is sent. */
  readonly isOpen: boolean;
  /** Largest record a FAST frame can carry on this connection (maxPayload - 1; a record over FAST_FRAME_BYTES goes alone in its frame). */
  readonly maxRecord: number;
  /** Index of map `name` on this connection, naming it first (a MAP record) when new; -1 when the connection has named too many maps. */
  mapIndex(name: string): number;
  /**
   * The open FAST frame with at least n free bytes (n <= maxRecord); the frame is flushed at the
   * end of the tick. `reply`: the record answers the peer's request (counted against maxQueued).
   */
  room(n: number, reply?: boolean): FastWriter;
  /** Registers a FAST request (default timeout) and returns its id; write its record right after. */
  call(c: FastCall): number;
  /** Answers request `id` with an ERROR message. */
  replyError(id: number, err: unknown): void;
}

/** Serves FAST requests. Each call answers now or later (peer.room / peer.replyError) or throws (sent as the error reply). */
export interface FastServer {
  get(peer: FastPeer, r: FastReader): void;
  set(peer: FastPeer, r: FastReader): void;
  mget(peer: FastPeer, r: FastReader): void;
  rep(peer: FastPeer, r: FastReader): void;
}

/** An unauthenticated inbound TCP connection, counted against maxHandshakes and maxHandshakesPerAddress. */
interface Slot {
  readonly socket: Socket;
  readonly addr: string;
  readonly key: string;
  readonly timer: NodeJS.Timeout;
  link: Link | undefined;
  hello: boolean;
  released: boolean;
}

interface Dial {
  resolve: (id: string) => void;
  reject: (e: unknown) => void;
  deadline: NodeJS.Timeout;
  /** Set when the dial lost a simultaneous-dial race: settle when the peer's own connection opens. */
  waiting: boolean;
}

/** One WebSocket to one peer, in handshake or open. */
class Link implements FastPeer {
  state: number;
  /** Remote member id (known after HELLO / CHALLENGE). */
  id = '';
  /** Remote member's listen url. */
  url = '';
  readonly myNonce = nonce();
  theirNonce: Uint8Array | undefined;
  /** Outbound: the url dialled (== url); inbound: the url the dialler says it dialled (checked == our url). */
  dialled = '';
  /**
   * Session ciphers, set when the link opens: every frame after WELCOME is sealed and opened with
   * them, except on a TLS link, whose handshake is bound to its TLS connection (`channel`): there
   * the TLS records already encrypt, authenticate and order every frame, and both stay undefined.
   */
  tx: FrameCipher | undefined;
  rx: FrameCipher | undefined;
  /** Frames of this open link are sealed (tx / rx); false on a TLS link (see tx). */
  sealed = true;
  /** The TLS socket under the WebSocket, when there is one (its exporter value binds the handshake). */
  tlsSocket: TLSSocket | undefined;
  /** Inbound: the admission slot of its TCP connection (released when the link authenticates or closes). */
  slot: Slot | undefined;
  hsTimer: NodeJS.Timeout | undefined;
  dial: Dial | undefined;
  /** Messages received while not open, waiting in the transport's pre-auth queue (see PRE_AUTH_SLICE_MS), in order. */
  preq: Buffer[] | undefined;
  /** Open: frames received after the link used its slice of a turn, waiting for the fair drain (see LINK_SLICE_MS), in order; its socket is paused meanwhile. */
  inq: Buffer[] | undefined;
  /** The turn (Transport.turn) `turnMs` counts for, and how long this link's frames took in it. */
  turnAt = -1;
  turnMs = 0;
  /** Why the link closed: pending requests reject with it. */
  failure: GridError | undefined;
  /** Closed because another connection to the same peer won. */
  superseded = false;
  /** Outbound, from Transport.probe: hangs up at the listener's CHALLENGE, resolving its dial with the id it names. */
  probe = false;
  /** Frames waiting to be sent, in order: BATCH arrays and sealed FAST frames. */
  readonly queue: Array<unknown[] | Buffer> = [];
  /** The BATCH array being filled (then the last entry of the queue), or null. */
  cur: unknown[] | null = null;
  /** The FAST frame being filled (comes after everything in the queue); empty when len is 0. Never open together with `cur`. */
  readonly fw = new FastWriter();
  scheduled = false;
  blocked = false;
  /** Bytes queued since the link blocked (BATCH messages as msgpack, FAST frames); over maxQueued it is closed (see hold). */
  held = 0;
  drainPoll: NodeJS.Timeout | undefined;
  readonly pending = new PendingTable();
  /** performance.now() of the last reply (or WebSocket pong) received to one of our requests, and of the last ping sent (see checkLive). */
  lastReplyAt = 0;
  pingAt = 0;
  nextId = 0;
  /** Map indexes this side named on the connection, and those the peer named. */
  readonly outMaps = new Map<string, number>();
  readonly inMaps: FastMap[] = [];
  readonly closed: Promise<void>;

  constructor(
    readonly ws: WebSocket,
    readonly outbound: boolean,
    private readonly t: Transport,
    readonly maxRecord: number,
  ) {
    this.state = outbound ? S_DIAL : S_HELLO;
    this.closed = new Promise((resolve) => ws.once('close', () => resolve()));
  }

  /** For log lines: peer-supplied id / url escaped and cut. */
  describe(): string {
    return this.id !== '' ? `member ${safeText(this.id, LOG_TEXT_CHARS)}` : this.url !== '' ? safeText(this.url, LOG_TEXT_CHARS) : 'an unidentified peer';
  }

  get isOpen(): boolean {
    return this.state === S_OPEN;
  }

  newId(): number {
    return (this.nextId = this.nextId >= MAX_FAST_ID ? 1 : this.nextId + 1);
  }

  mapIndex(name: string): number {
    const known = this.outMaps.get(name);
    if (known !== undefined) return known;
    const idx = this.outMaps.size;
    const bytes = Buffer.byteLength(name, 'utf8');
    if (idx >= MAX_LINK_MAPS || bytes === 0 || bytes > MAX_NAME_BYTES) return -1;
    const w = this.room(5 + bytes);
    w.u8(O_MAP);
    w.u16(idx);
    w.u16(bytes);
    w.str(name, bytes);
    this.outMaps.set(name, idx);
    return idx;
  }

  room(n: number, reply = false): FastWriter {
    return this.t._room(this, n, reply);
  }

  call(c: FastCall): number {
    return this.t._call(this, c);
  }

  replyError(id: number, err: unknown): void {
    this.t._replyError(this, id, err);
  }
}

/**
 * Raises the largest message ws accepts on this socket (ws fixes maxPayload at construction; its
 * Receiver reads `_maxPayload` for every frame header, so setting it applies from the next frame).
 * Returns false if ws's internals are not as expected (then the pre-auth limit stays).
 */
function raiseReceiveLimit(ws: WebSocket, n: number): boolean {
  const r = (ws as unknown as { _receiver?: { _maxPayload?: unknown } })._receiver;
  if (r === undefined || r === null || typeof r._maxPayload !== 'number') return false;
  r._maxPayload = n;
  return true;
}

/**
 * An error a peer caused (a refused frame, a failed handshake): built without a stack trace,
 * which would show only the transport's own frames and is most of what constructing it costs,
 * so refusing a flood of bad frames stays cheap.
 */
function peerError<E extends GridError>(cls: new (message: string, data?: Record<string, unknown>) => E, message: string, data?: Record<string, unknown>): E {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new cls(message, data);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** Characters of a peer's error message that reach a caller (and so logs, `shardgrid status`). */
const MAX_PEER_ERROR_CHARS = 1000;

/**
 * A peer's ERROR reply rebuilt as the error its caller gets: its message escaped and cut
 * (safeText), its code too when it is no registered one. The message reaches log lines (a failed
 * snapshot stream, a missed copy) and `shardgrid status` (a member that did not answer), and came
 * as it was sent: 1 MB with a newline and terminal escapes went into an operator's terminal.
 */
function errorFromPeer(w: WireError): GridError {
  return errorFromWire({ code: safeText(w.code, LOG_TEXT_CHARS), message: safeText(w.message, MAX_PEER_ERROR_CHARS), data: w.data });
}

/** connect's and probe's refusal of a url that is not a member url (isMemberUrl), made before any dial. */
function notMemberUrl(what: 'connect' | 'probe', url: unknown): InvalidArgumentError {
  return new InvalidArgumentError(`${what}: url must be ${MEMBER_URL_FORM}, got ${safeText(url, LOG_TEXT_CHARS)}`);
}

/** Bytes of `body` as msgpack, for maxQueued; 0 when it cannot be encoded (sendSlow replaces it by a short error). */
function encodedSize(body: unknown): number {
  try {
    return packr.pack(body).length;
  } catch {
    return 0;
  }
}

function isId(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x > 0;
}

function isWireError(x: unknown): x is WireError {
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof (x as WireError).code === 'string' &&
    typeof (x as WireError).message === 'string' &&
    ((x as WireError).data === undefined || (typeof (x as WireError).data === 'object' && (x as WireError).data !== null))
  );
}

/** Without options.log: silent but for warnings and errors, which become process warnings (log.ts). */
function defaultLog(memberId: string): LogFn {
  return createLog(undefined, () => `shardgrid transport ${memberId}`, 'SHARDGRID_TRANSPORT');
}

const POSITIVE = [
  'maxPayload', 'requestTimeout', 'unresponsiveMs', 'handshakeTimeout', 'maxBuffered', 'maxHandshakes', 'preAuthMaxBytes', 'helloTimeout',
  'maxHandshakesPerAddress', 'maxConnections', 'maxFrameElements', 'maxFrameDepth', 'maxMgetKeys', 'maxQueued',
] as const;

function checkOptions(o: TransportOptions): void {
  const bad = (what: string): never => {
    throw new InvalidArgumentError(`transport options.${what}`);
  };
  if (typeof o !== 'object' || o === null) bad('must be an object');
  if (typeof o.host !== 'string' || o.host === '') bad('host must be a non-empty string');
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) bad('port must be an integer from 0 to 65535');
  if (typeof o.secret !== 'string' || o.secret === '') bad('secret must be a non-empty string');
  if (o.advertise !== undefined && !isHostPort(o.advertise)) bad("advertise must be 'host:port'");
  if (o.sourceAddress !== undefined && (typeof o.sourceAddress !== 'string' || isIP(o.sourceAddress) === 0)) bad('sourceAddress must be an IP address');
  if (!isMemberIdName(o.memberId)) bad(`memberId must be 1 to ${MAX_ID_CHARS} letters, digits and . _ : @ -`);
  for (const k of POSITIVE) {
    const v = o[k];
    if (v !== undefined && (!Number.isInteger(v) || v <= 0)) bad(`${k} must be a positive integer`);
  }
  if (o.maxQueued !== undefined && o.maxQueued < (o.maxPayload ?? DEFAULTS.maxPayload)) bad('maxQueued must be at least maxPayload (one frame)');
  if (o.preAuthMaxBytes !== undefined && o.preAuthMaxBytes < MAX_HANDSHAKE_BYTES) bad(`preAuthMaxBytes must be at least ${MAX_HANDSHAKE_BYTES} (the largest handshake frame)`);
  if (o.log !== undefined && typeof o.log !== 'function') bad('log must be a function');
  if (o.tls !== undefined) {
    const pem = (x: unknown) => typeof x === 'string' || Buffer.isBuffer(x);
    const t = o.tls;
    if (typeof t !== 'object' || t === null || !pem(t.key) || !pem(t.cert) || !(pem(t.ca) || (Array.isArray(t.ca) && t.ca.length > 0 && t.ca.every(pem)))) {
      bad('tls must be { key, cert, ca } of PEM strings or buffers');
    }
    // peers refuse an id that names another certificate than the one this member presents (identity.ts)
    const own = principalOfPem(t.cert);
    if (own !== undefined && principalOfId(o.memberId) !== own) bad(`memberId must end with @${own}, the principal of tls.cert (memberIdFor)`);
  }
}

/** ' from <address>' of a socket, '' when unknown (a TLS socket that failed its handshake may only know it through the socket it wraps). */
function fromAddress(socket: Socket): string {
  const a = socket.remoteAddress ?? (socket as Socket & { _parent?: Socket })._parent?.remoteAddress;
  return a === undefined ? '' : ` from ${safeText(a)}`;
}

/**
 * Why TLS refused a connection on the member port, in an operator's words (OpenSSL's own lines
 * name source files); undefined when TLS refused nothing (the peer hung up mid-handshake).
 */
function tlsRefusal(err: Error & { code?: string }, socket: TLSSocket): string | undefined {
  const verify = socket.authorizationError as unknown;
  if (verify !== undefined && verify !== null) return `its certificate failed verification against this member's CA (${safeText(String(verify))})`;
  if (err.code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE') return 'it sent no certificate (mutual TLS: a member needs one signed by the cluster CA)';
  if (err.code === 'ERR_SSL_HTTP_REQUEST') return 'plain HTTP on this wss:// port (a member without cluster.tls, or a ws:// url for a wss:// member)';
  if (err.code?.startsWith('ERR_SSL_') === true) return `the TLS handshake failed (${safeText(err.code)})`;
  return undefined;
}

export class Transport extends EventEmitter {
  readonly url: string;
  readonly memberId: string;

  /** @internal Counters for tests and diagnostics. */
  readonly _stats = {
    framesOut: 0,
    framesIn: 0,
    messagesOut: 0,
    messagesIn: 0,
    blocked: 0,
    /**
     * Time spent working the pre-auth queue (ms), its longest slice, how often it waited for its
     * share (PRE_AUTH_SHARE), and the loop's idle time credited to it meanwhile (PRE_AUTH_WAIT_MS).
     */
    preAuthMs: 0,
    preAuthMaxSliceMs: 0,
    preAuthWaits: 0,
    preAuthIdleMs: 0,
    /**
     * Fairness among open links (LINK_SLICE_MS): event-loop turns in which frames were handled,
     * frames that waited for a later turn because their link had used its slice, and turns whose
     * drain stopped at FAIR_DRAIN_MS with links still queued.
     */
    turns: 0,
    fairDeferred: 0,
    fairDrainCut: 0,
  };
  /** Round trips of the requests this member sent that were answered (metrics.ts). */
  readonly latency = new LatencyHistogram();

  private readonly secret: string;
  private readonly sourceAddress: string | undefined;
  private readonly maxPayload: number;
  private readonly requestTimeout: number;
  private readonly handshakeTimeout: number;
  private readonly maxBuffered: number;
  private readonly maxQueued: number;
  private readonly maxHandshakes: number;
  private readonly preAuthMaxBytes: number;
  private readonly helloTimeout: number;
  private readonly maxPerAddress: number;
  private readonly decodeLimits: { maxElements: number; maxDepth: number };
  private readonly maxMgetKeys: number;
  private readonly tls: TlsOptions | undefined;
  private readonly userLog: LogFn;
  /** Peer-caused log lines: tokens left, when last refilled, and lines dropped since the last one logged. */
  private logTokens = LOG_BURST;
  private logRefilled = 0;
  private logDropped = 0;
  /** Unauthenticated inbound connections, all and by source address. */
  private readonly slots = new Set<Slot>();
  private readonly slotsByAddr = new Map<string, number>();
  /** By remote 'address|port': the same key for the raw socket and, with TLS, the TLSSocket over it. */
  private readonly slotOf = new Map<string, Slot>();
  private readonly server: Server;
  private readonly wss: WebSocketServer;

  private readonly handlers = new Map<string, Handler>();
  /** Open links by remote member id: exactly one per peer. */
  private readonly links = new Map<string, Link>();
  /** Every link not yet closed, in handshake or open. */
  private readonly all = new Set<Link>();
  /** Outbound links still in handshake, by url and (once CHALLENGE arrived) by member id. */
  private readonly dialsByUrl = new Map<string, Link>();
  private readonly dialsById = new Map<string, Link>();
  /** connect() promises in flight by url: concurrent calls share one dial. */
  private readonly connecting = new Map<string, Promise<string>>();
  /** Last known url of each member we were connected to. */
  private readonly urls = new Map<string, string>();
  /** Dials that lost a simultaneous-dial race and wait for the peer's connection. */
  private readonly waitingDials = new Set<Link>();
  private closing: Promise<void> | undefined;
  /**
   * Pre-authentication work (see PRE_AUTH_SLICE_MS): links with handshake messages waiting, in
   * arrival order and worked first, then WebSocket upgrades to complete, taken round-robin over
   * source addresses (the map's insertion order is the rotation; an address with more waiting
   * goes to the back). Handshakes under way go first so that a member joining during a flood of
   * new connections waits behind the flood's upgrades once, not at every step (each upgraded
   * connection adds at most MAX_PRE_AUTH_QUEUED messages and a handshake needs two, so the paced
   * upgrades bound the rest); the rotation lets its upgrade wait for one upgrade per flooding
   * address rather than for all of them.
   */
  private readonly preAuthLinks: Link[] = [];
  private readonly preAuthUpgrades = new Map<string, Array<{ req: IncomingMessage; socket: Socket; head: Buffer }>>();
  private preAuthUpgradeCount = 0;
  private preAuthScheduled = false;
  private readonly preAuthBound = () => this.workPreAuth();
  /** The pre-auth queue's token bucket (ms of work it may still do) and when it was last refilled (see PRE_AUTH_SHARE). */
  private preAuthTokens = PRE_AUTH_BURST_MS;
  private preAuthRefilled = performance.now();
  private preAuthTimer: NodeJS.Timeout | undefined;
  /** The loop's idle time (ELU, ms) when the queue started waiting for its share, or -1. */
  private preAuthIdleAt = -1;
  /** Fairness among open links (LINK_SLICE_MS): the turn number, whether its end is scheduled, and the links with frames queued, in round-robin order. */
  private turn = 0;
  private turnArmed = false;
  private backlog: Link[] = [];
  private readonly turnEndBound = () => this.turnEnd();

  private fastServer: FastServer | undefined;
  private readonly reader = new FastReader();
  /** A FAST frame is sealed before it would grow past this (one bigger record goes alone). */
  private readonly fastLimit: number;
  /** Requests with the default timeout made so far (see the header), and the sweep that expires them. */
  private seq = 0;
  private readonly marks = new Array<number>(SWEEP_TICKS + 1).fill(0);
  private tick = 0;
  private readonly sweepTimer: NodeJS.Timeout;
  private readonly unresponsiveMs: number;
  private readonly liveTimer: NodeJS.Timeout;
  /** performance.now() of the last liveness check, and of the end of the last stall of this thread (see checkLive). */
  private lastLiveCheck = performance.now();
  private liveSince = 0;

  // bound once, passed to timers without per-call closures
  private readonly flushBound = (link: Link) => this.flush(link);
  private readonly timeoutBound = (link: Link, id: number) => setImmediate(this.expireBound, link, id);
  private readonly expireBound = (link: Link, id: number) => this.expire(link, id);
  private readonly sweepBound = () => this.sweep();
  private readonly expireManyBound = (list: Array<Link | number>) => {
    for (let i = 0; i < list.length; i += 2) this.expire(list[i] as Link, list[i + 1] as number);
  };

  private constructor(opts: TransportOptions, server: Server, wss: WebSocketServer, url: string) {
    super();
    this.memberId = opts.memberId;
    this.secret = opts.secret;
    this.sourceAddress = opts.sourceAddress;
    this.maxPayload = opts.maxPayload ?? DEFAULTS.maxPayload;
    this.requestTimeout = opts.requestTimeout ?? DEFAULTS.requestTimeout;
    this.handshakeTimeout = opts.handshakeTimeout ?? DEFAULTS.handshakeTimeout;
    this.maxBuffered = opts.maxBuffered ?? DEFAULTS.maxBuffered;
    this.maxQueued = opts.maxQueued ?? 2 * this.maxPayload;
    this.maxHandshakes = opts.maxHandshakes ?? DEFAULTS.maxHandshakes;
    this.preAuthMaxBytes = opts.preAuthMaxBytes ?? DEFAULTS.preAuthMaxBytes;
    this.helloTimeout = Math.min(opts.helloTimeout ?? DEFAULTS.helloTimeout, this.handshakeTimeout);
    this.maxPerAddress = opts.maxHandshakesPerAddress ?? DEFAULTS.maxHandshakesPerAddress;
    this.decodeLimits = { maxElements: opts.maxFrameElements ?? DEFAULTS.maxFrameElements, maxDepth: opts.maxFrameDepth ?? DEFAULTS.maxFrameDepth };
    this.maxMgetKeys = opts.maxMgetKeys ?? DEFAULTS.maxMgetKeys;
    this.tls = opts.tls;
    this.userLog = opts.log ?? defaultLog(opts.memberId);
    this.fastLimit = Math.min(FAST_FRAME_BYTES, this.maxPayload);
    this.sweepTimer = setInterval(this.sweepBound, Math.ceil(this.requestTimeout / SWEEP_TICKS));
    this.sweepTimer.unref();
    this.unresponsiveMs = opts.unresponsiveMs ?? DEFAULTS.unresponsiveMs;
    this.liveTimer = setInterval(() => this.checkLive(), Math.ceil(this.unresponsiveMs / LIVE_TICKS));
    this.liveTimer.unref();
    this.server = server;
    this.wss = wss;
    this.url = url;
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      // http has stopped reading the socket (readableFlowing null): it waits in the queue unread
      const addr = socket.remoteAddress ?? '?';
      const waiting = this.preAuthUpgrades.get(addr);
      if (waiting === undefined) this.preAuthUpgrades.set(addr, [{ req, socket, head }]);
      else waiting.push({ req, socket, head });
      this.preAuthUpgradeCount++;
      this.schedulePreAuth();
    });
    wss.on('wsClientError', (err: Error, socket: Socket) => {
      this.peerLog('warn', `rejected a malformed WebSocket upgrade: ${safeText(err.message)}`);
      socket.destroy();
    });
    server.on('clientError', (err: Error & { code?: string }, socket: Socket) => {
      // on a TLS port, a refused handshake reaches here too (as 'socket hang up' or an OpenSSL
      // line): say it was refused and why, which is what an operator needs to mend a member
      const refusal = socket instanceof TLSSocket && !socket.authorized ? tlsRefusal(err, socket) : undefined;
      if (refusal !== undefined) this.peerLog('warn', `refused a TLS connection${fromAddress(socket)}: ${refusal}`);
      // not a refusal: a dial superseded by the peer's own (two members dialling each other at
      // once, as they do while joining), a TCP health check; info, not a warning of a healthy cluster
      else if (socket instanceof TLSSocket && !socket.authorized) this.peerLog('info', `a connection${fromAddress(socket)} ended during its TLS handshake: ${safeText(err.code ?? err.message)}`);
      else this.peerLog('warn', `dropped a malformed HTTP request: ${safeText(err.message)}`);
      socket.destroy();
    });
    // admission runs on the raw TCP connection, before any byte is parsed (with TLS: before the TLS handshake)
    server.on('connection', (socket: Socket) => this.admit(socket));
    server.on('drop', () => this.peerLog('warn', `dropped a connection: ${server.maxConnections} connections open (maxConnections)`));
  }

  /** Every log line. */
  private log(level: 'info' | 'warn' | 'error', message: string, err?: unknown): void {
    try {
      this.userLog(level, message, err);
    } catch {
      // a failing logger must not take a connection (or the member) down
    }
  }

  /**
   * A log line a peer can cause (refusals, protocol errors, failed handshakes): rate-limited, so a
   * flood of bad connections cannot flood the log. The first line after a quiet spell reports how
   * many were dropped. Peer-supplied text in `message` must already be escaped (safeText).
   */
  private peerLog(level: 'info' | 'warn' | 'error', message: string, err?: unknown): void {
    const now = Date.now();
    if (this.logTokens < LOG_BURST) {
      const add = Math.floor((now - this.logRefilled) / LOG_REFILL_MS);
      if (add > 0) {
        this.logTokens = Math.min(LOG_BURST, this.logTokens + add);
        this.logRefilled = now;
      }
    } else {
      this.logRefilled = now;
    }
    if (this.logTokens === 0) {
      this.logDropped++;
      return;
    }
    this.logTokens--;
    if (this.logDropped > 0) {
      this.log('warn', `${this.logDropped} log lines about peers suppressed (rate limit)`);
      this.logDropped = 0;
    }
    this.log(level, message, err);
  }

  /** Admission of a new TCP connection: per-address and total caps on unauthenticated connections, and the HELLO deadline. */
  private admit(socket: Socket): void {
    if (this.closing !== undefined) {
      socket.destroy();
      return;
    }
    const addr = socket.remoteAddress ?? '?';
    const n = this.slotsByAddr.get(addr) ?? 0;
    if (n >= this.maxPerAddress) {
      this.peerLog('warn', `dropped a connection from ${safeText(addr)}: ${n} unauthenticated connections from that address already (maxHandshakesPerAddress)`);
      socket.destroy();
      return;
    }
    if (this.slots.size >= this.maxHandshakes) {
      // Full, from many addresses: evict a connection of the address holding the most slots,
      // preferring one that has not sent HELLO, the oldest first (evictable). An attacker holding
      // idle or stalled sockets then only pushes out its own, while a real member completes its
      // handshake in a few round trips. Only silent slots were evicted once, and the newcomer
      // dropped when every slot had sent HELLO (which needs no secret): 64 connections from 8
      // addresses that sent HELLO and never AUTH, reconnecting when closed, refused 89 % of a
      // member's connects (3,991 of 4,489 in 8 s).
      const victim = this.evictable();
      this.peerLog('warn', `${this.slots.size} unauthenticated connections (maxHandshakes): dropped the oldest ${victim.hello ? 'handshake' : 'silent one'}, from ${safeText(victim.addr)}`);
      this.evict(victim);
    }
    const key = `${addr}|${socket.remotePort}`;
    const slot: Slot = { socket, addr, key, link: undefined, hello: false, released: false, timer: setTimeout(() => this.helloLate(slot), this.helloTimeout) };
    slot.timer.unref();
    this.slots.add(slot);
    this.slotsByAddr.set(addr, n + 1);
    this.slotOf.set(key, slot);
    socket.once('close', () => this.release(slot));
  }

  /**
   * The slot a newcomer takes when the table is full: one of the address holding the most slots,
   * one that has not sent HELLO before one that has, the oldest first (slots are in arrival
   * order). A flood from a few addresses evicts its own, not a member connecting from another
   * address: preferring any silent slot evicted the member's own connection, silent for the few
   * ms until its HELLO was read, while the flood's had all sent HELLO.
   */
  private evictable(): Slot {
    let victim: Slot | undefined;
    let best = -1;
    for (const s of this.slots) {
      const score = (this.slotsByAddr.get(s.addr) ?? 0) * 2 + (s.hello ? 0 : 1);
      if (score > best) {
        best = score;
        victim = s;
      }
    }
    return victim!; // the table is full, so not empty
  }

  /** The HELLO deadline passed: a connection still without HELLO (not upgraded, or silent) is cut. */
  private helloLate(slot: Slot): void {
    if (slot.released || slot.hello) return;
    const link = slot.link;
    if (link !== undefined && link.state !== S_CLOSED) {
      const err = new TimeoutError(`a peer at ${safeText(slot.addr)} sent no HELLO within ${this.helloTimeout} ms`);
      this.peerLog('warn', err.message, err);
      this.closeLink(link, CLOSE_HANDSHAKE_TIMEOUT, 'handshake timeout', new MemberUnreachableError(err.message));
    }
    this.release(slot);
    slot.socket.destroy();
  }

  private evict(slot: Slot): void {
    this.release(slot);
    const link = slot.link;
    if (link !== undefined && link.state !== S_CLOSED) {
      this.finish(link, new MemberUnreachableError('evicted before authentication (maxHandshakes)'));
      link.ws.terminate();
    }
    slot.socket.destroy();
  }

  private release(slot: Slot): void {
    if (slot.released) return;
    slot.released = true;
    clearTimeout(slot.timer);
    this.slots.delete(slot);
    if (this.slotOf.get(slot.key) === slot) this.slotOf.delete(slot.key);
    const n = (this.slotsByAddr.get(slot.addr) ?? 1) - 1;
    if (n <= 0) this.slotsByAddr.delete(slot.addr);
    else this.slotsByAddr.set(slot.addr, n);
  }

  /** Starts listening; resolves once the port is bound. */
  static listen(opts: TransportOptions): Promise<Transport> {
    try {
      checkOptions(opts);
    } catch (err) {
      return Promise.reject(err);
    }
    const handshakeTimeout = opts.handshakeTimeout ?? DEFAULTS.handshakeTimeout;
    const onRequest = (_req: IncomingMessage, res: import('node:http').ServerResponse) => {
      res.writeHead(426, { 'content-type': 'text/plain', connection: 'close' });
      res.end('shardgrid member port: WebSocket only\n');
    };
    // Small headers, short header / request deadlines checked often, no keep-alive: a peer that
    // never upgrades, or drips its headers, is shed (the HELLO deadline cuts it sooner still).
    const httpOpts = { maxHeaderSize: 8192, headersTimeout: handshakeTimeout, requestTimeout: handshakeTimeout, keepAliveTimeout: 1, connectionsCheckingInterval: 250 };
    let server: Server;
    try {
      server =
        opts.tls === undefined
          ? createServer(httpOpts, onRequest)
          : (createTlsServer(
              { ...httpOpts, key: opts.tls.key, cert: opts.tls.cert, ca: opts.tls.ca, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3', handshakeTimeout },
              onRequest,
            ) as unknown as Server);
    } catch (err) {
      // OpenSSL refused the key or certificate (createGrid and fetchClusterStatus check them first)
      return Promise.reject(new InvalidArgumentError(`transport options.tls: ${(err as Error).message}`, { cause: (err as { code?: string }).code }));
    }
    server.maxConnections = opts.maxConnections ?? DEFAULTS.maxConnections;
    server.keepAliveTimeout = 1; // (also passed above; set here in case this Node ignores the option)
    const wss = new WebSocketServer({
      noServer: true, // upgrades go through the pre-auth queue (Transport.upgrade)
      perMessageDeflate: false,
      // Before authentication a message may be a handshake frame only: ws refuses a longer one from
      // its header, before buffering any of it (F3). Raised to maxPayload when the link opens.
      maxPayload: opts.preAuthMaxBytes ?? DEFAULTS.preAuthMaxBytes,
      clientTracking: false,
      skipUTF8Validation: true, // text frames are refused anyway
    });
    let transport: Transport | undefined;
    wss.on('error', (err: Error) => transport?.log('error', 'server error', err));
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => {
        wss.close();
        reject(new InvalidArgumentError(`cannot listen on ${opts.host}:${opts.port}: ${err.message}`, { host: opts.host, port: opts.port, cause: (err as Error & { code?: string }).code }));
      };
      server.once('error', onError);
      server.listen(opts.port, opts.host, () => {
        server.off('error', onError);
        server.on('error', (err: Error) => transport?.log('error', 'server error', err));
        const addr = server.address();
        const port = typeof addr === 'object' && addr !== null ? addr.port : opts.port;
        const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
        transport = new Transport(opts, server, wss, `${opts.tls === undefined ? 'ws' : 'wss'}://${opts.advertise ?? `${host}:${port}`}`);
        resolve(transport);
      });
    });
  }

  // ---------------------------------------------------------------- public API

  /**
   * The url of the socket itself (bind address and bound port), which a dialler may use besides
   * the advertised url: an operator's `status` on the member's own address, a harness probing
   * behind its proxies. A relay is neither, so binding the dialled url still defeats it.
   */
  boundUrl(): string {
    const a = this.server.address();
    if (typeof a !== 'object' || a === null) return this.url;
    const host = a.address.includes(':') ? `[${a.address}]` : a.address;
    return `${this.url.startsWith('wss:') ? 'wss' : 'ws'}://${host}:${a.port}`;
  }

  /** The port this transport is bound to (differs from the url's port behind an advertised address). */
  get boundPort(): number {
    const a = this.server.address();
    return typeof a === 'object' && a !== null ? a.port : 0;
  }

  /**
   * Ensures an authenticated connection to the member listening at url; resolves to its memberId.
   * Concurrent calls share one dial. `url` must be a member url (isMemberUrl: ws(s)://host:port,
   * nothing else), else GRID_ERR_INVALID_ARGUMENT before any dial: urls reach here from peers
   * (HELLOs, gossip, answers), and a path or credentials in one made this member send an HTTP
   * request of the peer's choosing to any server.
   */
  connect(url: string, timeoutMs: number = this.requestTimeout): Promise<string> {
    if (this.closing !== undefined) return Promise.reject(new GridClosedError('transport is closed'));
    if (!isMemberUrl(url)) return Promise.reject(notMemberUrl('connect', url));
    if (url === this.url) return Promise.resolve(this.memberId);
    for (const [id, link] of this.links) if (link.url === url) return Promise.resolve(id);
    const p = this.connecting.get(url);
    if (p !== undefined) return this.joinDial(p, url, timeoutMs);
    const d = this.dial(url, timeoutMs);
    this.connecting.set(url, d);
    const done = () => {
      if (this.connecting.get(url) === d) this.connecting.delete(url);
    };
    d.then(done, done);
    return d;
  }

  /**
   * Dials `url` as far as the listener's CHALLENGE, which names it, and hangs up: resolves with the
   * id of the member that listens there, without authenticating, keeping a connection or
   * disturbing one already open to that member. It checks that a url leads to a member (and to
   * which) from here, as another member would dial it (from `sourceAddress`, with `tls`).
   * Rejects with the dial's own error: GRID_ERR_MEMBER_UNREACHABLE (refused, closed),
   * GRID_ERR_TIMEOUT (no CHALLENGE within timeoutMs), GRID_ERR_AUTH (the listener advertises
   * another url), GRID_ERR_INVALID_ARGUMENT (not a member url, as connect).
   */
  probe(url: string, timeoutMs: number = this.requestTimeout): Promise<string> {
    if (this.closing !== undefined) return Promise.reject(new GridClosedError('transport is closed'));
    if (!isMemberUrl(url)) return Promise.reject(notMemberUrl('probe', url));
    return this.dial(url, timeoutMs, true);
  }

  /**
   * A dial already under way, begun by another caller with its own timeout: this caller waits at
   * most its own timeoutMs (the dial goes on for the other). Before, a graceful leave's 500 ms
   * bound joined a 5 s dial to a paused member and closing a grid took 5 s. The other way round,
   * a dial that ends at its own, shorter deadline (TimeoutError) is no answer for this caller: it
   * dials again with the time it has left. Before, a request joined a membership probe's dial
   * (150 ms) and failed with "timed out after 150 ms" on a loaded machine (evict-failover).
   */
  private joinDial(p: Promise<string>, url: string, timeoutMs: number): Promise<string> {
    const end = performance.now() + timeoutMs;
    return new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new TimeoutError(`connect to ${url} timed out after ${timeoutMs} ms`, { url })), timeoutMs);
      t.unref();
      p.then(
        (id) => {
          clearTimeout(t);
          resolve(id);
        },
        (e: unknown) => {
          const left = Math.floor(end - performance.now());
          if (e instanceof TimeoutError && left > 0 && this.closing === undefined) {
            clearTimeout(t);
            this.connect(url, left).then(resolve, reject);
            return;
          }
          clearTimeout(t);
          reject(e);
        },
      );
    });
  }

  /** Sends a request to a connected peer and resolves with the handler's return value. */
  request<T = unknown>(to: string, type: string, body: unknown, timeoutMs: number = this.requestTimeout): Promise<T> {
    const link = this.links.get(to);
    if (link === undefined) {
      return Promise.reject(
        this.closing !== undefined ? new GridClosedError('transport is closed') : new MemberUnreachableError(`not connected to member ${to}`, { member: to }),
      );
    }
    return new Promise<T>((resolve, reject) => {
      const id = link.newId();
      const c = new GenericCall(type, resolve, reject);
      if (timeoutMs === this.requestTimeout) this.track(c);
      else c.timer = setTimeout(this.timeoutBound, timeoutMs, link, id);
      link.pending.set(id, c);
      this.enqueue(link, K_REQUEST, id, type, body);
    });
  }

  /** The open connection to a member, for FAST requests; undefined when not connected. */
  peer(memberId: string): FastPeer | undefined {
    return this.links.get(memberId);
  }

  /** Registers the server of FAST requests (without one they are answered with UnsupportedError). */
  serveFast(server: FastServer): void {
    this.fastServer = server;
  }

  /** One-way message (no reply); silently dropped if not connected. */
  notify(to: string, type: string, body: unknown): void {
    const link = this.links.get(to);
    if (link !== undefined) this.enqueue(link, K_NOTIFY, 0, type, body);
  }

  /** Registers the handler for application message `type`; a later call replaces it. */
  handle(type: string, fn: Handler): void {
    if (typeof type !== 'string' || type === '') throw new InvalidArgumentError('handle: type must be a non-empty string');
    if (typeof fn !== 'function') throw new InvalidArgumentError('handle: fn must be a function');
    this.handlers.set(type, fn);
  }

  /**
   * Writes now what is queued for `memberId` (otherwise written at the end of this event-loop
   * turn): for a message whose receiver waits on it while this thread still has work to do in
   * this turn (a Raft acknowledgement before the entries it committed are applied).
   */
  flushTo(memberId: string): void {
    const link = this.links.get(memberId);
    if (link !== undefined && link.scheduled && !link.blocked && link.queue.length > 0) this.flush(link);
  }

  isConnected(memberId: string): boolean {
    return this.links.has(memberId);
  }

  /** Connected memberIds. */
  peers(): string[] {
    return [...this.links.keys()];
  }

  /** The listen url of a member connected now or earlier. */
  urlOf(memberId: string): string | undefined {
    return this.urls.get(memberId);
  }

  disconnect(memberId: string): void {
    const link = this.links.get(memberId);
    if (link !== undefined) this.closeLink(link, CLOSE_DISCONNECT, 'disconnect', new MemberUnreachableError(`disconnected from member ${memberId}`, { member: memberId }));
  }

  /** Closes the server and every connection; pending requests reject with GridClosedError. */
  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    clearInterval(this.sweepTimer);
    clearInterval(this.liveTimer);
    const err = new GridClosedError('transport is closed');
    if (this.preAuthTimer !== undefined) {
      // the queue waited for its share: drain it now (workPreAuth refuses what is left)
      clearTimeout(this.preAuthTimer);
      this.preAuthTimer = undefined;
      setImmediate(this.preAuthBound);
    }
    const links = [...this.all];
    for (const link of links) this.closeLink(link, CLOSE_GOING_AWAY, 'member closing', err);
    for (const link of [...this.waitingDials]) {
      link.superseded = false;
      this.settleDial(link, err);
    }
    const serverClosed = new Promise<void>((resolve) => {
      this.wss.close();
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
    const grace = setTimeout(() => {
      for (const link of links) link.ws.terminate();
      this.server.closeAllConnections();
    }, CLOSE_GRACE_MS);
    this.closing = Promise.all([serverClosed, ...links.map((l) => l.closed)]).then(() => {
      clearTimeout(grace);
    });
    return this.closing;
  }

  // ---------------------------------------------------------------- connection set-up

  private dial(url: string, timeoutMs: number, probe = false): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      let ws: WebSocket;
      try {
        ws = new WebSocket(url, {
          perMessageDeflate: false,
          // a hostile listener gets the same pre-auth limit as a hostile dialler; raised when the link opens
          maxPayload: this.preAuthMaxBytes,
          skipUTF8Validation: true,
          handshakeTimeout: timeoutMs,
          // No masking: members talk directly, never through a proxy or a browser; an all-zero
          // mask lets ws skip the copy-and-xor of every outgoing frame.
          generateMask: zeroMask,
          ...(this.sourceAddress === undefined ? {} : { localAddress: this.sourceAddress }),
          ...(this.tls === undefined ? {} : { key: this.tls.key, cert: this.tls.cert, ca: this.tls.ca, minVersion: 'TLSv1.3' as const }),
        });
      } catch (err) {
        reject(new InvalidArgumentError(`connect: bad url ${url}: ${(err as Error).message}`));
        return;
      }
      const link = new Link(ws, true, this, this.maxPayload - 1);
      link.url = url;
      link.dialled = url;
      link.probe = probe;
      link.dial = {
        resolve,
        reject,
        waiting: false,
        deadline: setTimeout(() => {
          const e = new TimeoutError(`connect to ${url} timed out after ${timeoutMs} ms`, { url });
          if (link.state !== S_CLOSED) this.closeLink(link, CLOSE_HANDSHAKE_TIMEOUT, 'connect timed out', e);
          this.settleDial(link, e);
        }, timeoutMs),
      };
      this.all.add(link);
      if (!probe) this.dialsByUrl.set(url, link);
      this.attach(link);
      ws.once('upgrade', (res: IncomingMessage) => {
        if (res.socket instanceof TLSSocket) link.tlsSocket = res.socket;
      });
      ws.once('open', () => {
        if (link.state !== S_DIAL) return;
        link.state = S_CHALLENGE;
        link.ws.send(encodeHello(this.memberId, url, this.url, link.myNonce));
      });
    });
  }

  private accept(ws: WebSocket, req: IncomingMessage): void {
    const slot = this.slotOf.get(`${req.socket.remoteAddress ?? '?'}|${req.socket.remotePort}`);
    if (this.closing !== undefined || slot === undefined || slot.released) {
      // not admitted (cannot normally happen: admit() runs first) or already timed out
      ws.terminate();
      return;
    }
    const link = new Link(ws, false, this, this.maxPayload - 1);
    if (req.socket instanceof TLSSocket) link.tlsSocket = req.socket;
    link.slot = slot;
    slot.link = link;
    this.all.add(link);
    this.attach(link);
    link.hsTimer = setTimeout(() => {
      const err = new TimeoutError(`${link.describe()} did not authenticate within ${this.handshakeTimeout} ms`);
      this.peerLog('warn', err.message, err);
      this.closeLink(link, CLOSE_HANDSHAKE_TIMEOUT, 'handshake timeout', new MemberUnreachableError(err.message));
    }, this.handshakeTimeout);
  }

  private attach(link: Link): void {
    const ws = link.ws;
    ws.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
      if (link.state !== S_OPEN || link.preq !== undefined) this.queuePreAuth(link, data, isBinary);
      else this.receive(link, data, isBinary);
    });
    ws.on('error', (err: Error & { code?: string }) => this.onSocketError(link, err));
    ws.on('close', (code: number, reason: Buffer) => this.onClose(link, code, reason));
    // the answer to checkLive's ping: the peer reads its socket, it is only slow to reply
    ws.on('pong', () => {
      if (link.state === S_OPEN) link.lastReplyAt = performance.now();
    });
  }

  /** Handles one received message; whatever it does, it can only close its own link: never throws into ws (or the process). */
  private handleFrame(link: Link, data: WebSocket.RawData, isBinary: boolean): void {
    try {
      this.onMessage(link, data, isBinary);
    } catch (err) {
      this.log('error', `failed handling a frame from ${link.describe()}; connection closed`, err);
      try {
        this.closeLink(link, CLOSE_PROTOCOL, 'internal error', new MemberUnreachableError(`connection to ${link.describe()} closed after an internal error`));
      } catch {
        link.ws.terminate();
      }
    }
  }

  // ---------------------------------------------------------------- fairness among open links

  /** A message of an open link: handled at once while the link has slice left in this turn, else queued for the drain (LINK_SLICE_MS). */
  private receive(link: Link, data: WebSocket.RawData, isBinary: boolean): void {
    const binary = isBinary && Buffer.isBuffer(data);
    const q = link.inq;
    if (q !== undefined) {
      // the rest of ws's current read (the pause applies from the next one): behind the queued frames
      if (!binary) this.handleFrame(link, data, isBinary); // refused at once: closes the link
      else {
        q.push(data);
        this._stats.fairDeferred++;
      }
      return;
    }
    if (!this.turnArmed) {
      this.turnArmed = true;
      setImmediate(this.turnEndBound);
    }
    if (link.turnAt !== this.turn) {
      link.turnAt = this.turn;
      link.turnMs = 0;
    } else if (link.turnMs >= LINK_SLICE_MS && binary) {
      link.inq = [data];
      link.ws.pause();
      this.backlog.push(link);
      this._stats.fairDeferred++;
      return;
    }
    const t0 = performance.now();
    this.handleFrame(link, data, isBinary);
    link.turnMs += performance.now() - t0;
  }

  /**
   * The end of a turn in which open links' frames were handled (check phase): starts the next
   * turn and works the queued links round-robin, each for at most LINK_SLICE_MS of the new turn
   * and all of them for at most FAIR_DRAIN_MS (plus the last one's slice). A link whose queue
   * empties reads its socket again; the others go to the back of the round (those not reached keep
   * their place) and wait for the next turn, after the loop has polled every socket again.
   */
  private turnEnd(): void {
    this.turnArmed = false;
    const turn = ++this.turn;
    this._stats.turns++;
    const list = this.backlog;
    if (list.length === 0) return;
    this.backlog = [];
    const start = performance.now();
    let now = start;
    let i = 0;
    for (; i < list.length && now - start < FAIR_DRAIN_MS; i++) {
      const link = list[i];
      const q = link.inq;
      if (q === undefined) continue; // closed meanwhile
      const t0 = now;
      link.turnAt = turn;
      while (q.length > 0 && link.state === S_OPEN) {
        this.handleFrame(link, q.shift()!, true);
        now = performance.now();
        if (now - t0 >= LINK_SLICE_MS) break;
      }
      link.turnMs = now - t0;
      if (link.state !== S_OPEN) continue;
      if (q.length > 0) this.backlog.push(link);
      else {
        link.inq = undefined;
        link.ws.resume();
      }
    }
    if (i < list.length) {
      this._stats.fairDrainCut++;
      const rest = list.slice(i).filter((l) => l.inq !== undefined);
      this.backlog = rest.concat(this.backlog);
    }
    if (this.backlog.length > 0 && !this.turnArmed) {
      this.turnArmed = true;
      setImmediate(this.turnEndBound);
    }
  }

  // ---------------------------------------------------------------- pre-authentication queue

  /** A message of a link that is not open yet (or has earlier ones waiting): queued behind other peers' pre-auth work. */
  private queuePreAuth(link: Link, data: WebSocket.RawData, isBinary: boolean): void {
    if (link.state === S_CLOSED) return;
    if (!isBinary || !Buffer.isBuffer(data)) {
      this.handleFrame(link, data, isBinary); // refused at once, without queueing
      return;
    }
    if (link.preq === undefined) {
      link.preq = [data];
      this.preAuthLinks.push(link);
      this.schedulePreAuth();
    } else if (link.preq.length >= MAX_PRE_AUTH_QUEUED) {
      link.preq = undefined;
      this.protocolError(link, `more than ${MAX_PRE_AUTH_QUEUED} messages before authentication`, undefined, FrameLimitError);
    } else {
      link.preq.push(data);
    }
  }

  private schedulePreAuth(): void {
    if (this.preAuthScheduled) return;
    this.preAuthScheduled = true;
    this.refillPreAuth(performance.now());
    if (this.preAuthTokens > 0 || this.closing !== undefined) {
      setImmediate(this.preAuthBound);
      return;
    }
    // the bucket is spent: wait until the share has refilled it (the queue keeps its order), or
    // until the loop has shown, by idling, that nothing else needs the thread
    this._stats.preAuthWaits++;
    this.preAuthIdleAt = performance.eventLoopUtilization().idle;
    this.preAuthTimer = setTimeout(this.preAuthBound, Math.min(PRE_AUTH_WAIT_MS, Math.ceil(-this.preAuthTokens / PRE_AUTH_SHARE)));
  }

  private refillPreAuth(now: number): void {
    this.preAuthTokens = Math.min(PRE_AUTH_BURST_MS, this.preAuthTokens + (now - this.preAuthRefilled) * PRE_AUTH_SHARE);
    this.preAuthRefilled = now;
  }

  /**
   * One slice of the pre-auth queue (at most PRE_AUTH_SLICE_MS, paid from the bucket of
   * PRE_AUTH_SHARE); the rest waits for the next event-loop turn, or for the bucket to refill.
   * Once the transport is closing the queue is drained at once (upgrades are refused, links closed).
   */
  private workPreAuth(): void {
    this.preAuthScheduled = false;
    this.preAuthTimer = undefined;
    if (this.preAuthIdleAt >= 0) {
      const idle = performance.eventLoopUtilization().idle - this.preAuthIdleAt;
      this.preAuthIdleAt = -1;
      this.preAuthTokens += idle;
      this._stats.preAuthIdleMs += idle;
    }
    if (this.closing === undefined) {
      this.refillPreAuth(performance.now());
      if (this.preAuthTokens <= 0) {
        this.schedulePreAuth(); // still spent: wait again
        return;
      }
    }
    const start = performance.now();
    const end = this.closing !== undefined ? Infinity : start + PRE_AUTH_SLICE_MS;
    const links = this.preAuthLinks;
    const ups = this.preAuthUpgrades;
    let i = 0;
    let now = start;
    while (now < end && i < links.length) {
      const link = links[i++];
      const msgs = link.preq;
      link.preq = undefined;
      if (msgs !== undefined) for (const m of msgs) if (link.state !== S_CLOSED) this.handleFrame(link, m, true);
      now = performance.now();
    }
    links.splice(0, i);
    while (now < end && this.preAuthUpgradeCount > 0) {
      const [addr, waiting] = ups.entries().next().value!;
      const u = waiting.shift()!;
      ups.delete(addr);
      if (waiting.length > 0) ups.set(addr, waiting);
      this.preAuthUpgradeCount--;
      this.upgrade(u.req, u.socket, u.head);
      now = performance.now();
    }
    const stop = now;
    this.refillPreAuth(start);
    this.preAuthTokens -= stop - start;
    this._stats.preAuthMs += stop - start;
    if (stop - start > this._stats.preAuthMaxSliceMs) this._stats.preAuthMaxSliceMs = stop - start;
    if (links.length > 0 || this.preAuthUpgradeCount > 0) this.schedulePreAuth();
  }

  /** Completes a WebSocket upgrade taken from the pre-auth queue (a connection shed meanwhile is dropped). */
  private upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const slot = this.slotOf.get(`${req.socket.remoteAddress ?? '?'}|${req.socket.remotePort}`);
    if (this.closing !== undefined || slot === undefined || slot.released || socket.destroyed) {
      socket.destroy();
      return;
    }
    try {
      this.wss.handleUpgrade(req, socket, head, (ws: WebSocket) => this.accept(ws, req));
    } catch (err) {
      this.peerLog('warn', `failed a WebSocket upgrade: ${safeText(err instanceof Error ? err.message : '')}`);
      socket.destroy();
    }
  }

  private onSocketError(link: Link, err: Error & { code?: string }): void {
    if (link.state === S_CLOSED) return;
    if (typeof err.code === 'string' && err.code.startsWith('WS_ERR_')) {
      // a WebSocket-level violation by the peer: bad opcode, frame over maxPayload (the pre-auth
      // limit before the handshake completes), ...
      const tooBig = err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH';
      const limit = link.state === S_OPEN ? `maxPayload ${this.maxPayload}` : `the pre-auth limit of ${this.preAuthMaxBytes} bytes`;
      this.protocolError(link, tooBig ? `message over ${limit} (${err.code})` : `${err.message} (${err.code})`, { wsCode: err.code }, tooBig ? FrameLimitError : ProtocolError);
      return;
    }
    const e = new MemberUnreachableError(`connection to ${link.describe()} failed: ${err.message}`, { url: link.url, cause: err.code ?? err.message });
    if (link.state !== S_DIAL) this.log('info', e.message, err);
    this.finish(link, e);
  }

  private onClose(link: Link, code: number, reason: Buffer): void {
    if (link.state === S_CLOSED) return;
    const why = reason.length > 0 ? safeText(reason.toString('utf8', 0, Math.min(reason.length, 123))) : '';
    let err: GridError;
    if (code === CLOSE_AUTH) {
      err = new AuthenticationError(`${link.describe()} refused our authentication (wrong cluster secret?)`, { url: link.url });
      this.peerLog('warn', err.message, err);
    } else if (code === CLOSE_WRONG_URL) {
      err = new AuthenticationError(`${link.describe()} refused the connection: ${safeText(link.dialled)} is not its advertised url (dial the url it advertises)`, { url: link.url, closeCode: code });
      this.peerLog('warn', err.message, err);
    } else if (code === CLOSE_DUPLICATE) {
      link.superseded = true;
      err = new MemberUnreachableError(`${link.describe()} kept another connection`, { url: link.url });
    } else if (code === CLOSE_PROTOCOL || code === CLOSE_TOO_BIG || code === CLOSE_SAME_ID || code === CLOSE_INTEGRITY) {
      // the peer found our frames malformed: log it as such; pending requests fail as unreachable
      const pe = new ProtocolError(`${link.describe()} closed the connection: ${why || code}`, { url: link.url, closeCode: code });
      this.peerLog('warn', pe.message, pe);
      err = link.state === S_OPEN ? new MemberUnreachableError(pe.message, { url: link.url, closeCode: code }) : pe;
    } else {
      err = new MemberUnreachableError(`connection to ${link.describe()} closed (${code}${why ? ` ${why}` : ''})`, { url: link.url, closeCode: code });
    }
    this.finish(link, err);
  }

  /** Closes a link from our side: it is finished at once; the socket closes in the background. */
  private closeLink(link: Link, code: number, reason: string, err: GridError): void {
    if (link.state === S_CLOSED) return;
    this.finish(link, err);
    const ws = link.ws;
    if (ws.readyState === WebSocket.CONNECTING) {
      ws.terminate();
      return;
    }
    ws.close(code, reason);
    // a peer that does not answer the close frame (dead, blocked, hostile) is cut off
    setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  /** Marks a link closed: fails its pending requests, forgets it, settles its dial. */
  private finish(link: Link, err: GridError): void {
    if (link.state === S_CLOSED) return;
    link.state = S_CLOSED;
    link.failure = err;
    this.all.delete(link);
    link.tx = link.rx = undefined;
    if (link.hsTimer !== undefined) clearTimeout(link.hsTimer);
    if (link.drainPoll !== undefined) clearTimeout(link.drainPoll);
    if (link.outbound) {
      if (this.dialsByUrl.get(link.url) === link) this.dialsByUrl.delete(link.url);
      if (link.id !== '' && this.dialsById.get(link.id) === link) this.dialsById.delete(link.id);
    }
    const pendingErr = this.closing !== undefined ? new GridClosedError('transport is closed') : err;
    if (link.pending.size > 0) {
      const pend = [...link.pending.values()];
      link.pending.clear();
      for (const p of pend) {
        if (p.timer !== undefined) clearTimeout(p.timer);
        try {
          p.reject(pendingErr);
        } catch (e) {
          this.log('error', 'a pending request failed to settle', e);
        }
      }
    }
    link.preq = undefined;
    if (link.inq !== undefined) {
      // queued frames of a closed link are dropped; its socket reads again, so ws sees the close handshake
      link.inq = undefined;
      link.ws.resume();
    }
    link.queue.length = 0;
    link.cur = null;
    link.fw.len = 0;
    if (this.links.get(link.id) === link) {
      this.links.delete(link.id);
      this.emit('disconnected', link.id);
    }
    if (link.dial !== undefined) this.settleDial(link, pendingErr);
  }

  /** Settles an outbound link's connect() once: with its peer's id if some connection to it is open. */
  private settleDial(link: Link, err: GridError | undefined): void {
    const dial = link.dial;
    if (dial === undefined) return;
    if (link.id !== '' && this.links.has(link.id)) {
      link.dial = undefined;
      this.waitingDials.delete(link);
      clearTimeout(dial.deadline);
      dial.resolve(link.id);
      return;
    }
    if (link.superseded && link.id !== '' && !(err instanceof TimeoutError) && this.closing === undefined) {
      // lost the race to a connection the peer is dialling to us: wait for that one
      if (!dial.waiting) {
        dial.waiting = true;
        this.waitingDials.add(link);
        const onConnected = (id: string) => {
          if (id !== link.id) return;
          this.off('connected', onConnected);
          this.settleDial(link, undefined);
        };
        this.on('connected', onConnected);
        const reject = dial.reject;
        dial.reject = (e) => {
          this.off('connected', onConnected);
          reject(e);
        };
      }
      return;
    }
    link.dial = undefined;
    this.waitingDials.delete(link);
    clearTimeout(dial.deadline);
    dial.reject(err ?? new MemberUnreachableError(`cannot connect to ${link.url}`, { url: link.url }));
  }

  // ---------------------------------------------------------------- receiving

  private onMessage(link: Link, data: WebSocket.RawData, isBinary: boolean): void {
    if (link.state === S_CLOSED) return;
    if (!isBinary) {
      this.protocolError(link, 'text frame');
      return;
    }
    if (!Buffer.isBuffer(data)) {
      // ws hands a binary message as one Buffer (binaryType 'nodebuffer'); anything else is a bug
      this.protocolError(link, 'unexpected message representation');
      return;
    }
    if (link.state === S_OPEN) {
      const plain = link.sealed ? link.rx!.open(data) : data;
      if (plain === undefined) {
        this.integrityError(link);
        return;
      }
      if (plain[0] === FAST_MAGIC) this.onFast(link, plain);
      else this.onBatchFrame(link, plain);
      return;
    }
    // before authentication: fixed-layout frames only, never longer than a handshake frame
    if (data.length > this.preAuthMaxBytes) {
      this.protocolError(link, `message of ${data.length} bytes before authentication (limit ${this.preAuthMaxBytes})`, undefined, FrameLimitError);
      return;
    }
    const type = data.length > 0 ? data[0] : -1;
    if (type === F_HELLO && link.state === S_HELLO) this.onHello(link, data);
    else if (type === F_CHALLENGE && link.state === S_CHALLENGE) this.onChallenge(link, data);
    else if (type === F_AUTH && link.state === S_AUTH) this.onAuth(link, data);
    else if (type === F_WELCOME && link.state === S_WELCOME) this.onWelcome(link, data);
    else this.protocolError(link, `frame type ${type} before authentication`);
  }

  private onHello(link: Link, b: Buffer): void {
    const h = parseHello(b);
    if (typeof h === 'string') {
      this.protocolError(link, h);
      return;
    }
    if (link.slot !== undefined) link.slot.hello = true;
    if (!isMemberIdName(h.id)) {
      this.protocolError(link, `HELLO id ${safeText(h.id, LOG_TEXT_CHARS)} is not a member id (letters, digits and . _ : @ -)`);
      return;
    }
    link.id = h.id;
    link.url = h.url;
    link.dialled = h.dialled;
    link.theirNonce = h.nonce;
    if (h.dialled !== this.url && h.dialled !== this.boundUrl()) {
      // bound into both proofs and the keys: a dialler that dialled another url (a relay, an
      // alias) could never complete the handshake with us; tell it why now
      const err = new AuthenticationError(`${link.describe()} dialled ${safeText(h.dialled)}, not our advertised url ${this.url}; connection refused`, { url: this.url });
      this.peerLog('warn', err.message, err);
      this.emit('auth-error', err, link.url);
      this.closeLink(link, CLOSE_WRONG_URL, 'not my advertised url', err);
      return;
    }
    if (link.id === this.memberId) {
      this.sameId(link);
      return;
    }
    if (!this.idMatchesCertificate(link)) return;
    link.state = S_AUTH;
    link.ws.send(encodeChallenge(this.memberId, link.myNonce));
  }

  private onChallenge(link: Link, b: Buffer): void {
    const c = parseChallenge(b);
    if (typeof c === 'string') {
      this.protocolError(link, c);
      return;
    }
    link.id = c.id;
    link.theirNonce = c.nonce;
    // a probe reports the id a url answers with: with TLS, only one its certificate backs
    if (!this.idMatchesCertificate(link)) return;
    if (link.probe) {
      // the listener named itself: that is all a probe asks (see probe)
      const dial = link.dial;
      link.dial = undefined;
      if (dial !== undefined) {
        clearTimeout(dial.deadline);
        dial.resolve(c.id);
      }
      this.closeLink(link, CLOSE_DUPLICATE, 'probe', new MemberUnreachableError(`probe of ${link.describe()} done`));
      return;
    }
    // a probe only reports the id (escaped where it is shown); a link authenticates only a member id
    if (!isMemberIdName(c.id)) {
      this.protocolError(link, 'CHALLENGE id is not a member id (letters, digits and . _ : @ -)');
      return;
    }
    if (link.id === this.memberId) {
      this.sameId(link);
      return;
    }
    if (this.links.has(link.id)) {
      // already connected to this member (through another url, or it dialled us meanwhile)
      link.superseded = true;
      this.closeLink(link, CLOSE_DUPLICATE, 'already connected', new MemberUnreachableError('duplicate connection'));
      return;
    }
    this.dialsById.set(link.id, link);
    link.state = S_WELCOME;
    link.ws.send(encodeProof(F_AUTH, proof(this.secret, 'dialler', this.transcript(link))));
  }

  /** What this link's proofs and keys bind (see wire.ts): with TLS also the TLS connection's exporter value. */
  private transcript(link: Link): Transcript {
    const t: Transcript = link.outbound
      ? { dialNonce: link.myNonce, listenNonce: link.theirNonce!, diallerId: this.memberId, listenerId: link.id, diallerUrl: this.url, dialledUrl: link.dialled }
      : { dialNonce: link.theirNonce!, listenNonce: link.myNonce, diallerId: link.id, listenerId: this.memberId, diallerUrl: link.url, dialledUrl: link.dialled };
    if (link.tlsSocket !== undefined) t.channel = link.tlsSocket.exportKeyingMaterial(CHANNEL_BINDING_BYTES, CHANNEL_BINDING_LABEL, NO_CONTEXT);
    return t;
  }

  private onAuth(link: Link, b: Buffer): void {
    const got = parseProof(b);
    if (got === undefined) {
      this.protocolError(link, 'malformed AUTH');
      return;
    }
    const t = this.transcript(link);
    if (!proofMatches(proof(this.secret, 'dialler', t), got)) {
      this.authFailed(link, `${link.describe()} (${safeText(link.url, LOG_TEXT_CHARS)}) failed authentication: wrong cluster secret`);
      return;
    }
    // one connection per pair: the one dialled by the smaller memberId wins
    const peer = link.id;
    const mine = this.dialsById.get(peer) ?? this.dialsByUrl.get(link.url);
    if (mine !== undefined && this.memberId < peer) {
      this.closeLink(link, CLOSE_DUPLICATE, 'simultaneous dial', new MemberUnreachableError('duplicate connection'));
      return;
    }
    const cur = this.links.get(peer);
    if (cur !== undefined && cur.outbound && this.memberId < peer) {
      this.closeLink(link, CLOSE_DUPLICATE, 'already connected', new MemberUnreachableError('duplicate connection'));
      return;
    }
    if (cur !== undefined) {
      // the peer dialled again (it lost its end of the old connection), or its dial beats ours
      this.closeLink(cur, CLOSE_DUPLICATE, 'replaced', new MemberUnreachableError(`connection to member ${safeText(peer)} was replaced`, { member: peer }));
    }
    link.ws.send(encodeProof(F_WELCOME, proof(this.secret, 'listener', t)));
    this.open(link, t);
    if (mine !== undefined) {
      mine.superseded = true;
      if (mine.id === '') mine.id = peer;
      this.closeLink(mine, CLOSE_DUPLICATE, 'simultaneous dial', new MemberUnreachableError('duplicate connection'));
    }
  }

  private onWelcome(link: Link, b: Buffer): void {
    const got = parseProof(b);
    if (got === undefined) {
      this.protocolError(link, 'malformed WELCOME');
      return;
    }
    const t = this.transcript(link);
    if (!proofMatches(proof(this.secret, 'listener', t), got)) {
      this.authFailed(link, `${link.describe()} at ${safeText(link.url, LOG_TEXT_CHARS)} failed authentication: wrong cluster secret`);
      return;
    }
    const cur = this.links.get(link.id);
    if (cur !== undefined) {
      // cannot normally happen (onAuth settles races); keep the one dialled by the smaller id
      if (this.memberId < link.id) {
        this.closeLink(cur, CLOSE_DUPLICATE, 'replaced', new MemberUnreachableError(`connection to member ${safeText(link.id)} was replaced`, { member: link.id }));
      } else {
        link.superseded = true;
        this.closeLink(link, CLOSE_DUPLICATE, 'duplicate', new MemberUnreachableError('duplicate connection'));
        return;
      }
    }
    this.open(link, t);
  }

  private open(link: Link, t: Transcript): void {
    if (link.hsTimer !== undefined) {
      clearTimeout(link.hsTimer);
      link.hsTimer = undefined;
    }
    if (link.slot !== undefined) {
      this.release(link.slot);
      link.slot = undefined;
    }
    if (link.outbound) {
      if (this.dialsByUrl.get(link.url) === link) this.dialsByUrl.delete(link.url);
      if (this.dialsById.get(link.id) === link) this.dialsById.delete(link.id);
    }
    if (t.channel !== undefined) {
      // TLS link: both proofs covered this TLS connection's exporter value, so the session is the
      // TLS connection itself, whose records encrypt, authenticate and order every frame
      link.sealed = false;
    } else {
      const keys = sessionKeys(this.secret, t);
      link.tx = new FrameCipher(link.outbound ? keys.toListener : keys.toDialler);
      link.rx = new FrameCipher(link.outbound ? keys.toDialler : keys.toListener);
    }
    link.tlsSocket = undefined;
    if (!raiseReceiveLimit(link.ws, this.maxPayload + TAG_BYTES)) {
      this.log('error', `cannot raise the receive limit of the connection to ${link.describe()} (ws internals changed?); frames over ${this.preAuthMaxBytes} bytes will close it`);
    }
    link.state = S_OPEN;
    link.theirNonce = undefined;
    this.links.set(link.id, link);
    // remembered for urlOf after a disconnect; bounded, so peers authenticating under ever new ids
    // (a fuzzer, a buggy client) cannot grow it without end: the longest-unseen ids go first
    this.urls.delete(link.id);
    this.urls.set(link.id, link.url);
    if (this.urls.size > MAX_REMEMBERED_URLS) this.urls.delete(this.urls.keys().next().value!);
    this.emit('connected', link.id, link.url);
    if (link.dial !== undefined) this.settleDial(link, undefined);
  }

  /**
   * With TLS: whether the id the peer introduced itself with (HELLO, CHALLENGE) names the
   * certificate its TLS connection presented (identity.ts); if not, the link is refused as an
   * authentication failure and false returned. Without TLS (no certificate to bind): true.
   */
  private idMatchesCertificate(link: Link): boolean {
    const sock = link.tlsSocket;
    if (sock === undefined) return true;
    const cert = sock.getPeerX509Certificate();
    const want = cert === undefined ? undefined : principalOf(cert);
    if (want !== undefined && principalOfId(link.id) === want) return true;
    const id = safeText(link.id, LOG_TEXT_CHARS);
    this.authFailed(link, `${link.url === '' ? 'a peer' : safeText(link.url, LOG_TEXT_CHARS)} introduced itself as ${id}, which does not name the certificate it presented (member ids end with @${want ?? '?'} for that certificate): refused, one member's key cannot speak for another`);
    return false;
  }

  private authFailed(link: Link, message: string): void {
    const err = peerError(AuthenticationError, message, { url: link.url, member: link.id });
    this.peerLog('warn', message, err);
    this.emit('auth-error', err, link.url);
    this.closeLink(link, CLOSE_AUTH, 'authentication failed', err);
  }

  private sameId(link: Link): void {
    const err = peerError(ProtocolError, `${safeText(link.url, LOG_TEXT_CHARS)} announces our own member id ${this.memberId}`, { url: link.url });
    this.peerLog('warn', err.message, err);
    this.emit('protocol-error', err, link.url);
    this.closeLink(link, CLOSE_SAME_ID, 'same member id', err);
  }

  /** Closes a link whose peer sent something malformed (`what` must already be escaped if it quotes the peer). */
  private protocolError(link: Link, what: string, data?: Record<string, unknown>, cls: typeof ProtocolError = ProtocolError, code = CLOSE_PROTOCOL): void {
    const remote = link.id !== '' ? link.id : link.url !== '' ? link.url : 'unknown';
    const err = peerError(cls, `protocol error from ${link.describe()}: ${what}; connection closed`, { remote, ...data });
    this.peerLog('warn', err.message, err);
    this.emit('protocol-error', err, remote);
    this.closeLink(link, code, 'protocol error', peerError(MemberUnreachableError, `connection to ${link.describe()} closed after a protocol error`, { remote }));
  }

  /** A sealed frame failed its tag: tampered, truncated, replayed, reordered, or not of this session. Nothing of it is used. */
  private integrityError(link: Link): void {
    this.protocolError(link, 'a frame failed authentication (tampered, replayed, reordered or truncated)', undefined, IntegrityError, CLOSE_INTEGRITY);
  }

  /** A decrypted BATCH: scanned (types, counts, depth) before msgpackr decodes it, then validated whole. */
  private onBatchFrame(link: Link, plain: Buffer): void {
    const bad = scanMsgpack(plain, this.decodeLimits);
    if (bad !== undefined) {
      this.protocolError(link, `refused BATCH: ${bad.what}`, undefined, bad.limit ? FrameLimitError : ProtocolError);
      return;
    }
    let frame: unknown;
    try {
      frame = unpackr.unpack(plain);
    } catch (err) {
      this.protocolError(link, `undecodable frame: ${safeText(err instanceof Error ? err.message : '', 80)}`);
      return;
    }
    if (!Array.isArray(frame) || frame.length === 0) {
      this.protocolError(link, 'frame is not a non-empty array');
      return;
    }
    if (frame[0] !== F_BATCH) {
      this.protocolError(link, `unexpected frame type ${safeText(frame[0], 20)} on an open connection`);
      return;
    }
    this.onBatch(link, frame);
  }

  private onBatch(link: Link, f: unknown[]): void {
    const n = f.length;
    if (n === 1 || (n - 1) % STRIDE !== 0) {
      this.protocolError(link, 'malformed BATCH');
      return;
    }
    if ((n - 1) / STRIDE > MAX_BATCH_MESSAGES) {
      this.protocolError(link, `BATCH of ${(n - 1) / STRIDE} messages (limit ${MAX_BATCH_MESSAGES})`, undefined, FrameLimitError);
      return;
    }
    // validate the whole frame before acting on any of it
    for (let i = 1; i < n; i += STRIDE) {
      const k = f[i];
      const ok =
        k === K_REQUEST ? isId(f[i + 1]) && typeof f[i + 2] === 'string'
        : k === K_REPLY ? isId(f[i + 1])
        : k === K_NOTIFY ? typeof f[i + 2] === 'string'
        : k === K_ERROR ? isId(f[i + 1]) && isWireError(f[i + 3])
        : false;
      if (!ok) {
        this.protocolError(link, `malformed message ${(i - 1) / STRIDE} in BATCH`);
        return;
      }
    }
    this._stats.framesIn++;
    this._stats.messagesIn += (n - 1) / STRIDE;
    for (let i = 1; i < n; i += STRIDE) {
      const k = f[i];
      if (k === K_REPLY || k === K_ERROR) {
        const id = f[i + 1] as number;
        const p = link.pending.get(id);
        if (p === undefined) continue; // timed out already
        if (k === K_REPLY && p.fast) {
          this.protocolError(link, `BATCH reply to FAST request ${id}`);
          return;
        }
        link.pending.delete(id);
        if (p.timer !== undefined) clearTimeout(p.timer);
        const t = performance.now();
        link.lastReplyAt = t;
        if (k === K_REPLY) {
          this.latency.observe(p.kind, t - p.t0);
          (p as GenericCall).resolve(f[i + 3]);
        } else p.reject(errorFromPeer(f[i + 3] as WireError));
      } else if (k === K_REQUEST) {
        this.serve(link, f[i + 1] as number, f[i + 2] as string, f[i + 3]);
      } else {
        this.deliver(link, f[i + 2] as string, f[i + 3]);
      }
      if (link.state !== S_OPEN) return; // a handler closed us
    }
  }

  private serve(link: Link, id: number, type: string, body: unknown): void {
    const fn = this.handlers.get(type);
    if (fn === undefined) {
      this.enqueue(link, K_ERROR, id, null, errorToWire(peerError(UnsupportedError, `member ${this.memberId} has no handler for message type ${safeText(type)}`, { type: safeText(type) })));
      return;
    }
    let r: unknown;
    try {
      r = fn(body, link.id);
    } catch (err) {
      this.enqueue(link, K_ERROR, id, null, this.wireError(err, type));
      return;
    }
    if (r !== null && typeof r === 'object' && typeof (r as Promise<unknown>).then === 'function') {
      (r as Promise<unknown>).then(
        (v) => {
          if (link.state === S_OPEN) this.enqueue(link, K_REPLY, id, null, v);
        },
        (err) => {
          if (link.state === S_OPEN) this.enqueue(link, K_ERROR, id, null, this.wireError(err, type));
        },
      );
    } else {
      this.enqueue(link, K_REPLY, id, null, r);
    }
  }

  private deliver(link: Link, type: string, body: unknown): void {
    const fn = this.handlers.get(type);
    if (fn === undefined) {
      this.peerLog('warn', `dropped a notification of unknown type ${safeText(type)} from ${link.describe()}`);
      return;
    }
    try {
      const r = fn(body, link.id);
      if (r !== null && typeof r === 'object' && typeof (r as Promise<unknown>).then === 'function') {
        (r as Promise<unknown>).then(undefined, (err) => this.log('error', `handler for notification ${safeText(type)} failed`, err));
      }
    } catch (err) {
      this.log('error', `handler for notification ${safeText(type)} failed`, err);
    }
  }

  private wireError(err: unknown, type: string): WireError {
    if (!(err instanceof GridError)) this.log('error', `handler for ${safeText(type)} threw`, err);
    // A request that met this member closing (a graceful leave): to the peer that is a member
    // leaving, and it retries on the partition's next primary. As GRID_ERR_CLOSED the peer took
    // it for its own grid closed and handed it to its caller (found by trying a rolling leave:
    // 36–132 increments failed so through a lite member, and RESP clients of other members got
    // `ERR GRID_ERR_CLOSED`).
    if (err instanceof GridClosedError) return errorToWire(new MemberLeftError(`member ${this.memberId} is leaving: ${err.message}`));
    return errorToWire(err);
  }

  // ---------------------------------------------------------------- sending

  private enqueue(link: Link, kind: number, id: number, type: string | null, body: unknown): void {
    if (link.fw.len !== 0) this.sealFast(link);
    let b = link.cur;
    if (b === null || b.length >= MAX_BATCH_ITEMS) {
      b = link.cur = [F_BATCH];
      link.queue.push(b);
    }
    b.push(kind, id, type, body);
    if (link.blocked && (kind === K_REPLY || kind === K_ERROR)) this.hold(link, encodedSize(body));
    this.schedule(link);
  }

  /**
   * Counts `n` more bytes of replies queued for a blocked link. A peer that reads nothing while it
   * keeps sending requests would otherwise have every reply kept for it (a 20-byte request for a
   * 64 KiB value: 1.2 GB held after 20,000 of them); over maxQueued the link is closed, as Redis
   * closes a client over its output buffer limit. Only replies count: this member's own requests
   * and notifications are bounded by their senders (a partition's snapshot chunks go out at once,
   * up to the whole partition), and a slow peer they wait on is closed by checkLive. Not by
   * pausing the peer's reads: two members doing so to each other at once would both wait forever.
   */
  private hold(link: Link, n: number): void {
    link.held += n;
    if (link.held <= this.maxQueued || link.state !== S_OPEN) return;
    const err = new MemberUnreachableError(`member ${link.id} read none of the last ${link.held} bytes queued for it (maxQueued ${this.maxQueued})`, { member: link.id });
    this.peerLog('warn', `${link.describe()} does not read its socket: ${link.held} bytes queued; connection closed`, err);
    this.closeLink(link, CLOSE_UNRESPONSIVE, 'not reading', err);
  }

  private schedule(link: Link): void {
    if (!link.scheduled && !link.blocked) {
      link.scheduled = true;
      setImmediate(this.flushBound, link);
    }
  }

  /**
   * Moves the open FAST frame into the queue (a BATCH message follows it, or it is full). A frame
   * holding only its first byte (a record was written and taken back) is dropped.
   */
  private sealFast(link: Link): void {
    const w = link.fw;
    if (w.len > 1) {
      const b = Buffer.allocUnsafe(w.len);
      w.buf.copy(b, 0, 0, w.len);
      link.queue.push(b);
    }
    w.len = 0;
  }

  /** @internal FastPeer.room; `peer` is always a Link */
  // (typed FastPeer, not Link: Link holds a `ws` WebSocket, and naming it here would make the
  // published declarations import 'ws', which a consumer without @types/ws cannot compile)
  _room(peer: FastPeer, n: number, reply = false): FastWriter {
    const link = peer as Link;
    if (n > link.maxRecord) throw new InternalError(`FAST record of ${n} bytes over the frame limit (${link.maxRecord})`);
    if (reply && link.blocked) this.hold(link, n);
    link.cur = null; // a BATCH being filled stays in the queue, before this frame
    const w = link.fw;
    if (w.len > 0 && w.len + n > this.fastLimit) this.sealFast(link);
    if (w.len === 0) {
      w.ensure(n + 1);
      w.buf[0] = FAST_MAGIC;
      w.len = 1;
    } else {
      w.ensure(n);
    }
    if (link.state === S_OPEN) this.schedule(link);
    return w;
  }

  /** @internal FastPeer.call; `peer` is always a Link (see _room) */
  _call(peer: FastPeer, c: FastCall): number {
    const link = peer as Link;
    const id = link.newId();
    if (link.state !== S_OPEN) {
      // a closed connection's requests were failed already: fail this one too (callers check isOpen first)
      const err = link.failure ?? new MemberUnreachableError(`connection to ${link.describe()} is closed`, { member: link.id });
      queueMicrotask(() => c.reject(err));
      return id;
    }
    this.track(c);
    link.pending.set(id, c);
    return id;
  }

  /** @internal FastPeer.replyError; `peer` is always a Link (see _room) */
  _replyError(peer: FastPeer, id: number, err: unknown): void {
    const link = peer as Link;
    if (link.state === S_OPEN) this.enqueue(link, K_ERROR, id, null, this.wireError(err, 'FAST request'));
  }

  private flush(link: Link): void {
    link.scheduled = false;
    if (link.state !== S_OPEN) return;
    const ws = link.ws;
    const q = link.queue;
    while (q.length > 0) {
      if (ws.bufferedAmount > this.maxBuffered) {
        this.block(link);
        return;
      }
      const f = q.shift()!;
      if (f === link.cur) link.cur = null;
      if (Array.isArray(f)) this.sendBatch(link, f);
      else {
        ws.send(link.sealed ? link.tx!.seal(f) : f);
        this._stats.framesOut++;
      }
      if (link.state !== S_OPEN) return;
    }
    const w = link.fw;
    if (w.len <= 1) {
      w.len = 0;
      return;
    }
    if (ws.bufferedAmount > this.maxBuffered) {
      this.sealFast(link);
      this.block(link);
      return;
    }
    // sealing (or, on a TLS link, the copy) takes the frame out of the writer's buffer, which is then reused
    const sealed = link.sealed ? link.tx!.seal(w.buf, w.len) : Buffer.from(w.buf.subarray(0, w.len));
    w.len = 0;
    ws.send(sealed);
    this._stats.framesOut++;
  }

  /** Holds the queue until the socket drains below maxBuffered; order is kept because nothing is sent meanwhile. */
  private block(link: Link): void {
    if (link.blocked) return;
    link.blocked = true;
    this._stats.blocked++;
    const socket = (link.ws as unknown as { _socket?: Socket })._socket;
    const resume = () => {
      if (!link.blocked) return;
      if (link.state === S_OPEN && link.ws.bufferedAmount > this.maxBuffered) {
        link.drainPoll = setTimeout(resume, DRAIN_POLL_MS);
        return;
      }
      link.blocked = false;
      link.held = 0;
      socket?.off('drain', resume);
      if (link.drainPoll !== undefined) clearTimeout(link.drainPoll);
      link.drainPoll = undefined;
      this.flush(link);
    };
    socket?.once('drain', resume);
    link.drainPoll = setTimeout(resume, DRAIN_POLL_MS);
  }

  private sendBatch(link: Link, b: unknown[]): void {
    let buf: Buffer | undefined;
    try {
      buf = packr.pack(b);
    } catch {
      buf = undefined;
    }
    if (buf === undefined || buf.length > this.maxPayload) {
      this.sendSlow(link, b);
      return;
    }
    link.ws.send(link.sealed ? link.tx!.seal(buf) : buf);
    this._stats.framesOut++;
    this._stats.messagesOut += (b.length - 1) / STRIDE;
  }

  /**
   * Rare path: the batch did not encode or is over maxPayload. Encode message by message, fail
   * the ones that cannot go (the request rejects, a reply becomes an error reply, a notification
   * is dropped and logged) and send the rest in frames under maxPayload.
   */
  private sendSlow(link: Link, b: unknown[]): void {
    let group: unknown[] = [F_BATCH];
    let size = 0;
    const send = () => {
      if (group.length === 1) return;
      const buf = packr.pack(group);
      link.ws.send(link.sealed ? link.tx!.seal(buf) : buf);
      this._stats.framesOut++;
      this._stats.messagesOut += (group.length - 1) / STRIDE;
      group = [F_BATCH];
      size = 0;
    };
    for (let i = 1; i < b.length; i += STRIDE) {
      let k = b[i] as number;
      const id = b[i + 1] as number;
      const type = b[i + 2];
      let body = b[i + 3];
      let len = 0;
      let err: GridError | undefined;
      try {
        len = packr.pack([F_BATCH, k, id, type, body]).length;
        if (len > this.maxPayload) err = new ValueTooLargeError(`message of ${len} bytes exceeds maxPayload (${this.maxPayload} bytes)`, { bytes: len, maxPayload: this.maxPayload });
      } catch (e) {
        err = new UnencodableValueError(`message ${type === null ? 'reply' : String(type)} cannot be encoded: ${(e as Error).message}`);
      }
      if (err !== undefined) {
        if (k === K_REQUEST) {
          const p = link.pending.get(id);
          if (p !== undefined) {
            link.pending.delete(id);
            clearTimeout(p.timer);
            p.reject(err);
          }
          continue;
        }
        if (k === K_NOTIFY) {
          this.log('warn', `dropped notification ${safeText(type)} to member ${safeText(link.id)}`, err);
          continue;
        }
        // a reply that cannot go: send the error instead
        body = k === K_ERROR ? errorToWire(new InternalError('an error reply could not be encoded')) : errorToWire(err);
        k = K_ERROR;
        len = packr.pack([F_BATCH, k, id, null, body]).length;
      }
      if (size + len > this.maxPayload) send();
      group.push(k, id, type, body);
      size += len;
    }
    send();
  }

  /** Numbers a request with the default timeout (see the header). */
  private track(w: Waiter): void {
    w.seq = ++this.seq;
  }

  /**
   * Every requestTimeout / SWEEP_TICKS: notes the sequence reached and expires the requests with
   * the default timeout numbered up to the note of SWEEP_TICKS ticks ago (made at least
   * requestTimeout ago).
   */
  private sweep(): void {
    const m = this.marks;
    const t = (this.tick = (this.tick + 1) % m.length);
    m[t] = this.seq;
    const limit = m[(t + 1) % m.length]; // the note of SWEEP_TICKS ticks ago
    if (limit === 0) return;
    let expired: Array<Link | number> | undefined;
    for (const link of this.links.values()) {
      for (const w of link.pending.values()) if (w.seq !== 0 && w.seq <= limit) (expired ??= []).push(link, w.id);
    }
    // one setImmediate later, as expire() explains
    if (expired !== undefined) setImmediate(this.expireManyBound, expired);
  }

  /**
   * Closes links whose peer answered nothing for unresponsiveMs while a request of LIVE_KINDS
   * waited on it: a peer cut off by a blackhole or a one-way partition keeps the TCP connection
   * open, and without this every write waiting for that copy (and every client request to that
   * primary) would wait for the request timeout. After half that silence the link is pinged
   * (WebSocket ping): a peer that answers the ping is reading its socket, only slow to reply (a
   * write waiting for a copy, a big MGET), and is left alone. One that answers neither could not
   * have served meanwhile (its own lease is shorter), and its link is dialled again on the next
   * send. After a stall of this thread (a pause, a long task) replies may be waiting unread in the
   * socket: the clock restarts instead of judging the peers. A link with frames waiting in its fair
   * queue (LINK_SLICE_MS) is not judged either: those frames came from the peer.
   */
  private checkLive(): void {
    const t = performance.now();
    const u = this.unresponsiveMs;
    if (t - this.lastLiveCheck > (3 * u) / LIVE_TICKS) this.liveSince = t;
    this.lastLiveCheck = t;
    const half = t - u / 2;
    if (this.liveSince > half) return;
    const since = t - u;
    let dead: Link[] | undefined;
    for (const link of this.links.values()) {
      // frames waiting in the link's own fair queue (inq) came from the peer: it is not silent, we are behind
      if (link.pending.size === 0 || link.lastReplyAt > half || link.inq !== undefined) continue;
      let oldest = t;
      for (const w of link.pending.values()) if (w.t0 < oldest && LIVE_KINDS.has(w.kind)) oldest = w.t0;
      if (oldest > half) continue;
      if (link.pingAt <= link.lastReplyAt) {
        link.pingAt = t;
        try {
          link.ws.ping();
        } catch {
          // closing already
        }
      } else if (oldest <= since && link.lastReplyAt <= since && link.pingAt <= t - u / 4 && this.liveSince <= since) {
        (dead ??= []).push(link);
      }
    }
    if (dead === undefined) return;
    // one setImmediate later, as expire() explains: a reply (or pong) already read wins
    setImmediate(() => {
      for (const link of dead) {
        if (link.state !== S_OPEN || link.lastReplyAt > since || link.inq !== undefined) continue;
        this.log('info', `member ${safeText(link.id)} answered nothing, not even a ping, for ${u} ms while requests waited on it: closing its link`);
        this.closeLink(link, CLOSE_UNRESPONSIVE, 'unresponsive', new MemberUnreachableError(`member ${link.id} answered nothing for ${u} ms`, { member: link.id }));
      }
    });
  }

  private expire(link: Link, id: number): void {
    // Runs one setImmediate after the timer: a reply already in the socket buffer (say the event
    // loop was blocked past the deadline) is read in the poll phase in between and wins.
    const p = link.pending.get(id);
    if (p === undefined) return;
    link.pending.delete(id);
    p.reject(new TimeoutError(`request to member ${link.id} timed out`, { member: link.id }));
  }

  // ---------------------------------------------------------------- FAST frames

  private onFast(link: Link, buf: Buffer): void {
    const bad = validateFast(buf, link.inMaps, this.maxMgetKeys);
    if (bad !== undefined) {
      this.protocolError(link, `malformed FAST frame: ${bad}`, undefined, bad.startsWith('MGET of') ? FrameLimitError : ProtocolError);
      return;
    }
    this._stats.framesIn++;
    const r = this.reader;
    r.buf = buf;
    r.pos = 1;
    try {
      this.fastRecords(link, r, buf.length);
    } finally {
      r.trim(); // F12: a peer-sized MGET must not leave peer-sized scratch arrays behind
    }
  }

  private fastRecords(link: Link, r: FastReader, n: number): void {
    const server = this.fastServer;
    // the replies of one frame arrived together: one clock read for all of them
    let t = -1;
    while (r.pos < n) {
      const op = r.next(link.inMaps);
      if (op === O_MAP) continue;
      this._stats.messagesIn++;
      if (op === R_STATE || op === R_OK || op === R_STATES) {
        const p = link.pending.get(r.id);
        if (p === undefined) continue; // timed out already
        if (!p.fast || (p as FastCall).reply !== op) {
          this.protocolError(link, `FAST reply of type ${op} to request ${r.id} of another kind`);
          return;
        }
        link.pending.delete(r.id);
        if (t < 0) link.lastReplyAt = t = performance.now();
        this.latency.observe(p.kind, t - p.t0);
        try {
          (p as FastCall).settle(r);
        } catch (e) {
          p.reject(e);
        }
        continue;
      }
      if (server === undefined) {
        this._replyError(link, r.id, new UnsupportedError(`member ${this.memberId} does not serve FAST requests`));
        continue;
      }
      try {
        if (op === O_GET) server.get(link, r);
        else if (op === O_SET) server.set(link, r);
        else if (op === O_MGET) server.mget(link, r);
        else if (op === O_REP) server.rep(link, r);
      } catch (e) {
        this._replyError(link, r.id, e);
      }
      if (link.state !== S_OPEN) return;
    }
  }
}
