/**
 * GridError tree. Every failure a caller can see is a GridError subclass with a stable
 * `GRID_ERR_*` code. Errors crossing a thread or the wire travel as `{ code, message, data }`
 * (structured clone drops custom fields and class identity) and are rebuilt from the registry.
 * `instanceof` works across two copies of this module: classes are branded by code through
 * `Symbol.for`, not by identity.
 */
const BRAND = Symbol.for('shardgrid.GridError.codes');

type ErrorData = Record<string, unknown>;
/** A GridError as it crosses a thread or the wire (see errorToWire, errorFromWire). */
export interface WireError {
  /** The error's `GRID_ERR_*` code. */
  code: string;
  /** The error's message. */
  message: string;
  /** The error's `data`, if any. */
  data?: ErrorData;
}

/**
 * The parent of every error the library throws or rejects with: each subclass has a stable
 * `GRID_ERR_*` code (the static `code` of the class, copied to each instance). `instanceof` works
 * across two copies of the library in one process (the ES module and CommonJS builds): classes
 * are branded by code through `Symbol.for`, not by identity.
 *
 * @example
 * ```ts
 * try {
 *   await users.set(key, value);
 * } catch (e) {
 *   if (e instanceof GridError && e.code === 'GRID_ERR_MEMORY_FULL') { ... }
 * }
 * ```
 */
export class GridError extends Error {
  /** The code of this class (`GRID_ERR` for GridError itself; each subclass has its own). */
  static readonly code: string = 'GRID_ERR';
  /** The stable code of the error's class, e.g. `GRID_ERR_KEY_TOO_LARGE`. */
  readonly code: string;
  /** Details of the error (e.g. `{ option }`, `{ size, limit }`, `{ partition }`), or undefined. */
  readonly data: ErrorData | undefined;

  /**
   * @param message - The error's message.
   * @param data - Details, kept as `data` (and carried when the error crosses a thread or the wire).
   */
  constructor(message: string, data?: ErrorData) {
    super(message);
    const ctor = new.target as typeof GridError;
    this.name = ctor.name;
    this.code = ctor.code;
    this.data = data;
    // the codes of this class and every parent: what instanceof checks across module copies
    const codes: string[] = [];
    for (let c: unknown = ctor; typeof c === 'function' && (c as typeof GridError).code !== undefined; c = Object.getPrototypeOf(c)) {
      codes.push((c as typeof GridError).code);
      if (c === GridError) break;
    }
    Object.defineProperty(this, BRAND, { value: codes, enumerable: false });
  }

  /** `x instanceof C`: true when `x` was made by C or a subclass of C, in this copy of the library or another one. */
  static override [Symbol.hasInstance](x: unknown): boolean {
    if (typeof x !== 'object' || x === null) return false;
    const codes = (x as Record<symbol, unknown>)[BRAND];
    return Array.isArray(codes) && codes.includes(this.code);
  }
}

type GridErrorClass = (new (message: string, data?: ErrorData) => GridError) & { code: string };
const registry = new Map<string, GridErrorClass>();

/**
 * Registers an error class for rebuilding from the wire; a second class with the same code is
 * refused. Every class of this module is registered when it loads.
 *
 * @param cls - A GridError subclass with its own static `code`.
 * @throws {Error} when another class is already registered with the same code.
 */
export function registerError(cls: GridErrorClass): void {
  const known = registry.get(cls.code);
  if (known !== undefined && known !== cls) throw new Error(`shardgrid: two error classes claim the code ${cls.code}`);
  registry.set(cls.code, cls);
}

