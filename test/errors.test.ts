import { describe, expect, it } from 'vitest';
import * as E from '../src/errors.js';
import { RaftConfChangePendingError, RaftInvalidArgumentError, RaftNotLeaderError, RaftTransferInProgressError } from '../src/raft/index.js';

const CLASSES: Array<[new (m: string, d?: Record<string, unknown>) => E.GridError, string]> = [
  [E.InvalidOptionError, 'GRID_ERR_INVALID_OPTION'],
  [E.InvalidArgumentError, 'GRID_ERR_INVALID_ARGUMENT'],
  [E.KeyTooLargeError, 'GRID_ERR_KEY_TOO_LARGE'],
  [E.ValueTooLargeError, 'GRID_ERR_VALUE_TOO_LARGE'],
  [E.UnencodableValueError, 'GRID_ERR_UNENCODABLE_VALUE'],
  [E.MemoryFullError, 'GRID_ERR_MEMORY_FULL'],
  [E.LockTimeoutError, 'GRID_ERR_LOCK_TIMEOUT'],
  [E.GridClosedError, 'GRID_ERR_CLOSED'],
  [E.WrongTypeError, 'GRID_ERR_WRONG_TYPE'],
  [E.TooManyMapsError, 'GRID_ERR_TOO_MANY_MAPS'],
  [E.AttachError, 'GRID_ERR_ATTACH'],
  [E.WorkerError, 'GRID_ERR_WORKER'],
  [E.UnsupportedError, 'GRID_ERR_UNSUPPORTED'],
  [E.MemberUnreachableError, 'GRID_ERR_MEMBER_UNREACHABLE'],
  [E.InternalError, 'GRID_ERR_INTERNAL'],
  [E.FrameLimitError, 'GRID_ERR_FRAME_LIMIT'],
  [E.IntegrityError, 'GRID_ERR_INTEGRITY'],
  [E.ModuleLoadError, 'GRID_ERR_MODULE'],
  [E.UnknownModuleError, 'GRID_ERR_UNKNOWN_MODULE'],
  [E.RetryableGridError, 'GRID_ERR_RETRYABLE'],
  [E.PartitionMovedError, 'GRID_ERR_PARTITION_MOVED'],
  [E.MemberLeftError, 'GRID_ERR_MEMBER_LEFT'],
  [E.NotLeaderError, 'GRID_ERR_NOT_LEADER'],
  [E.PartitionUnavailableError, 'GRID_ERR_PARTITION_UNAVAILABLE'],
  [E.PartitionLostError, 'GRID_ERR_PARTITION_LOST'],
  [E.LockNotHeldError, 'GRID_ERR_LOCK_NOT_HELD'],
  [E.PermitsNotHeldError, 'GRID_ERR_PERMITS_NOT_HELD'],
  [E.StaleTokenError, 'GRID_ERR_STALE_TOKEN'],
  [E.CpKindError, 'GRID_ERR_CP_KIND'],
  [E.CpCapacityError, 'GRID_ERR_CP_CAPACITY'],
  [E.FetchLoaderError, 'GRID_ERR_FETCH_LOADER'],
  [E.CpSessionError, 'GRID_ERR_CP_SESSION'],
  [E.CpRangeError, 'GRID_ERR_CP_RANGE'],
  [E.ConsensusError, 'GRID_ERR_RAFT'],
  [E.ConsensusNotLeaderError, 'GRID_ERR_RAFT_NOT_LEADER'],
  [E.ConsensusTransferError, 'GRID_ERR_RAFT_TRANSFER'],
  [E.ConsensusConfPendingError, 'GRID_ERR_RAFT_CONF_PENDING'],
  [E.ConsensusBusyError, 'GRID_ERR_RAFT_BUSY'],
];

