/**
 * What the RESP commands share: the connection and server as a command sees them, the command
 * spec, and argument and reply helpers (Redis's own texts).
 */
import { GridError, MemoryFullError } from '../errors.js';
import type { GridMap } from '../map.js';
import type { CoordinationPrimitives } from '../cp/primitives.js';
import { encodeMsgpack } from '../storage/codec.js';
import { numberText, parseInt64, type UpdateReply } from '../updates.js';
import { keyOf } from './keys.js';
import type { ReplyWriter } from './reply.js';

/** What a command sees of its connection. */
export interface RespClient {
  readonly id: number;
  readonly out: ReplyWriter;
  name: string;
  authenticated: boolean;
  /** Sets the protocol of the connection (HELLO). */
  setProto(v: 2 | 3): void;
  /** Replies +OK and closes the connection once the reply is written. */
  quit(): void;
  /** This connection's CP session (opened on first use, closed with the connection): who holds its locks and permits. */
  cpSession(): CoordinationPrimitives;
  /**
   * After a MULTI (which is refused: there are no transactions) until EXEC or DISCARD: every
   * command in between is refused too, so none of what a client queued for the transaction runs.
   */
  inRefusedMulti: boolean;
}

/** What a command sees of the server. */
export interface RespContext {
  readonly map: GridMap<unknown>;
  /** Synchronous read of a key held here (a single-process grid, or a key a cluster member serves): the value, undefined, or NEED (read with map.get). */
  readonly getNow: (key: string) => unknown;
  /** Synchronous byte update (single-process grids): the reply, or undefined when the key's lock is taken (use map.updateBytes). */
  readonly updateNow: ((key: string, kind: string, arg: unknown) => UpdateReply | undefined) | undefined;
  readonly need: unknown;
  readonly partitions: number;
  /** options.maxKeyBytes: a key argument longer than this once stored can never exist (keyIn). */
  readonly maxKeyBytes: number;
  /** options.resp.maxReplyBytes: the largest MGET reply. */
  readonly maxReplyBytes: number;
  /** Checks a password (constant time); undefined when none is set. */
  checkPassword(user: string, pass: Buffer): boolean | undefined;
  info(sections: readonly string[]): Promise<string>;
  config(name: string): string | undefined;
  configNames(): string[];
  /** CONFIG RESETSTAT: INFO's stats start from zero (the Prometheus counters keep counting). */
  resetStats(): void;
  /** grid.cp: primitives whose operations have no owner (atomicLong, atomicRef, reads). */
  readonly cp: CoordinationPrimitives;
  /**
   * The CP name in a command's argument, counted against options.resp.maxCpNames: its bytes
   * mapped as a key's are (keyOf), so UTF-8 names are the library's and other bytes distinct names.
   * @throws {CpCapacityError} when the endpoint has named that many distinct CP names and this one is new (GRID_ERR_CP_CAPACITY).
   */
  cpName(b: Buffer): string;
  /** A key looked up by a command that does not read it through the map's get (GETDEL, GETEX, SET … GET, EXISTS, TYPE, TTL, PTTL): counted in keyspace_hits / keyspace_misses as GET's reads are. */
  countRead(hit: boolean): void;
  /** Connections waiting in a blocking command (CP.LOCK, CP.ACQUIRE): INFO's blocked_clients. */
  blocked: number;
}

export type Run = (cx: RespContext, c: RespClient, argv: Buffer[]) => void | Promise<void>;

export interface CommandSpec {
  name: string;
  /** Redis arity: n exactly n arguments (with the name), -n at least n. */
  arity: number;
  flags: string[];
  firstKey: number;
  lastKey: number;
  step: number;
  /** May run before AUTH. */
  noAuth?: boolean;
  run: Run;
}

// ── helpers ─────────────────────────────────────────────────────────────────────────────────────

export const ERR_SYNTAX = 'ERR syntax error';
export const lower = (b: Buffer): string => (b.length > 64 ? '' : b.toString('latin1').toLowerCase());
export const text = (b: Buffer): string => b.toString('utf8');

/**
 * A client's argument as Redis echoes it in an error text (its `%s` / `%.*s` of a C string): the
 * bytes up to the first NUL, at most `max` of them, one char per byte, for ReplyWriter.errorBytes.
 */
export function echoed(b: Buffer, max = Infinity): string {
  const nul = b.indexOf(0);
  return b.toString('latin1', 0, Math.min(nul < 0 ? b.length : nul, max));
}

/** An int64 argument as Redis reads it, or undefined (the caller replies ERR_NOT_INTEGER). */
export function intArg(b: Buffer): bigint | undefined {
  return parseInt64(b);
}

/** A safe integer argument (counts, times), or undefined. */
export function safeInt(b: Buffer): number | undefined {
  const n = intArg(b);
  return n === undefined || n > BigInt(Number.MAX_SAFE_INTEGER) || n < BigInt(Number.MIN_SAFE_INTEGER) ? undefined : Number(n);
}

/** The bytes RESP shows for a value read with the library's map API. */
export function valueBytes(v: unknown): Buffer | undefined {
  if (v === undefined) return undefined;
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.length);
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (typeof v === 'number') return Buffer.from(numberText(v), 'latin1');
  const b = encodeMsgpack(v);
  return Buffer.from(b.buffer, b.byteOffset, b.length);
}

/** The error reply to a write of a key that keyIn refused: the grid's GRID_ERR_KEY_TOO_LARGE, in the client's bytes. */
export function keyTooLarge(b: Buffer, maxKeyBytes: number): string {
  const stored = b.length > maxKeyBytes ? b.length : Buffer.byteLength(keyOf(b), 'utf8');
  const how = stored === b.length ? '' : ` (${stored} as stored: a key that is not UTF-8 is stored escaped)`;
  return `ERR GRID_ERR_KEY_TOO_LARGE: key is ${b.length} bytes${how}, over maxKeyBytes (${maxKeyBytes})`;
}

/** The text of an error thrown by a map call, as a RESP error. */
export function errorReply(e: unknown): string {
  if (e instanceof MemoryFullError) return "OOM command not allowed when used memory > 'maxmemory'.";
  if (e instanceof GridError) return `ERR ${(e as GridError).code}: ${(e as GridError).message}`;
  return 'ERR internal error';
}

/** A command table entry: Redis's arity, flags and key positions (COMMAND INFO). */
export function spec(name: string, arity: number, flags: string[], firstKey: number, lastKey: number, step: number, run: Run, noAuth = false): CommandSpec {
  return { name, arity, flags, firstKey, lastKey, step, run, noAuth };
}