/** GRID_ERR_INVALID_OPTION: an option (of createGrid, grid.map, …) is unknown or invalid; `data.option` names it. */
export class InvalidOptionError extends GridError { static override readonly code: string = 'GRID_ERR_INVALID_OPTION'; }
/** GRID_ERR_INVALID_ARGUMENT: an argument of a call is invalid (a key that is not a string, an undefined value, a bad ttl, count or lease); `data.option` names the option when it is one. */
export class InvalidArgumentError extends GridError { static override readonly code: string = 'GRID_ERR_INVALID_ARGUMENT'; }
/** GRID_ERR_KEY_TOO_LARGE: a key is over options.maxKeyBytes UTF-8 bytes (`data.size`, `data.limit`). */
export class KeyTooLargeError extends GridError { static override readonly code: string = 'GRID_ERR_KEY_TOO_LARGE'; }
/** GRID_ERR_VALUE_TOO_LARGE: an encoded value is over its limit, options.maxValueBytes for a map value (`data.size`, `data.limit`), options.cp.maxValueBytes for an atomicRef. */
export class ValueTooLargeError extends GridError { static override readonly code: string = 'GRID_ERR_VALUE_TOO_LARGE'; }
/** GRID_ERR_UNENCODABLE_VALUE: a value cannot be encoded (msgpackr refused it). */
export class UnencodableValueError extends GridError { static override readonly code: string = 'GRID_ERR_UNENCODABLE_VALUE'; }
/** GRID_ERR_MEMORY_FULL: the memory budget (options.memory) is exhausted and nothing is left to evict. */
export class MemoryFullError extends GridError { static override readonly code: string = 'GRID_ERR_MEMORY_FULL'; }
/** GRID_ERR_LOCK_TIMEOUT: a wait ran out: for a partition lock (options.lockTimeout; 200 ms for the main thread's synchronous map forms), or for semaphore permits (timeoutMs). */
export class LockTimeoutError extends GridError { static override readonly code: string = 'GRID_ERR_LOCK_TIMEOUT'; }
/** GRID_ERR_CLOSED: the grid (for an attached grid: the grid of its handle) is closed. */
export class GridClosedError extends GridError { static override readonly code: string = 'GRID_ERR_CLOSED'; }
/** GRID_ERR_WRONG_TYPE: an operation met a value of another type (increment of a value that is not a number, sum/min/max over values that are not numbers). */
export class WrongTypeError extends GridError { static override readonly code: string = 'GRID_ERR_WRONG_TYPE'; }
/** GRID_ERR_TOO_MANY_MAPS: the grid already has options.maxMaps maps. */
export class TooManyMapsError extends GridError { static override readonly code: string = 'GRID_ERR_TOO_MANY_MAPS'; }
/** GRID_ERR_ATTACH: attachGrid was given something that is not a usable grid handle. */
export class AttachError extends GridError { static override readonly code: string = 'GRID_ERR_ATTACH'; }
/** GRID_ERR_WORKER: a virtual node did not start (no 'ready' within 10 s, or it exited while starting). */
export class WorkerError extends GridError { static override readonly code: string = 'GRID_ERR_WORKER'; }
/** GRID_ERR_UNSUPPORTED: the operation is not available here (setSync/deleteSync in a cluster, a blocking `*Sync` CP form on the main thread, any `*Sync` CP form in a clustered grid, …). */
export class UnsupportedError extends GridError { static override readonly code: string = 'GRID_ERR_UNSUPPORTED'; }
/** GRID_ERR_MEMBER_UNREACHABLE: a member (or the main thread of the member an attached thread forwards to) could not be reached. */
export class MemberUnreachableError extends GridError { static override readonly code: string = 'GRID_ERR_MEMBER_UNREACHABLE'; }
/** GRID_ERR_INTERNAL: an error that is not a GridError, or one with an unknown code, after it crossed a thread or the wire. */
export class InternalError extends GridError { static override readonly code: string = 'GRID_ERR_INTERNAL'; }
/** A peer sent a malformed, truncated, oversized or unknown frame; that connection is closed. */
export class ProtocolError extends GridError { static override readonly code: string = 'GRID_ERR_PROTOCOL'; }
/** A peer's frame broke a named limit (pre-auth size, elements, depth, keys per MGET, messages per BATCH); that connection is closed. */
export class FrameLimitError extends ProtocolError { static override readonly code: string = 'GRID_ERR_FRAME_LIMIT'; }
/** A sealed frame failed authentication (tampered, replayed, reordered, truncated or from another session); that connection is closed. */
export class IntegrityError extends ProtocolError { static override readonly code: string = 'GRID_ERR_INTEGRITY'; }
/** A peer failed (or refused) the shared-secret handshake. */
export class AuthenticationError extends GridError { static override readonly code: string = 'GRID_ERR_AUTH'; }
/** A remote request or a retried operation ran past its deadline. */
export class TimeoutError extends GridError { static override readonly code: string = 'GRID_ERR_TIMEOUT'; }
/** A user module (entry processor, aggregator) could not be loaded or lacks the named export. */
export class ModuleLoadError extends GridError { static override readonly code: string = 'GRID_ERR_MODULE'; }
/**
 * A call (local, from another thread or from another member) named a compute module this grid did
 * not register at start (options.compute.modules / --compute-module). Code is never loaded from a
 * location given in a call. A ModuleLoadError, so `instanceof ModuleLoadError` still catches it.
 */