describe('GridError tree', () => {
  it.each(CLASSES)('%o carries its stable code, its name, and is a GridError', (Cls, code) => {
    const e = new Cls('boom', { a: 1 });
    expect(e.code).toBe(code);
    expect(e.name).toBe(Cls.name);
    expect(e.message).toBe('boom');
    expect(e.data).toEqual({ a: 1 });
    expect(e).toBeInstanceOf(Error);
    expect(e).toBeInstanceOf(E.GridError);
    expect(e).toBeInstanceOf(Cls);
    const other = Cls === E.LockTimeoutError ? E.GridClosedError : E.LockTimeoutError;
    expect(e instanceof other).toBe(false);
  });

  it('every code is distinct and listed in ErrorCodes', () => {
    const codes = CLASSES.map(([, c]) => c);
    expect(new Set(codes).size).toBe(codes.length);
    for (const c of codes) expect(Object.values(E.ErrorCodes)).toContain(c);
  });

  it('an unknown compute module is a kind of module error, and a module error is not an unknown module', () => {
    expect(new E.UnknownModuleError('x')).toBeInstanceOf(E.ModuleLoadError);
    expect(new E.ModuleLoadError('x')).not.toBeInstanceOf(E.UnknownModuleError);
  });

  it('a CP kind clash is a wrong-type error, and too few permits held is a lock-not-held error', () => {
    expect(new E.CpKindError('x')).toBeInstanceOf(E.WrongTypeError);
    expect(new E.PermitsNotHeldError('x')).toBeInstanceOf(E.LockNotHeldError);
    expect(new E.LockNotHeldError('x')).not.toBeInstanceOf(E.PermitsNotHeldError);
  });

  it('retryable errors are RetryableGridError, the others are not', () => {
    expect(new E.PartitionMovedError('x')).toBeInstanceOf(E.RetryableGridError);
    expect(new E.MemberLeftError('x')).toBeInstanceOf(E.RetryableGridError);
    expect(new E.LockTimeoutError('x')).not.toBeInstanceOf(E.RetryableGridError);
  });

  it.each(CLASSES)('%o survives a structured clone as {code, message, data} and is rebuilt as the same class', (Cls) => {
    const wire = structuredClone(E.errorToWire(new Cls('across threads', { partition: 3 })));
    const back = E.errorFromWire(wire);
    expect(back).toBeInstanceOf(Cls);
    expect(back.message).toBe('across threads');
    expect(back.data).toEqual({ partition: 3 });
  });

  it('instanceof works for an error object from another copy of the module (brand, not identity)', () => {
    const e = new E.LockTimeoutError('x');
    const copy = Object.create(Object.getPrototypeOf(Object.getPrototypeOf(e)));
    for (const s of Object.getOwnPropertySymbols(e)) Object.defineProperty(copy, s, { value: (e as any)[s] });
    expect(copy).toBeInstanceOf(E.LockTimeoutError);
    expect(copy).not.toBeInstanceOf(E.GridClosedError);
  });

  it('the Raft core\'s errors are registered: they are GridErrors of their class, and cross the wire with code, data and class intact', () => {
    const cases: Array<[Error, new (m: string) => E.GridError]> = [
      [new RaftNotLeaderError('n2'), E.ConsensusNotLeaderError],
      [new RaftTransferInProgressError('n3'), E.ConsensusTransferError],
      [new RaftConfChangePendingError('pending'), E.ConsensusConfPendingError],
      [new RaftInvalidArgumentError('bad'), E.InvalidArgumentError],
    ];
    for (const [raw, Cls] of cases) {
      expect(raw).toBeInstanceOf(E.GridError);
      expect(raw).toBeInstanceOf(Cls);
      const back = E.errorFromWire(E.errorToWire(raw));
      expect(back).toBeInstanceOf(Cls);
      expect(back.code).toBe((raw as E.GridError).code);
      expect(back.message).toBe(raw.message);
      if (Cls !== E.InvalidArgumentError) expect(back).toBeInstanceOf(E.ConsensusError);
    }
    expect((E.errorFromWire(E.errorToWire(new RaftNotLeaderError('n2'))) as E.GridError).data).toEqual({ leader: 'n2' });
  });

  it('an unknown wire code becomes InternalError keeping the original code', () => {
    const e = E.errorFromWire({ code: 'GRID_ERR_FROM_THE_FUTURE', message: 'new' });
    expect(e).toBeInstanceOf(E.InternalError);
    expect(e.data).toEqual({ code: 'GRID_ERR_FROM_THE_FUTURE' });
  });

  it('a plain Error goes on the wire as GRID_ERR_INTERNAL with its message', () => {
    expect(E.errorToWire(new TypeError('bad'))).toEqual({ code: 'GRID_ERR_INTERNAL', message: 'bad' });
  });

  it('refuses to register a second class with an existing code', () => {
    class Impostor extends E.GridError {
      static override readonly code: string = 'GRID_ERR_CLOSED';
    }
    expect(() => E.registerError(Impostor)).toThrow(/GRID_ERR_CLOSED/);
  });
});
