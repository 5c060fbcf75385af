/**
 * The coordination primitives over RESP (grid.cp), as module-style commands (`CP.*`, the way Redis
 * modules name theirs). Locks and permits belong to the connection: each connection that uses them
 * gets a CP session of its own (grid.cp.session()), so one client cannot unlock what another
 * holds, and whatever a connection holds is released when it closes (the next waiter gets the
 * lock at once). In a cluster that session is a CP session on the Raft log, like a member's.
 *
 *   CP.LOCK name [PX lease-ms] [WAIT ms]   → the fencing token; nil if WAIT passed first. Without
 *                                            WAIT it blocks the connection until granted (as BLPOP 0).
 *   CP.UNLOCK name                         → OK; an error when this connection does not hold it
 *                                            (or its lease passed): GRID_ERR_LOCK_NOT_HELD
 *   CP.ISLOCKED name                       → 1 or 0
 *   CP.GETLONG name | CP.SETLONG name v | CP.INCRBY name delta → the value (OK for SETLONG)
 *   CP.CASLONG name expected next          → 1 when set, else 0
 *   CP.GETREF name                         → [value or nil, version]
 *   CP.SETREF name value                   → OK
 *   CP.CASREF name version value           → 1 when set (the version was still `version`), else 0
 *   CP.ACQUIRE name [n] [PERMITS total] [WAIT ms] → 1; 0 if WAIT passed first (blocks without WAIT)
 *   CP.RELEASE name [n]                    → OK; GRID_ERR_PERMITS_NOT_HELD when not held
 *   CP.PERMITS name                        → the permits free now
 *
 * Arguments are read as Redis reads numbers (ERR value is not an integer ...); everything the
 * grid refuses comes back as "ERR GRID_ERR_<code>: message".
 */
import { ERR_NOT_INTEGER } from '../updates.js';
import { ERR_SYNTAX, intArg, lower, safeInt, spec, valueBytes, type CommandSpec, type RespClient, type RespContext, type Run } from './command-kit.js';

/** Options after the fixed arguments: each name once, each with one non-negative integer (ms or a count). */
function options(c: RespClient, argv: Buffer[], from: number, allowed: readonly string[], cmd: string): Map<string, number> | undefined {
  const seen = new Map<string, number>();
  for (let i = from; i < argv.length; i += 2) {
    const opt = lower(argv[i]);
    if (!allowed.includes(opt) || seen.has(opt) || i + 1 >= argv.length) {
      c.out.error(ERR_SYNTAX);
      return undefined;
    }
    const v = safeInt(argv[i + 1]);
    if (v === undefined) {
      c.out.error(ERR_NOT_INTEGER);
      return undefined;
    }
    if (opt === 'px' && v <= 0) {
      c.out.error(`ERR invalid expire time in '${cmd}' command`);
      return undefined;
    }
    if (v < 0) {
      c.out.error(opt === 'wait' ? 'ERR timeout is negative' : ERR_NOT_INTEGER);
      return undefined;
    }
    seen.set(opt, v);
  }
  return seen;
}

/** Runs a wait of a blocking command, counted in INFO's blocked_clients while it waits. */
async function blocking<T>(cx: RespContext, p: Promise<T>): Promise<T> {
  cx.blocked++;
  try {
    return await p;
  } finally {
    cx.blocked--;
  }
}

const lock: Run = async (cx, c, argv) => {
  const o = options(c, argv, 2, ['px', 'wait'], 'cp.lock');
  if (o === undefined) return;
  const l = c.cpSession().lock(cx.cpName(argv[1]));
  const leaseMs = o.get('px');
  const wait = o.get('wait');
  const opts = leaseMs === undefined ? undefined : { leaseMs };
  if (wait === undefined) return c.out.int(await blocking(cx, l.lock(opts)));
  const t = await blocking(cx, l.tryLock({ ...opts, timeoutMs: wait }));
  if (t === undefined) c.out.nil();
  else c.out.int(t);
};

const unlock: Run = async (cx, c, argv) => {
  await c.cpSession().lock(cx.cpName(argv[1])).unlock();
  c.out.ok();
};

const isLocked: Run = async (cx, c, argv) => {
  c.out.int((await cx.cp.lock(cx.cpName(argv[1])).isLocked()) ? 1 : 0);
};

const getLong: Run = async (cx, c, argv) => {
  c.out.int(await cx.cp.atomicLong(cx.cpName(argv[1])).get());
};

const setLong: Run = async (cx, c, argv) => {
  const v = intArg(argv[2]);
  if (v === undefined) return c.out.error(ERR_NOT_INTEGER);
  await cx.cp.atomicLong(cx.cpName(argv[1])).set(v);
  c.out.ok();
};