export class UnknownModuleError extends ModuleLoadError { static override readonly code: string = 'GRID_ERR_UNKNOWN_MODULE'; }
/** User compute code threw, or returned/stored a value that cannot be encoded. */
export class ComputeError extends GridError { static override readonly code: string = 'GRID_ERR_COMPUTE'; }
/** Parent of the conditions the library retries itself (by class, never by message). */
export class RetryableGridError extends GridError { static override readonly code: string = 'GRID_ERR_RETRYABLE'; }
/** GRID_ERR_PARTITION_MOVED: the member asked is not the partition's primary (anymore). Retried inside the library; seen when the retries run out. */
export class PartitionMovedError extends RetryableGridError { static override readonly code: string = 'GRID_ERR_PARTITION_MOVED'; }
/** GRID_ERR_MEMBER_LEFT: a retryable condition (registered, so that one crossing a thread or the wire keeps its class). */
export class MemberLeftError extends RetryableGridError { static override readonly code: string = 'GRID_ERR_MEMBER_LEFT'; }
/** The member asked is not the metadata Raft leader (data.leader names the one it knows, if any). */
export class NotLeaderError extends RetryableGridError { static override readonly code: string = 'GRID_ERR_NOT_LEADER'; }
/**
 * The partition's primary is here but may not serve now: its lease lapsed, or an older primary's
 * lease may still run (a hand-over in progress). Retried inside the library.
 */
export class PartitionUnavailableError extends RetryableGridError { static override readonly code: string = 'GRID_ERR_PARTITION_UNAVAILABLE'; }
/** Every copy of the partition was lost (more failures than `backups` tolerates): its data is gone. */
export class PartitionLostError extends GridError { static override readonly code: string = 'GRID_ERR_PARTITION_LOST'; }

/** unlock() by a thread that does not hold the lock, or whose lease passed (another thread may have held it since). */
export class LockNotHeldError extends GridError { static override readonly code: string = 'GRID_ERR_LOCK_NOT_HELD'; }
/** A semaphore release of more permits than this thread holds. A LockNotHeldError. */
export class PermitsNotHeldError extends LockNotHeldError { static override readonly code: string = 'GRID_ERR_PERMITS_NOT_HELD'; }
/** A fencing token older than the newest one a fence (createFence) has seen for that resource. */
export class StaleTokenError extends GridError { static override readonly code: string = 'GRID_ERR_STALE_TOKEN'; }
/** A coordination primitive's name is already used by a primitive of another kind. A WrongTypeError. */
export class CpKindError extends WrongTypeError { static override readonly code: string = 'GRID_ERR_CP_KIND'; }
/** The CP region is full: options.cp.primitives names, or options.cp.waiters waiter/holding records. */
export class CpCapacityError extends GridError { static override readonly code: string = 'GRID_ERR_CP_CAPACITY'; }
/** map.fetch: the loader of the caller that loaded the key (another thread or member) threw; `data.cause` is its error code, if any. */
export class FetchLoaderError extends GridError { static override readonly code: string = 'GRID_ERR_FETCH_LOADER'; }
/**
 * Clustered grid.cp: this member's CP session expired (the metadata leader missed its heartbeats
 * for options.cp.sessionTtlMs) while the operation was under way: its locks and permits were
 * released, and a write may or may not have been applied. Later calls use a new session.
 */
