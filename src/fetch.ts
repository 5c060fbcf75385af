/**
 * Read-through `map.fetch(key, loader, options)`: a miss calls `loader` once for every caller
 * that misses the same key at the same time, in this thread, in every other thread of the
 * process and, in a cluster, on every member (native-notes.md, "Read-through fetch").
 *
 * - In one thread, concurrent fetches of a key share one promise; each caller that joins it
 *   waits at most its own `timeoutMs` (`joinWithin`), as a waiter in another thread does.
 * - Across threads and members, the first to miss claims the load: `setIfAbsent` of a claim
 *   record in the internal map CLAIM_MAP (under `claimKey`), which is linearizable at the
 *   key's partition (its lock in one process, its primary in a cluster). The claim carries a
 *   random token and a TTL (`claimTtl`), so the claim of a thread or member that died while
 *   loading expires and the next caller loads.
 * - The claimer calls its loader, writes the value, then deletes the claim. The others poll
 *   (1 ms doubling to 50 ms): the value appearing, or the claim gone, ends the wait.
 * - A loader that throws caches nothing: the claimer replaces its claim with an error record
 *   (same token, the claim's expiry) and rethrows to its own callers; the waiters that saw that token get
 *   a FetchLoaderError with its message. A later fetch that finds an error record of a token it
 *   never waited on takes it as no claim and loads again.
 * - `staleWhileRevalidate: ms`: the value is kept `ttl + ms`, and a freshness record says until
 *   when it is fresh; a fetch of a stale value returns it at once and refreshes it in the
 *   background (one refresh for all callers, as above; a failed refresh keeps the stale value).
 */
import { createHash } from 'node:crypto';
import { FetchLoaderError, InvalidArgumentError, TimeoutError } from './errors.js';

/** The internal map of claims and freshness records. */
export const CLAIM_MAP = 'shardgrid:fetch';
const POLL_FIRST_MS = 1;
const POLL_MAX_MS = 50;

/** Options of {@link GridMap.fetch}. */
export interface FetchOptions {
  /** TTL of the loaded value, ms (default: the map's). */
  ttl?: number;
  /** Serve a value up to this many ms past its ttl while one caller refreshes it in the background; needs a ttl (here or the map's). Default 0. */
  staleWhileRevalidate?: number;
  /** How long a caller waits for another's load before GRID_ERR_TIMEOUT, and the claim's TTL. Default 30000. */
  timeoutMs?: number;
}

/** What fetch needs of a map: the calls every map kind (local, routed, forwarded) has. */
export interface FetchTarget<V> {
  readonly name: string;
  readonly defaultTtl: number;
  get(key: string): Promise<V | undefined>;
  set(key: string, value: V, options?: { ttl?: number }): Promise<void>;
}

export interface ClaimMap {
  get(key: string): Promise<unknown>;
  setIfAbsent(key: string, value: unknown, options?: { ttl?: number }): Promise<boolean>;
  compareAndSet(key: string, expected: unknown, next: unknown): Promise<boolean>;
  set(key: string, value: unknown, options?: { ttl?: number }): Promise<void>;
  delete(key: string): Promise<boolean>;
}

/** A claim record: [token, 0] while loading, [token, 1, message, code] after the loader threw. */
type Claim = [string, 0] | [string, 1, string, string];

function isClaim(x: unknown): x is Claim {
  return Array.isArray(x) && typeof x[0] === 'string' && (x[1] === 0 || (x[1] === 1 && typeof x[2] === 'string' && typeof x[3] === 'string'));
}

/** Longest key of a claim or freshness record, UTF-8 bytes (any maxKeyBytes from this up fits every one). */
const CLAIM_KEY_MAX = 24;

/**
 * The CLAIM_MAP key of the claim (`kind` 'c') or the freshness record ('f') of `key` in map
 * `name`: the kind, the name's length, ':', the name and the key, so that no two (kind, map, key)
 * share one (`<map>\0<key>` and `<map>\0<key>\0f` did for keys or names holding NUL); when that
 * is over CLAIM_KEY_MAX bytes, the kind, '#' and 132 bits of its SHA-256 (a key near maxKeyBytes
 * made a claim key over it). The same on every member and thread, whatever their options; a
 * digest collision would only make a fetch wait for another key's load.
 */
function claimKey(kind: 'c' | 'f', name: string, key: string): string {
  const k = `${kind}${name.length}:${name}${key}`;
  if (k.length <= CLAIM_KEY_MAX && Buffer.byteLength(k, 'utf8') <= CLAIM_KEY_MAX) return k;
  return `${kind}#${createHash('sha256').update(k, 'utf8').digest('base64url').slice(0, 22)}`;
}