const incrBy: Run = async (cx, c, argv) => {
  const d = intArg(argv[2]);
  if (d === undefined) return c.out.error(ERR_NOT_INTEGER);
  c.out.int(await cx.cp.atomicLong(cx.cpName(argv[1])).addAndGet(d));
};

const casLong: Run = async (cx, c, argv) => {
  const e = intArg(argv[2]);
  const n = intArg(argv[3]);
  if (e === undefined || n === undefined) return c.out.error(ERR_NOT_INTEGER);
  c.out.int((await cx.cp.atomicLong(cx.cpName(argv[1])).compareAndSet(e, n)) ? 1 : 0);
};

const getRef: Run = async (cx, c, argv) => {
  const { value, version } = await cx.cp.atomicRef(cx.cpName(argv[1])).getVersioned();
  c.out.array(2);
  c.out.bulk(valueBytes(value));
  c.out.int(version);
};

/** A RESP value stored in an atomicRef: a copy (argv may view the connection's read buffer). */
const refValue = (b: Buffer): Buffer => Buffer.from(b);

const setRef: Run = async (cx, c, argv) => {
  await cx.cp.atomicRef(cx.cpName(argv[1])).set(refValue(argv[2]));
  c.out.ok();
};

const casRef: Run = async (cx, c, argv) => {
  const ver = safeInt(argv[2]);
  if (ver === undefined || ver < 0) return c.out.error(ERR_NOT_INTEGER);
  c.out.int((await cx.cp.atomicRef(cx.cpName(argv[1])).compareAndSetVersion(ver, refValue(argv[3]))) ? 1 : 0);
};

/**
 * `[n]` as the first optional argument: whatever stands there and is not one of the command's
 * option names (`opts`) is the count, read as Redis reads a count (SPOP, LPOP): anything but a
 * positive integer answers ERR_NOT_POSITIVE. (`CP.ACQUIRE s x` used to be a syntax error, `x`
 * read as an unknown option; digits past an int64 before that too.)
 */
function countArg(argv: Buffer[], opts: readonly string[]): { n: number | undefined; next: number } {
  if (argv.length > 2 && !opts.includes(lower(argv[2]))) return { n: safeInt(argv[2]), next: 3 };
  return { n: 1, next: 2 };
}

/** Redis's text for a count that must be positive (SPOP, SRANDMEMBER, LPOP …). */
const ERR_NOT_POSITIVE = 'ERR value is out of range, must be positive';

const ACQUIRE_OPTIONS = ['permits', 'wait'];

const acquire: Run = async (cx, c, argv) => {
  const { n, next } = countArg(argv, ACQUIRE_OPTIONS);
  if (n === undefined || n < 1) return c.out.error(ERR_NOT_POSITIVE);
  const o = options(c, argv, next, ACQUIRE_OPTIONS, 'cp.acquire');
  if (o === undefined) return;
  const total = o.get('permits');
  const sem = c.cpSession().semaphore(cx.cpName(argv[1]), total === undefined ? undefined : { permits: total });
  const wait = o.get('wait');
  if (wait === undefined) {
    await blocking(cx, sem.acquire(n));
    return c.out.int(1);
  }
  c.out.int((await blocking(cx, sem.tryAcquire(n, { timeoutMs: wait }))) ? 1 : 0);
};

const release: Run = async (cx, c, argv) => {
  const { n, next } = countArg(argv, []);
  if (n === undefined || n < 1) return c.out.error(ERR_NOT_POSITIVE);
  if (next < argv.length) return c.out.error(ERR_SYNTAX);
  await c.cpSession().semaphore(cx.cpName(argv[1])).release(n);
  c.out.ok();
};

const permits: Run = async (cx, c, argv) => {
  c.out.int(await cx.cp.semaphore(cx.cpName(argv[1])).availablePermits());
};

const W = ['write'];
const WB = ['write', 'blocking'];
const R = ['readonly'];

// CP names are not keys of the map: no key positions (so they never run beside other requests)
const cp = (name: string, arity: number, flags: string[], run: Run): CommandSpec => spec(name, arity, flags, 0, 0, 0, run);

/** The CP.* commands, for the command table. */
export const CP_SPECS: readonly CommandSpec[] = [
  cp('cp.lock', -2, WB, lock),
  cp('cp.unlock', 2, W, unlock),
  cp('cp.islocked', 2, R, isLocked),
  cp('cp.getlong', 2, R, getLong),
  cp('cp.setlong', 3, W, setLong),
  cp('cp.incrby', 3, W, incrBy),
  cp('cp.caslong', 4, W, casLong),
  cp('cp.getref', 2, R, getRef),
  cp('cp.setref', 3, W, setRef),
  cp('cp.casref', 4, W, casRef),
  cp('cp.acquire', -2, WB, acquire),
  cp('cp.release', -2, W, release),
  cp('cp.permits', 2, R, permits),
];