export class CpSessionError extends GridError { static override readonly code: string = 'GRID_ERR_CP_SESSION'; }
/** Clustered atomicLong: a value or result outside the safe-integer range (±2^53-1). An InvalidArgumentError. */
export class CpRangeError extends InvalidArgumentError { static override readonly code: string = 'GRID_ERR_CP_RANGE'; }
/**
 * The metadata Raft core's refusals (src/raft/types.ts throws or returns its own classes, which
 * carry these codes and brands because src/raft imports nothing from here): registered so that one
 * crossing a thread or the wire is rebuilt with its code and `instanceof` intact instead of
 * becoming GRID_ERR_INTERNAL.
 */
export class ConsensusError extends GridError { static override readonly code: string = 'GRID_ERR_RAFT'; }
/** A proposal, membership change or leadership transfer on a Raft node that is not the leader (data.leader, if known). */
export class ConsensusNotLeaderError extends ConsensusError { static override readonly code: string = 'GRID_ERR_RAFT_NOT_LEADER'; }
/** The Raft leader is handing over leadership and takes no proposals until that ends (data.to). */
export class ConsensusTransferError extends ConsensusError { static override readonly code: string = 'GRID_ERR_RAFT_TRANSFER'; }
/** A Raft membership change while another is uncommitted. */
export class ConsensusConfPendingError extends ConsensusError { static override readonly code: string = 'GRID_ERR_RAFT_CONF_PENDING'; }
/** Too many linearizable reads wait for the Raft leader's heartbeat round. */
export class ConsensusBusyError extends ConsensusError { static override readonly code: string = 'GRID_ERR_RAFT_BUSY'; }

const ALL: GridErrorClass[] = [
  GridError, InvalidOptionError, InvalidArgumentError, KeyTooLargeError, ValueTooLargeError, UnencodableValueError,
  MemoryFullError, LockTimeoutError, GridClosedError, WrongTypeError, TooManyMapsError, AttachError, WorkerError,
  UnsupportedError, MemberUnreachableError, InternalError, ProtocolError, FrameLimitError, IntegrityError, AuthenticationError, TimeoutError,
  ModuleLoadError, UnknownModuleError, ComputeError, RetryableGridError, PartitionMovedError, MemberLeftError,
  NotLeaderError, PartitionUnavailableError, PartitionLostError, LockNotHeldError, PermitsNotHeldError, StaleTokenError, CpKindError,
  CpCapacityError, FetchLoaderError, CpSessionError, CpRangeError,
  ConsensusError, ConsensusNotLeaderError, ConsensusTransferError, ConsensusConfPendingError, ConsensusBusyError,
];
for (const cls of ALL) registerError(cls);

/** Every error class of this module by name, with its code (`{ KeyTooLargeError: 'GRID_ERR_KEY_TOO_LARGE', … }`). */
export const ErrorCodes: Readonly<Record<string, string>> = Object.freeze(Object.fromEntries(ALL.map((c) => [c.name, c.code])));

/**
 * An error as plain data that can cross a thread or the wire: a GridError's code, message and a
 * copy of its data; anything else becomes GRID_ERR_INTERNAL with its message.
 *
 * @param err - Any thrown value.
 */
export function errorToWire(err: unknown): WireError {
  if (err instanceof GridError) {
    const e = err as GridError;
    return e.data === undefined ? { code: e.code, message: e.message } : { code: e.code, message: e.message, data: { ...e.data } };
  }
  return { code: InternalError.code, message: err instanceof Error ? err.message : String(err) };
}

/**
 * The GridError that {@link errorToWire} described, rebuilt with its registered class (so
 * `instanceof` holds); an unknown code gives an InternalError whose `data.code` keeps it.
 *
 * @param w - What errorToWire returned.
 */
export function errorFromWire(w: WireError): GridError {
  const cls = registry.get(w?.code);
  if (cls === undefined) return new InternalError(String(w?.message ?? 'unknown error'), { ...(w?.data ?? {}), code: w?.code });
  return new cls(String(w.message), w.data);
}