function token(): string {
  return `${process.pid.toString(36)}.${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
}

/**
 * The loader of {@link GridMap.fetch} (exported as `FetchLoader`): called with the key on a miss;
 * what it returns (or its promise resolves to) is stored and returned to every caller waiting
 * for that key. When it throws, nothing is cached.
 */
export type Loader<V> = (key: string) => V | Promise<V>;

interface Resolved {
  ttl: number | undefined;
  swr: number;
  timeoutMs: number;
}

function resolve(o: FetchOptions | undefined): Resolved {
  if (o === undefined) return { ttl: undefined, swr: 0, timeoutMs: 30_000 };
  if (o === null || typeof o !== 'object') throw new InvalidArgumentError(`fetch options must be an object or a number of ms, the ttl (got ${o === null ? 'null' : typeof o})`, { option: 'options' });
  for (const k of Object.keys(o)) if (k !== 'ttl' && k !== 'staleWhileRevalidate' && k !== 'timeoutMs') throw new InvalidArgumentError(`unknown fetch option '${k}'`);
  const ms = (v: unknown, name: string, min: number): number | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new InvalidArgumentError(`fetch options.${name} must be a finite number of ms >= ${min} (got ${typeof v === 'string' ? `the string '${v.slice(0, 40)}'` : typeof v === 'number' ? String(v) : typeof v})`, { option: `options.${name}` });
    return v;
  };
  return { ttl: ms(o.ttl, 'ttl', 0), swr: ms(o.staleWhileRevalidate, 'staleWhileRevalidate', 0) ?? 0, timeoutMs: ms(o.timeoutMs, 'timeoutMs', 1) ?? 30_000 };
}

/** Per map handle: the loads of this thread in flight, by key. */
const inflight = new WeakMap<object, Map<string, Promise<unknown>>>();

/** Per claim map (one per grid): the claims this grid holds for loads still running, claim key → token. */
const held = new WeakMap<ClaimMap, Map<string, string>>();

function hold(claims: ClaimMap, ck: string, t: string): void {
  let h = held.get(claims);
  if (h === undefined) held.set(claims, (h = new Map()));
  h.set(ck, t);
}

function unhold(claims: ClaimMap, ck: string, t: string): void {
  const h = held.get(claims);
  if (h !== undefined && h.get(ck) === t) h.delete(ck);
}

/**
 * Releases every claim this grid holds for a load still running (grid.close() calls it before the
 * grid stops): callers waiting for those loads in other threads or members find the claim gone
 * and load themselves, instead of waiting until timeoutMs for a value the closed grid can no
 * longer store. The loads go on for their own callers, whose store then fails with
 * GRID_ERR_CLOSED.
 */
export async function releaseHeldClaims(claims: ClaimMap): Promise<void> {
  const h = held.get(claims);
  if (h === undefined || h.size === 0) return;
  const all = [...h];
  h.clear();
  await Promise.allSettled(all.map(([ck, t]) => releaseClaim(claims, ck, t)));
}

export function fetchThrough<V>(map: FetchTarget<V>, claims: ClaimMap, key: string, loader: Loader<V>, options?: FetchOptions): Promise<V> {
  if (typeof loader !== 'function') throw new InvalidArgumentError('fetch(key, loader): loader must be a function');
  const o = resolve(options);
  if (o.swr > 0 && (o.ttl ?? map.defaultTtl) <= 0) throw new InvalidArgumentError('fetch options.staleWhileRevalidate needs a ttl (in the options or the map\'s default)');
  let mine = inflight.get(map);
  if (mine === undefined) inflight.set(map, (mine = new Map()));
  const running = mine.get(key);
  if (running !== undefined) return joinWithin(running as Promise<V>, key, o.timeoutMs);
  const p = fetchOnce(map, claims, key, loader, o).finally(() => mine!.delete(key));
  mine.set(key, p);
  return p;
}

async function fetchOnce<V>(map: FetchTarget<V>, claims: ClaimMap, key: string, loader: Loader<V>, o: Resolved): Promise<V> {
  const v = await map.get(key);
  if (v !== undefined) {
    if (o.swr > 0) {
      const fresh = await claims.get(claimKey('f', map.name, key));
      if (typeof fresh !== 'number' || Date.now() >= fresh) void refresh(map, claims, claimKey('c', map.name, key), key, loader, o);
    }
    return v;
  }
  const ck = claimKey('c', map.name, key);
  const deadline = Date.now() + o.timeoutMs;
  for (let seen: string | undefined; ; ) {
    const t = token();
    if (await claims.setIfAbsent(ck, [t, 0] satisfies Claim, { ttl: o.timeoutMs })) {
      hold(claims, ck, t);
      // Checked again under our claim: another caller may have stored the value and released its
      // claim between our miss and our claim (a waiter that read no value, then no claim, starts
      // over here). Its set finished before its release, and our claim came after that release.
      let stored: V | undefined;
      try {
        stored = await map.get(key);
      } catch (e) {
        unhold(claims, ck, t);
        throw e;
      }
      if (stored !== undefined) {
        unhold(claims, ck, t);
        await releaseClaim(claims, ck, t);
        return stored;
      }
      return load(map, claims, ck, key, t, loader, o);
    }
    // someone else's claim (or an error record): wait for its outcome
    const c = await claims.get(ck);
    if (isClaim(c) && c[1] === 1 && c[0] !== seen) {
      // the error of a load we never waited on: no claim for us, load again
      if (await claims.compareAndSet(ck, c, [t, 0] satisfies Claim)) {
        hold(claims, ck, t);
        return load(map, claims, ck, key, t, loader, o);
      }
      continue;
    }
    if (isClaim(c)) seen = c[0];
    const r = await waitFor(map, claims, ck, key, seen, deadline);
    if (r.done) return r.value as V;
    if (Date.now() >= deadline) throw timeoutError(key, o.timeoutMs);
  }
}

/** The error of a caller whose wait for another caller's load of `key` ran out. */
function timeoutError(key: string, timeoutMs: number): TimeoutError {
  return new TimeoutError(`fetch of '${key}': no load finished within ${timeoutMs} ms`, { key, timeoutMs });
}

/**
 * A fetch joining the fetch of the same key already running in this thread. Sharing that promise
 * keeps the load single (one claim, one loader call per thread), but it settles only when the
 * starter's loader does (nothing bounds a loader) or the starter's own wait ends: the joiner
 * stops waiting after its own timeoutMs, as waitFor does in another thread. The running fetch
 * goes on for the caller that started it.
 */
function joinWithin<V>(running: Promise<V>, key: string, timeoutMs: number): Promise<V> {
  return new Promise<V>((resolve, reject) => {
    const timer = setTimeout(() => reject(timeoutError(key, timeoutMs)), timeoutMs);
    void running.then(resolve, reject).finally(() => clearTimeout(timer));
  });
}

/** This caller holds the claim of token t (held, see hold()): load, store, release. */
async function load<V>(map: FetchTarget<V>, claims: ClaimMap, ck: string, key: string, t: string, loader: Loader<V>, o: Resolved): Promise<V> {
  try {
    return await loadHeld(map, claims, ck, key, t, loader, o);
  } finally {
    unhold(claims, ck, t);
  }
}

async function loadHeld<V>(map: FetchTarget<V>, claims: ClaimMap, ck: string, key: string, t: string, loader: Loader<V>, o: Resolved): Promise<V> {
  let value: V;
  try {
    value = await loader(key);
    if (value === undefined) throw new InvalidArgumentError(`fetch loader returned undefined for '${key}' (return a value, or throw)`);
    const ttl = o.ttl ?? (map.defaultTtl > 0 ? map.defaultTtl : undefined);
    await map.set(key, value, ttl === undefined ? undefined : { ttl: ttl + o.swr });
    if (o.swr > 0) await claims.set(claimKey('f', map.name, key), Date.now() + ttl!, { ttl: ttl! + o.swr });
  } catch (e) {
    const c = e instanceof Error ? (e as { code?: unknown }).code : undefined;
    const code = typeof c === 'string' ? c : '';
    const msg = e instanceof Error ? e.message : String(e);
    // only our own claim becomes the error record (a claim that expired meanwhile is another's)
    // (it keeps the claim's expiry: a fetch that never waited on it takes it as no claim)
    await claims.compareAndSet(ck, [t, 0] satisfies Claim, [t, 1, msg.slice(0, 1000), code.slice(0, 64)] satisfies Claim).catch(() => false);
    throw e;
  }
  await releaseClaim(claims, ck, t);
  return value;
}

/**
 * Deletes the claim if it is still ours. A check then a delete (maps have no compare-and-delete):
 * if our claim expired in between and another caller claimed, we delete theirs and a third caller
 * may load once more; values are never wrong for it, only a load is repeated.
 */
async function releaseClaim(claims: ClaimMap, ck: string, t: string): Promise<void> {
  const c = await claims.get(ck);
  if (isClaim(c) && c[0] === t && c[1] === 0) await claims.delete(ck);
}

/** Polls until the value is there, the claim `seen` failed (throws), or the claim is gone. */
async function waitFor<V>(map: FetchTarget<V>, claims: ClaimMap, ck: string, key: string, seen: string | undefined, deadline: number): Promise<{ done: boolean; value?: V }> {
  for (let pause = POLL_FIRST_MS; Date.now() < deadline; pause = Math.min(POLL_MAX_MS, pause * 2)) {
    await new Promise((r) => setTimeout(r, pause));
    const v = await map.get(key);
    if (v !== undefined) return { done: true, value: v };
    const c = await claims.get(ck);
    if (isClaim(c)) {
      if (c[1] === 1 && c[0] === seen) throw new FetchLoaderError(`fetch of '${key}': the loader failed in another thread or member: ${c[2]}`, { key, cause: c[3] || undefined });
      if (c[0] !== seen) return { done: false }; // a new claim (ours expired or was replaced): start over
      continue;
    }
    return { done: false }; // claim gone and no value (evicted at once, or the set failed): start over
  }
  return { done: false };
}

/** A background refresh of a stale value: one for all callers, a failure keeps the stale value. */
async function refresh<V>(map: FetchTarget<V>, claims: ClaimMap, ck: string, key: string, loader: Loader<V>, o: Resolved): Promise<void> {
  const t = token();
  try {
    if (!(await claims.setIfAbsent(ck, [t, 0] satisfies Claim, { ttl: o.timeoutMs }))) return;
    hold(claims, ck, t);
    await load(map, claims, ck, key, t, loader, o);
  } catch {
    // the stale value stays until its ttl + staleWhileRevalidate ends
  }
}
