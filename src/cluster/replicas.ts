/**
 * The partition replicas layer: the table this member applies, and for each partition the copy
 * it holds in shared memory (records.ts) — as primary, under its lease, or as a backup or pending
 * copy, under the epoch fence. A write on the primary is applied under the partition lock and its
 * resulting state shipped to every copy before it resolves (`write`, `writeOnce`, `replicate`);
 * a copy applies a replicated write only from the primary of its own table at the same epoch
 * (`checkCopy`). Knows nothing of routing or of the map API above it (native-notes.md, "Cluster
 * layers").
 */
import { TableWaiters } from './table-waiters.js';
import { GridClosedError, GridError, PartitionMovedError, PartitionUnavailableError, ProtocolError, RetryableGridError, TimeoutError } from '../errors.js';
import type { PartitionTable } from '../ring/table.js';
import type { ShardStore } from '../storage/store.js';
import { J_EVICTED, J_TOUCHED } from '../storage/journal.js';
import { CLOCK_TICK_MS, MAX_MAP_NAME_BYTES } from '../storage/layout.js';
import { sharedNow, toShared } from '../sync/clock.js';
import { ChurnMap } from '../churn.js';
import { type MemberContext, type Done, UNFENCED, UNSAFE_SHIP_WRONG_KEY } from './context.js';
import { Dedupe, isRequestId } from './dedupe.js';
import { RepCall, Shipment, UnwaitedRep, rawAt, sendRep, type KeySource } from './fast-ops.js';
import { Records, checkState, type RawState } from './records.js';
import { type Unsettled, UnsettledWrites, keyOf } from './unsettled.js';

/** A write whose copy missed it waits this long for a committed table that dropped the copy. */
const DROP_WAIT_MS = 10_000;
/** A key whose replicated write failed is shipped again after this long (resyncLater). */
const RESYNC_MS = 1_000;
/** How often the main thread drains the eviction journal (2,048 slots: ~400,000 evictions a second before it overflows). */
const EVICTION_SHIP_MS = 5;
/** Journal entries one drain handles at most (the rest wait for the next). */
const EVICTION_DRAIN_MAX = 4096;
/**
 * Evictions shipEvictions holds back (this member is the primary in its table, but its lease does
 * not cover the partition now, or a write of the key is being replicated): at most this many, tried
 * again every DEFER_RETRY_MS.
 */
const DEFER_MAX = 65_536;
/**
 * Key bytes the held-back evictions may copy, at most: 65,536 keys of 4,000 bytes (maxKeyBytes is
 * 4,096 by default, up to 65,535) grew a 64MB member's heap by 407 MB while its lease lapsed.
 */
const DEFER_MAX_BYTES = 16 * 1024 * 1024;
const DEFER_RETRY_MS = 100;
const utf8 = new TextDecoder();
/** Most entries of one grid.touch request (a bound a peer is held to). */
const TOUCH_BATCH = 512;
/** One touch of a grid.touch request: partition, its epoch, map name, key. */
type TouchEntry = [p: number, epoch: number, map: string, key: string];

/** How often a member that evicted its primaries' entries tells the primaries of its copies the age it evicts at (grid.pressure). */
const PRESSURE_MS = 250;
/** A primary acts on one member's grid.pressure at most this often (a bound a peer is held to). */
const PRESSURE_GAP_MS = 200;
/** Entries one grid.pressure makes a primary evict at most, in all and per partition. */
const PRESSURE_EVICT_MAX = 512;
const PRESSURE_PER_PARTITION = 8;
/** A peer's pressure never evicts an entry accessed within this many clock ticks. */
const PRESSURE_MIN_FLOOR = 2;

/** How often writes waiting on the table check that this member's lease still covers them. */
const LEASE_WATCH_MS = 100;
/** A copy that has not applied the current epoch yet gets the write again this many times (10, 20, 40 … 200 ms apart). */
const COPY_CATCH_UP_TRIES = 16;

export class Replicas {
  readonly records: Records;
  /** Results of requests by request id, per partition (dedupe.ts). */
  readonly dedupe: Dedupe;
  /** Replicated writes of this primary: acknowledged, failed, copies that applied one, copies that missed one (metrics.ts). */
  readonly repStats = { writes: 0, failed: 0, copyAcks: 0, copyMisses: 0 };
  /** Keys with writes applied here whose replication has not settled, and the state reads of them serve (unsettled.ts). */
  readonly unsettled: UnsettledWrites;
  /** The partition table this member applies (undefined before the first, and once removed). */
  table: PartitionTable | undefined;
  private readonly store: ShardStore;
  private readonly partitions: number;
  private tableWaiters: Array<() => void> = [];
  /** Writes waiting for a table that dropped a copy they could not reach. */
  private readonly dropWaiters = new TableWaiters();
  /** While writes wait on the table: checks every LEASE_WATCH_MS that this member's lease still covers them (untilTable). */
  private leaseWatch: NodeJS.Timeout | undefined;
  /** This member's role in each partition of table `rolesOf` (ROLE_*): the fences' test of every write, without comparing member ids. */
  private roles = new Uint8Array(0);
  private rolesOf: PartitionTable | undefined;
  /** The member id `roles` were computed for (a rejoin takes a new id; stopServing forgets the table too, but the roles must not depend on that). */
  private rolesFor = '';
  /** Per map/key (`map\u0000key`), the request ids applied here whose replication has not finished, with their results. */
  private readonly inflight = new ChurnMap<string, Held>();
  /** Drains the eviction journal (startEvictionShipping). */
  private evictionTimer: NodeJS.Timeout | undefined;
  /** Map names by id, for the eviction journal's ids. */
  private readonly mapNames: string[] = [];
  /** UNSAFE_SHIP_WRONG_KEY only: per partition, the map and key this member last replicated. */
  private readonly lastShipped: Array<[string, string]> = [];
  /** Evicted keys whose state this primary shipped to its copies (tests, stats). */
  evictionShips = 0;
  /** Evictions held back by shipEvictions (key bytes copied), the oldest first, and when they were last tried. */
  private deferred: Array<[p: number, mapId: number, key: Uint8Array]> = [];
  private deferredAt = 0;
  /** Key bytes of `deferred` (DEFER_MAX_BYTES at most). */
  private deferredBytes = 0;
  /** Evictions never shipped because DEFER_MAX, or DEFER_MAX_BYTES of keys, were already held back (their copies keep the keys). */
  evictionsUnshipped = 0;
  /** grid.pressure requests this member sent, and entries it evicted as a primary for its copies' pressure. */
  pressureSent = 0;
  pressureEvictions = 0;
  /** sendPressure: when it looks next, and the primaries' evictions it saw then. */
  private pressureNext = 0;
  private pressureSeen = 0;
  /** onPressure: when it last acted for each member, and the partition it starts at next. */
  private readonly pressureAt = new Map<string, number>();
  private pressureCursor = 0;
  /** Touches this primary sent to its copies (one per key and copy), and touches this copy applied. */
  touchShips = 0;
  touchesApplied = 0;

  constructor(private readonly ctx: MemberContext, lockTimeout: number) {
    this.store = ctx.store;
    this.partitions = ctx.store.partitions;
    this.records = new Records(ctx.store, lockTimeout);
    this.dedupe = new Dedupe(ctx.partitions);
    this.unsettled = new UnsettledWrites(ctx.store);
  }

  // ── evictions ─────────────────────────────────────────────────────────────────────────────────

  /** Ships evicted keys to the copies every EVICTION_SHIP_MS until the member closes (a data member's store has a journal). */
  startEvictionShipping(): void {
    if (this.store.journal.slots === 0 || this.evictionTimer !== undefined) return;
    // this thread applies replicated writes and snapshot chunks: what it evicts while the ring is
    // full waits for the next drain instead of being lost
    this.store.journal.enableSpill();
    this.evictionTimer = setInterval(() => {
      if (this.ctx.closed) {
        clearInterval(this.evictionTimer);
        return;
      }
      this.shipEvictions();
      this.sendPressure();
    }, EVICTION_SHIP_MS);
    this.evictionTimer.unref();
  }

  /**
   * Drains the eviction journal (storage/journal.ts): for each key evicted from a partition this
   * member serves, ships the key's current state — absent, unless it was written again since —
   * to the partition's copies, so they drop it too. Best effort: a copy that misses one keeps a
   * key its primary no longer holds (its newest state: later writes and deletes of it are
   * replicated), which costs it memory, never correctness; so a failure here reports nothing and
   * drops no copy. An eviction of a partition this member is primary of in its table but may not
   * serve now (its lease lapsed), or of a key with a write still being replicated, is held back
   * (`deferred`) and tried again every DEFER_RETRY_MS; one of a partition whose primary changed is
   * dropped. Returns the entries visited.
   */
  shipEvictions(now = performance.now()): number {
    const j = this.store.journal;
    const tj = this.store.touches;
    const retry = this.deferred.length > 0 && now - this.deferredAt >= DEFER_RETRY_MS;
    if (!retry && !j.pending() && !tj.pending()) return 0;
    const touches = new Map<string, TouchEntry[]>();
    const me = this.ctx.memberId;
    let retrying = false;
    const holdBack = (p: number, mapId: number, key: Uint8Array, len: number): void => {
      if (this.deferred.length < DEFER_MAX && this.deferredBytes + len <= DEFER_MAX_BYTES) {
        this.deferred.push([p, mapId, retrying ? key : key.slice(0, len)]);
        this.deferredBytes += len;
      } else this.evictionsUnshipped++;
    };
    const visit = (p: number, mapId: number, key: Uint8Array, len: number, kind: number): void => {
      const t = this.table;
      if (t === undefined) return;
      const map = this.mapNames[mapId] ?? this.mapNameOf(mapId);
      if (map === undefined) return;
      if (kind === J_TOUCHED) {
        if (!this.serves(p)) return;
        const k = utf8.decode(key.subarray(0, len));
        for (const to of copiesOf(t, p, me)) {
          let batch = touches.get(to);
          if (batch === undefined) touches.set(to, (batch = []));
          batch.push([p, t.epochs[p], map, k]);
        }
        return;
      }
      // not the primary in its table any more: the partition's copies follow its new primary
      if (t.owners[p][0] !== me) return;
      // the lease lapsed (a busy or paused member: 7,779-20,042 evictions of one member in a loaded
      // evict-failover run were dropped here until 2026-11-28, each a key its copies kept), or a
      // write of the key is being replicated, whose own shipment carries its request records that a
      // bare state must not overtake (`ship`): held back, and shipped once it can be. (A held-back
      // entry is its own copy of the key; the journal's is its scratch, valid until the next.)
      if (!this.serves(p)) {
        holdBack(p, mapId, key, len);
        return;
      }
      const k = utf8.decode(key.subarray(0, len));
      if (this.inflight.size !== 0 && this.inflight.has(keyOf(map, k))) {
        holdBack(p, mapId, key, len);
        return;
      }
      if (UNSAFE_SHIP_WRONG_KEY) {
        const w = this.lastShipped[p];
        if (w !== undefined && w[1] !== k) this.shipState(p, w[0], w[1], null);
      }
      this.evictionShips++;
      try {
        const r = this.records.withState(map, k, (q, st) => this.shipState(q, map, k, st));
        if (r instanceof Promise) r.catch(() => undefined);
      } catch {
        // a busy partition (stateNow's lock timeout) or a closed store: the copy keeps the key
      }
    };
    let n = 0;
    if (retry) {
      // the oldest EVICTION_DRAIN_MAX, as a drain takes: 65,536 shippable at once were one call of
      // 225 ms with the event loop blocked (and as many messages to the copies)
      const all = this.deferred;
      const held = all.length <= EVICTION_DRAIN_MAX ? all : all.splice(0, EVICTION_DRAIN_MAX);
      if (held === all) this.deferred = [];
      for (const e of held) this.deferredBytes -= e[2].length; // what is held back again counts again
      const before = this.deferred.length;
      this.deferredAt = now;
      retrying = true;
      for (const [p, mapId, key] of held) visit(p, mapId, key, key.length, J_EVICTED);
      retrying = false;
      n += held.length;
      // every one went out and more wait: the next call takes them, without DEFER_RETRY_MS
      if (this.deferred.length === before && before > 0) this.deferredAt = -Infinity;
    }
    if (j.pending()) n += j.drain(visit, EVICTION_DRAIN_MAX, this.partitions);
    if (tj.pending()) n += tj.drain(visit, EVICTION_DRAIN_MAX, this.partitions);
    // touches: one grid.touch per copy and TOUCH_BATCH entries, replies ignored
    const tv = this.version;
    for (const [to, batch] of touches) {
      this.touchShips += batch.length;
      for (let i = 0; i < batch.length; i += TOUCH_BATCH) this.ctx.transport.request(to, 'grid.touch', { tv, e: batch.slice(i, i + TOUCH_BATCH) }).catch(() => undefined);
    }
    return n;
  }

  /**
   * A primary's touches (shipEvictions): stamps each key as accessed now, so this copy's LRU ages
   * follow the reads the primary served. Entries from a member that is not the partition's
   * primary at that epoch in this member's table, or for a partition this member holds no copy
   * of, are skipped (stamps only: nothing is written, no map is registered).
   */
  onTouch(b: unknown, from: string): boolean {
    const { tv, e } = (b ?? {}) as { tv?: unknown; e?: unknown };
    if (typeof tv !== 'number' || !Array.isArray(e) || e.length > TOUCH_BATCH) throw new ProtocolError('malformed touch batch');
    const maxKey = this.store.maxKeyBytes;
    for (const x of e) {
      if (!Array.isArray(x) || x.length !== 4) throw new ProtocolError('malformed touch entry');
      const [p, v, m, k] = x as unknown[];
      if (!Number.isInteger(p) || (p as number) < 0 || (p as number) >= this.partitions || typeof v !== 'number' || typeof m !== 'string' || m.length > MAX_MAP_NAME_BYTES || typeof k !== 'string' || k.length > maxKey) throw new ProtocolError('malformed touch entry');
    }
    const t = this.table;
    if (t === undefined) return false;
    const me = this.ctx.memberId;
    for (const [p, v, m, k] of e as TouchEntry[]) {
      if (t.owners[p][0] !== from || t.epochs[p] !== v || (!t.owners[p].includes(me) && !t.pending[p].includes(me))) continue;
      this.store.touchKey(m, k, p);
      this.touchesApplied++;
    }
    return true;
  }

  /**
   * Every PRESSURE_MS, when this member evicted entries of its primaries since the last look:
   * tells each member that is primary for a partition this member holds an established copy of
   * (not one still being streamed) the age (ms) of what it evicts now and how many it evicted
   * (grid.pressure; replies ignored). Copies evict last and mirror their primaries, so a member
   * whose memory filled with copies (a migration streams them in, each stamped new) was left
   * evicting its own primaries' newest entries, hot keys among them,
   * while its copies kept what their primaries had not read for seconds; nothing on the other
   * member felt that (the fault harness's memory mode, after a member left: counters incremented
   * every ~50 ms evicted again and again, by partitions of 1-3 entries at age 0). The primaries
   * then evict what is older than that age (`onPressure`), their copies here drop it through the
   * eviction journal, and the two members' eviction ages meet: the cluster's LRU, not each
   * member's.
   */
  private sendPressure(): void {
    const now = performance.now();
    if (now < this.pressureNext) return;
    this.pressureNext = now + PRESSURE_MS;
    const t = this.table;
    if (t === undefined) return;
    // what this member evicted for its copies' pressure is not pressure of its own: counted, two
    // members would evict for each other's evictions until nothing older than the floor was left
    const total = this.store.primaryEvictions() - this.pressureEvictions;
    const n = total - this.pressureSeen;
    this.pressureSeen = total;
    if (n <= 0) return;
    const me = this.ctx.memberId;
    const to = new Set<string>();
    for (let p = 0; p < this.partitions; p++) {
      const primary = t.owners[p][0];
      if (primary !== undefined && primary !== me && t.owners[p].includes(me) && !t.pending[p].includes(me)) to.add(primary);
    }
    if (to.size === 0) return;
    // each primary evicts at most its share of what this member evicted: older entries in place
    // of this member's, not more room than it needed
    const a = this.store.evictionAge() * CLOCK_TICK_MS;
    const share = Math.ceil(n / to.size);
    for (const m of to) {
      this.pressureSent++;
      this.ctx.transport.request(m, 'grid.pressure', { a, n: share }).catch(() => undefined);
    }
  }

  /**
   * A copy's pressure (sendPressure): evicts, from the partitions this member serves as primary
   * and `from` holds a copy of, up to `n` entries (the share of what `from` evicted since its
   * last report; at most PRESSURE_EVICT_MAX) not accessed for longer than the age `a` (ms) that
   * `from` evicts at, never one accessed within PRESSURE_MIN_FLOOR ticks; once per
   * PRESSURE_GAP_MS per member. The evictions go through the journal like any other, so the
   * copies drop the keys. Returns the entries evicted at once (a busy partition is queued and not
   * counted). A partition that changed between primary and copy moves its eviction count in or
   * out of `primaryEvictions`: at worst one report with a wrong count, bounded here.
   */
  onPressure(b: unknown, from: string): number {
    const { a, n } = (b ?? {}) as { a?: unknown; n?: unknown };
    if (typeof a !== 'number' || !(a >= 0) || a > 2 ** 31 || typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw new ProtocolError('malformed pressure');
    const t = this.table;
    if (t === undefined || this.ctx.closed) return 0;
    const now = performance.now();
    const last = this.pressureAt.get(from);
    if (last !== undefined && now - last < PRESSURE_GAP_MS) return 0;
    if (this.pressureAt.size >= 256) this.pressureAt.clear();
    this.pressureAt.set(from, now);
    const floor = Math.max(PRESSURE_MIN_FLOOR, Math.floor(a / CLOCK_TICK_MS) + 1);
    const me = this.ctx.memberId;
    let budget = Math.min(n, PRESSURE_EVICT_MAX);
    let evicted = 0;
    for (let k = 0; k < this.partitions && budget > 0; k++) {
      const p = (this.pressureCursor + k) % this.partitions;
      // the reporter's established copies only (those are what it can drop; one being streamed to
      // it is rebuilt anyway). Partitions streamed to another member are not left out: skipping
      // every partition with a pending copy left 12 and 26 hot-key evictions in the harness run
      // that showed the defect (38 before; 1 when only the reporter's own were skipped), since a
      // squeeze comes with a migration, when most partitions have one
      if (t.owners[p].indexOf(from) < 1 || t.pending[p].includes(from) || !this.serves(p)) continue;
      const max = Math.min(budget, PRESSURE_PER_PARTITION);
      budget -= max;
      const r = this.records.serial(p, () => {
        const x = this.store.evictSampled(p, max, floor);
        this.pressureEvictions += x;
        return x;
      });
      if (typeof r === 'number') evicted += r;
      else r.catch(() => undefined);
      this.pressureCursor = p + 1;
    }
    return evicted;
  }

  private mapNameOf(id: number): string | undefined {
    const name = this.store.mapName(id);
    if (name !== undefined) this.mapNames[id] = name;
    return name;
  }

  /** Sends key's state s, read in this same run, to every copy of p: a FAST REP, or a grid.rep when it does not fit; replies ignored. */
  private shipState(p: number, map: string, key: string, s: RawState): void {
    const t = this.table;
    if (t === undefined || !this.serves(p)) return;
    const epoch = t.epochs[p];
    const k: KeySource = { s: key, len: Buffer.byteLength(key, 'utf8') };
    for (const to of copiesOf(t, p, this.ctx.memberId)) {
      const peer = this.ctx.transport.peer(to);
      if (peer === undefined) continue;
      if (sendRep(peer, map, epoch, t.version, k, undefined, s, undefined, 0, 0, 0, 0, new UnwaitedRep())) continue;
      this.ctx.transport.request(to, 'grid.rep', { m: map, k: key, s, v: epoch, tv: t.version }).catch(() => undefined);
    }
  }

  get version(): number {
    return this.table?.version ?? 0;
  }

  /**
   * Applies a newer table: primaries flagged in shared memory (other threads of this process
   * read them there, runtime/forward.ts), copies this member no longer holds dropped, waiters
   * woken. False when `t` is not newer.
   */
  applyTable(t: PartitionTable, replace = false): boolean {
    if (this.table !== undefined && t.version <= this.table.version && !replace) return false;
    const old = this.table;
    this.table = t;
    for (const w of this.tableWaiters.splice(0)) w();
    this.dropWaiters.run(t);
    const me = this.ctx.memberId;
    const st = this.store;
    this.publish();
    // after the flags: another thread that still saw a key unsettled then sees p is not primary here
    this.unsettled.dropWhere((p) => t.owners[p][0] !== me || (old !== undefined && old.epochs[p] !== t.epochs[p]));
    const changes: string[] = [];
    for (let p = 0; p < this.partitions; p++) {
      // a copy this member no longer holds for anyone: drop it (a later pending copy starts from a reset anyway)
      if (!t.owners[p].includes(me) && !t.pending[p].includes(me)) {
        this.dedupe.clear(p);
        if (st.countIn(p) > 0) {
          changes.push(`p${p} cleared (${st.countIn(p)} entries)`);
          void Promise.resolve(this.records.serial(p, () => this.records.clearPartition(p))).catch(() => undefined);
        }
      }
      const was = roleOf(old, p, me);
      const is = roleOf(t, p, me);
      if (was !== is || (old !== undefined && old.epochs[p] !== t.epochs[p] && is === 'primary')) changes.push(`p${p} ${was}->${is}@${t.epochs[p]}`);
    }
    if (changes.length > 0) this.ctx.log('info', `table ${t.version}: ${changes.join(', ')}`);
    return true;
  }

  /**
   * Mirrors what this member may serve into shared memory, for its other threads
   * (runtime/forward.ts reads local primaries there without the main thread): the lease's end on
   * the process-wide clock, then per partition whether it is primary here with its epoch covered
   * by the lease's safe version — `serves(p)` but for the clock, which each reader checks itself
   * (after a pause the reader may run before this thread). Called on every table, grant and revoke.
   */
  publish(): void {
    const st = this.store;
    const t = this.table;
    const lease = this.ctx.meta?.lease;
    const live = t !== undefined && lease !== undefined && !this.ctx.closed && !this.ctx.restarting;
    const me = this.ctx.memberId;
    if (live) st.setLeaseEnd(toShared(lease.end));
    for (let p = 0; p < this.partitions; p++) st.setPrimaryHere(p, live && t.owners[p][0] === me && (UNFENCED || t.epochs[p] <= lease.safe));
    if (!live) st.setLeaseEnd(sharedNow() - 1);
  }

  /**
   * Stops serving everything at once: no primaries, waiting writes failed, table waiters woken.
   * `forget` (a removed member): the table and the dedupe records go too.
   */
  stopServing(forget: boolean): void {
    if (forget) this.table = undefined;
    for (let p = 0; p < this.partitions; p++) this.store.setPrimaryHere(p, false);
    this.unsettled.dropWhere(() => true);
    this.dropWaiters.failAll();
    for (const w of this.tableWaiters.splice(0)) w();
    if (forget) this.dedupe.clearAll();
  }

  /** Clears every partition's data (a removed member, before it rejoins). */
  async clearAll(): Promise<void> {
    for (let p = 0; p < this.partitions; p++) await Promise.resolve(this.records.serial(p, () => this.records.clearPartition(p))).catch(() => undefined);
  }

  /** Resolves when a newer table arrives or after `ms`. */
  tableChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.tableWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  isPrimary(p: number): boolean {
    return this.table !== undefined && this.table.owners[p][0] === this.ctx.memberId;
  }

  /** Partitions this member is primary for. */
  primaries(): number[] {
    const out: number[] = [];
    const t = this.table;
    if (t !== undefined) for (let p = 0; p < this.partitions; p++) if (t.owners[p][0] === this.ctx.memberId) out.push(p);
    return out;
  }

  /** Whether this member may serve p now: its primary, under a lease that covers p's epoch. */
  serves(p: number): boolean {
    const t = this.table;
    return t !== undefined && t.owners[p][0] === this.ctx.memberId && !this.ctx.closed && !this.ctx.restarting && (UNFENCED || this.ctx.meta.lease.covers(t.epochs[p]));
  }

  /**
   * Throws the retryable error a caller gets when this member may not serve p now: it is not p's
   * primary in its table, or its lease does not cover p's epoch (lapsed after a pause, or an older
   * primary's lease may still run). Called by every operation on the primary, on its own path:
   * after a pause the buffered I/O runs before any timer could have noticed.
   */
  assertPrimary(p: number): void {
    if (this.ctx.closed) throw new GridClosedError('member is closing');
    const t = this.table;
    if (t === undefined || this.roleIn(t, p) !== ROLE_PRIMARY || this.ctx.restarting) {
      throw new PartitionMovedError(`partition ${p} is not primary on member ${this.ctx.memberId}`, { partition: p, version: this.version });
    }
    if (!UNFENCED && !this.ctx.meta.lease.covers(t.epochs[p])) {
      throw new PartitionUnavailableError(`member ${this.ctx.memberId} holds no lease for partition ${p} at epoch ${t.epochs[p]} now`, { partition: p, epoch: t.epochs[p] });
    }
  }

  /**
   * The open connection to partition p's primary when that is another member (for FAST
   * requests); undefined when this member is the primary, none is known, or not connected.
   */

  // ── replication ───────────────────────────────────────────────────────────────────────────────

  /**
   * After a write on this primary: ships key's current state to every backup and pending copy of
   * its partition, and resolves when all live ones applied it. A copy that cannot be reached is
   * reported stale to the coordinator (it is rebuilt); a copy that says it is the primary now
   * (newer table) makes this write fail with PartitionMovedError, which route() retries there.
   */
  replicate(mapName: string, key: string, done?: Done, onShip?: (s: RawState) => void): Promise<unknown> | undefined {
    if (this.table === undefined) return undefined;
    const r = this.records.withState(mapName, key, (p, s) => {
      this.assertPrimary(p); // read and send in the same run: still the primary when shipped
      onShip?.(s);
      const targets = copiesOf(this.table!, p, this.ctx.memberId);
      if (targets.length === 0 && this.minCopies() <= 1) return undefined;
      return new Promise<void>((resolve, reject) => {
        const ship = this.shipment(p, targets, (err) => (err === undefined ? resolve() : reject(err)));
        const k: KeySource = { s: key, len: Buffer.byteLength(key, 'utf8') };
        for (const to of targets) this.ship(ship, p, to, mapName, k, s, undefined, 0, 0, 0, 0, 0, done);
        ship.done();
      });
    });
    return r as Promise<unknown> | undefined;
  }

  /**
   * Sends one copy of partition p the key's state (a RawState, or a STATE of a received frame at
   * b[off..off+len) with its type and expiry) as a FAST REP stamped with p's epoch, counted in
   * `ship`; a generic grid.rep when it does not fit a FAST record. `uk`: the key's keyOf when the
   * caller has it; `held`: the key's in-flight records when the caller just added to them (hold).
   */
  ship(ship: Shipment, p: number, to: string, map: string, key: KeySource, raw: RawState | undefined, b: Buffer | undefined, type: number, exp: number, off: number, len: number, attempt = 0, done?: Done, uk?: string, held?: Held): void {
    const peer = this.ctx.transport.peer(to);
    const epoch = this.table!.epochs[p];
    const tv = this.table!.version;
    if (peer === undefined) {
      this.copyMissed(ship, p, to, epoch);
      return;
    }
    ship.add();
    if (UNSAFE_SHIP_WRONG_KEY) this.lastShipped[p] = [map, keyString(key)];
    // the key's state carries the effect of every write applied to it so far, so it travels with
    // the records of every such write still being replicated, not only this one's: a copy that
    // got the effect of an earlier write only through this state (the earlier write's own REP
    // refused, the write then failed as moved and was retried there) must not apply it again
    const others = held !== undefined ? held : this.inflight.size === 0 ? undefined : this.inflight.get(uk ?? inflightKey(map, key));
    const more = others !== undefined && (others.size > 1 || done === undefined || !others.has(done[0]));
    // a write with a request id ships its dedupe record with the state: in the REP when the
    // result is undefined (set), else (a result to record) as a generic grid.rep
    if (!more && (done === undefined || done[1] === undefined) && sendRep(peer, map, epoch, tv, key, done?.[0], raw, b, type, exp, off, len, new RepCall(ship, to, this, p, epoch, map, key, attempt, done))) return;
    const k = keyString(key);
    const s = raw !== undefined ? raw : rawAt(b!, type, exp, off, len);
    const body: Record<string, unknown> = done === undefined ? { m: map, k, s, v: epoch, tv } : { m: map, k, s, v: epoch, tv, r: done[0], x: done[1] };
    if (more) body.rs = others!.entries().slice(0, MAX_INFLIGHT_RECORDS);
    this.ctx.transport.request(to, 'grid.rep', body).then(
      () => {
        ship.ack(to);
        ship.done();
      },
      (e: unknown) => ship.done(this.copyFailed(ship, p, to, epoch, e, map, key, attempt, done)),
    );
  }

  /**
   * The copy has not applied the table of this epoch yet (it lags the log by a moment, typically
   * right after a hand-over): ship the key again to it shortly, read afresh then (never the old
   * state: a newer one may have been shipped meanwhile, and the connection keeps order), instead
   * of failing a write that this primary already applied (which a retry would apply twice).
   */
  private reship(ship: Shipment, p: number, to: string, map: string, key: KeySource, epoch: number, attempt: number, done: Done | undefined): void {
    ship.add();
    const k = keyString(key);
    setTimeout(() => {
      const t = this.table;
      if (this.ctx.closed || t === undefined || t.owners[p][0] !== this.ctx.memberId || t.epochs[p] !== epoch) {
        ship.done(new PartitionMovedError(`partition ${p} moved while a copy caught up`, { partition: p, version: t?.version ?? 0 }));
        return;
      }
      if (!t.owners[p].includes(to) && !t.pending[p].includes(to)) {
        ship.drop(to); // no longer a copy: nothing to wait for (the copy count is checked at the end)
        ship.done();
        return;
      }
      try {
        const r = this.records.withState(map, k, (_p, s) => {
          this.ship(ship, p, to, map, { s: k, len: Buffer.byteLength(k, 'utf8') }, s, undefined, 0, 0, 0, 0, attempt + 1, done);
          ship.done();
        });
        if (r instanceof Promise) r.then(undefined, (e: unknown) => ship.done(e));
      } catch (e) {
        ship.done(e);
      }
    }, Math.min(10 * 2 ** attempt, 200)).unref();
  }

  /**
   * A Shipment for a write on p (this member its primary) shipped to `targets`. `finish` runs
   * once every copy answered and the write is held by at least minCopies() owners of the current
   * table (copiesHold, else waitForCopies); with an error as soon as one fails the write.
   */
  shipment(p: number, targets: readonly string[], finish: (err: unknown) => void): Shipment {
    const epoch = this.table!.epochs[p];
    const ship: Shipment = new Shipment((err) => {
      // the common case (every copy answered and enough owners hold it) without a closure more
      if (err !== undefined || this.copiesHold(ship, p, epoch)) this.counted(ship, err, finish);
      else this.waitForCopies(ship, p, epoch, (e) => this.counted(ship, e, finish));
    }, targets);
    return ship;
  }

  /** A shipment settled: counted in the replication stats, then `finish(err)`. */
  private counted(ship: Shipment, err: unknown, finish: (err: unknown) => void): void {
    const st = this.repStats;
    if (err === undefined) st.writes++;
    else st.failed++;
    st.copyAcks += ship.acked.length;
    finish(err);
  }

  /**
   * Copies a write must be on before it is acknowledged: every configured copy (backups + 1),
   * or every data member when there are fewer. A table that dropped a copy that missed writes (or
   * a partition whose backup is still being streamed) leaves fewer in-sync owners: writes then
   * wait until a new copy is synced instead of being acknowledged on the primary alone, which a
   * single fault of the primary would lose (Kafka's min.insync.replicas = replication factor).
   */
  minCopies(): number {
    return Math.max(1, Math.min(this.ctx.backups + 1, this.ctx.meta.state.members.size));
  }

  /** Owners of p in t that hold the write of `ship`: this primary, copies that applied it, and copies synced after it. */
  private holders(t: PartitionTable, p: number, ship: Shipment): number {
    let n = 0;
    const me = this.ctx.memberId;
    for (const x of t.owners[p]) if (x === me || ship.holds(x)) n++;
    return n;
  }

  /** Whether enough owners hold the write of `ship` now, this member still p's primary at `epoch`: untilTable's first check, without its closures. */
  private copiesHold(ship: Shipment, p: number, epoch: number): boolean {
    const t = this.table;
    return t !== undefined && t.owners[p][0] === this.ctx.memberId && t.epochs[p] === epoch && this.holders(t, p, ship) >= this.minCopies();
  }

  /**
   * Too few owners hold the write now (copiesHold was false): runs `finish` once enough do (in this
   * table or a later one), or fails it when p moves or DROP_WAIT_MS passes.
   */
  private waitForCopies(ship: Shipment, p: number, epoch: number, finish: (err: unknown) => void): void {
    const ready = (t: PartitionTable): boolean => this.holders(t, p, ship) >= this.minCopies();
    const timeout = (): unknown => new TimeoutError(`partition ${p}: no second copy held a write within ${DROP_WAIT_MS} ms`, { partition: p });
    if (this.untilTable(p, epoch, 'before enough copies held a write', ready, finish, timeout)) return;
    this.ctx.log('info', `partition ${p}: a write waits for a synced copy (${this.holders(this.table!, p, ship)} of ${this.minCopies()} hold it)`);
  }

  /**
   * Settles a write waiting on the table: `done()` once `ready` holds for the current table (now
   * or after a later one is applied), `done(PartitionMovedError)` once this member stops being p's
   * primary at `epoch`, `done(timeout())` after DROP_WAIT_MS. True when it settled at once.
   */
  private untilTable(p: number, epoch: number, what: string, ready: (t: PartitionTable) => boolean, done: (err?: unknown) => void, timeout: () => unknown): boolean {
    let timer: NodeJS.Timeout | undefined;
    const check = (t: PartitionTable | undefined, leaseCheck = false): boolean => {
      if (t === undefined || t.owners[p][0] !== this.ctx.memberId || t.epochs[p] !== epoch) {
        clearTimeout(timer);
        done(new PartitionMovedError(`partition ${p} moved ${what}`, { partition: p, version: t?.version ?? 0 }));
        return true;
      }
      // A primary cut off from the leader can never see the table it waits for, and lost its
      // lease: the write fails (retryable; it may be applied, as any write that fails after it
      // was sent) instead of holding its caller up to DROP_WAIT_MS. A retry with the same request
      // id is deduplicated wherever it lands.
      if (leaseCheck && !this.serves(p)) {
        clearTimeout(timer);
        done(new PartitionUnavailableError(`partition ${p}: member ${this.ctx.memberId} lost its lease ${what}`, { partition: p, epoch }));
        return true;
      }
      if (!ready(t)) return false;
      clearTimeout(timer);
      done();
      return true;
    };
    if (check(this.table)) return true;
    this.dropWaiters.add(check);
    if (this.leaseWatch === undefined) {
      this.leaseWatch = setInterval(() => {
        this.dropWaiters.run(this.table, true);
        if (this.dropWaiters.size === 0) {
          clearInterval(this.leaseWatch);
          this.leaseWatch = undefined;
        }
      }, LEASE_WATCH_MS);
      this.leaseWatch.unref();
    }
    timer = setTimeout(() => {
      this.dropWaiters.remove(check);
      done(timeout());
    }, DROP_WAIT_MS);
    timer.unref();
    return false;
  }

  /**
   * A copy did not apply a replicated write: the error that fails the write (the copy refused it
   * for a fencing reason, which route() retries), or undefined when the copy was merely not
   * reached — then the write waits until a committed table dropped that copy (copyMissed).
   * @internal also called by RepCall (fast-ops.ts CopyFailures)
   */
  copyFailed(ship: Shipment, p: number, to: string, epoch: number, e: unknown, map: string, key: KeySource, attempt: number, done: Done | undefined): unknown {
    if (e instanceof PartitionUnavailableError && attempt < COPY_CATCH_UP_TRIES) {
      this.reship(ship, p, to, map, key, epoch, attempt, done);
      return undefined;
    }
    if (e instanceof PartitionMovedError) return e;
    if (e instanceof RetryableGridError) {
      // a copy that never caught up: treat it as one that missed the write
      this.copyMissed(ship, p, to, epoch);
      return undefined;
    }
    if (e instanceof GridError && e.code === 'GRID_ERR_CLOSED' && this.ctx.closed) return e;
    this.ctx.log('info', `copy of partition ${p} on ${to} missed a write`, e);
    this.copyMissed(ship, p, to, epoch);
    return undefined;
  }

  /**
   * Copy `to` of p missed a write: the write may be acknowledged without it only once a committed
   * table no longer lists it as a copy of p (it is then rebuilt from a snapshot). Until then the
   * write waits; if this member stops being p's primary at this epoch, the write fails with a
   * retryable error instead (its fate is then decided by the new primary's copy).
   */
  private copyMissed(ship: Shipment, p: number, to: string, epoch: number): void {
    this.repStats.copyMisses++;
    ship.add();
    this.ctx.meta.reportDrop(p, to, epoch);
    // still listed: a pending copy that missed a write just streams again; an owner needs the drop
    const dropped = (t: PartitionTable): boolean => {
      if (t.owners[p].includes(to) || t.pending[p].includes(to)) return false;
      ship.drop(to);
      return true;
    };
    const timeout = (): unknown => new TimeoutError(`partition ${p}: copy ${to} missed a write and no table dropped it within ${DROP_WAIT_MS} ms`, { partition: p, member: to });
    this.untilTable(p, epoch, 'while a copy was missing', dropped, (err) => ship.done(err), timeout);
  }

  onReplicate(b: unknown, from: string): unknown {
    const { m, k, s, v, tv, r, x, rs } = (b ?? {}) as { m?: unknown; k?: unknown; s?: unknown; v?: unknown; tv?: unknown; r?: unknown; x?: unknown; rs?: unknown };
    if (typeof m !== 'string' || typeof k !== 'string' || typeof v !== 'number' || typeof tv !== 'number' || (r !== undefined && !isRequestId(r))) throw new ProtocolError('malformed replicated write');
    if (rs !== undefined && (!Array.isArray(rs) || rs.length > MAX_INFLIGHT_RECORDS || !rs.every((e) => Array.isArray(e) && e.length === 2 && isRequestId(e[0])))) throw new ProtocolError('malformed replicated write records');
    const state = checkState(s, Infinity); // over maxValueBytes: putCopyState drops the key
    const p = this.records.partitionOf(k);
    this.checkCopy(p, v, from, tv);
    return this.records.serial(p, () => {
      this.checkCopy(p, v, from, tv);
      this.records.putCopyState(m, k, state);
      if (r !== undefined) this.dedupe.put(p, r as string, x);
      if (rs !== undefined) for (const [id, res] of rs as Array<[string, unknown]>) this.dedupe.put(p, id, res);
      return true;
    });
  }

  /**
   * Clears map `map` in partition p, this member its primary: here and on every copy (owners and
   * pending), the request to each copy sent in the same synchronous run as the local clear, under
   * p's lock, on the connection that carries p's replicated writes and snapshot chunks. A copy
   * therefore applies it after everything shipped to it before (a snapshot chunk of a stream in
   * flight included) and before everything shipped after. Resolves once enough owners cleared,
   * as a write does; a copy that could not apply it is handled as one that missed a write.
   * (A clear of each member's own memory, as before, let a chunk streamed before the primary's
   * clear land on a joining copy after the copy's: whole partitions came back.)
   */
  clearMap(p: number, map: string): Promise<void> {
    this.assertPrimary(p);
    return Promise.resolve(
      this.records.serial(p, () => {
        this.assertPrimary(p);
        this.records.clearMap(p, map);
        const t = this.table!;
        const epoch = t.epochs[p];
        const targets = copiesOf(t, p, this.ctx.memberId);
        if (targets.length === 0 && this.minCopies() <= 1) return undefined;
        return new Promise<void>((resolve, reject) => {
          const ship = this.shipment(p, targets, (err) => (err === undefined ? resolve() : reject(err)));
          for (const to of targets) {
            ship.add();
            this.ctx.transport.request(to, 'grid.clr', { m: map, p, v: epoch, tv: t.version }).then(
              () => {
                ship.ack(to);
                ship.done();
              },
              (e: unknown) => {
                if (e instanceof PartitionMovedError || (e instanceof GridError && e.code === 'GRID_ERR_CLOSED' && this.ctx.closed)) return ship.done(e);
                // not applied there (unreachable, or behind on the table): only a table that
                // dropped that copy, which is then streamed afresh from the cleared primary, lets
                // the clear complete
                this.copyMissed(ship, p, to, epoch);
                ship.done();
              },
            );
          }
          ship.done();
        });
      }),
    ).then(() => undefined);
  }

  /** A copy's side of clearMap: fenced as a replicated write (checkCopy), applied in arrival order. */
  onClearMap(b: unknown, from: string): unknown {
    const { m, p, v, tv } = (b ?? {}) as { m?: unknown; p?: unknown; v?: unknown; tv?: unknown };
    if (typeof m !== 'string' || !Number.isInteger(p) || (p as number) < 0 || (p as number) >= this.partitions || typeof v !== 'number' || typeof tv !== 'number') throw new ProtocolError('malformed replicated clear');
    this.checkCopy(p as number, v, from, tv);
    return this.records.serial(p as number, () => {
      this.checkCopy(p as number, v, from, tv);
      this.records.clearMap(p as number, m);
      return true;
    });
  }

  /**
   * The fence of every replicated write and snapshot: a copy applies one only from the primary of
   * its own current table, at that table's epoch for the partition, and only while it is itself a
   * copy (owner or pending) of it. A sender at an older epoch is refused for good
   * (PartitionMovedError); one at a newer epoch means this member has not applied that table yet
   * (PartitionUnavailableError: the primary's write fails and is retried, by then we caught up).
   *
   * `version`: the sender's table version. A copy whose table is older refuses too (retryable):
   * the tables between may drop this copy and add it back as pending at the same epoch, and the
   * drop clears the partition here — a snapshot or write applied before it would be wiped while
   * the primary counts it delivered (nemesis seed 3000 schedule 2: a stream the primary started
   * for the re-added copy landed before the copy applied its drop; 4 acknowledged sets lost).
   */
  checkCopy(p: number, epoch: number, from: string, version: number): void {
    if (UNFENCED) return;
    const t = this.table;
    const me = this.ctx.memberId;
    if (t === undefined || epoch > t.epochs[p] || version > t.version) {
      throw new PartitionUnavailableError(`partition ${p}: copy ${me} has not applied epoch ${epoch} / table ${version} yet`, { partition: p, epoch });
    }
    // a copy: an owner other than the primary, or pending (roleIn)
    if (epoch < t.epochs[p] || t.owners[p][0] !== from || this.roleIn(t, p) !== ROLE_COPY) {
      throw new PartitionMovedError(`partition ${p} moved (epoch ${t.epochs[p]}, table ${t.version})`, { partition: p, version: t.version });
    }
  }


  /** This member's role in partition p under table t (tables are immutable once applied: computed once per table). */
  private roleIn(t: PartitionTable, p: number): number {
    if (this.rolesOf !== t || this.rolesFor !== this.ctx.memberId) {
      const me = this.ctx.memberId;
      this.rolesFor = me;
      const r = new Uint8Array(t.owners.length);
      for (let q = 0; q < r.length; q++) r[q] = t.owners[q][0] === me ? ROLE_PRIMARY : t.owners[q].includes(me) || t.pending[q].includes(me) ? ROLE_COPY : ROLE_NONE;
      this.roles = r;
      this.rolesOf = t;
    }
    return this.roles[p];
  }

  // ── writes on this primary ────────────────────────────────────────────────────────────────────

  /**
   * Marks request `rid` (result `result`) of key `k` (`keyOf(map, key)`) as being replicated:
   * until `unhold(k, rid)` every replicated state of that key carries its record (see `ship`).
   */
  hold(k: string, rid: string, result: unknown): Held {
    let h = this.inflight.get(k);
    if (h === undefined) this.inflight.set(k, (h = new Held(rid, result)));
    else h.add(rid, result);
    return h;
  }

  unhold(k: string, rid: string): void {
    const h = this.inflight.get(k);
    if (h !== undefined && h.remove(rid)) this.inflight.delete(k);
  }

  /**
   * The rest of a set applied on this primary (a FAST SET from another member, fast-serve.ts, or
   * a set of this member's own, RoutedMap.setHere), in the same synchronous run as its put, still
   * under p's lock: records request id `rid`, ships the key's new state to every copy as a REP
   * (as `raw`, or from the bytes of a received frame `b`, which must stay as they are until the
   * write settles) and calls `reply` once all live copies applied it, or with the error that
   * failed the write. `u`: the key's unsettled record (begun before the put), `uk` its key
   * (keyOf), `ks` the key and `klen` its UTF-8 length. The state is decoded from `b` only when
   * the unsettled record needs it at the settle (rarely: another write of the key in flight).
   */
  shipPut(
    p: number, name: string, ks: string, klen: number, uk: string, u: Unsettled, rid: string | undefined,
    raw: RawState | undefined, b: Buffer | undefined, vType: number, vExp: number, vOff: number, vLen: number, reply: (err: unknown) => void,
  ): void {
    const un = this.unsettled;
    if (rid !== undefined) this.dedupe.put(p, rid, undefined);
    const targets = copiesOf(this.table!, p, this.ctx.memberId);
    const seq = un.shipped(u);
    // the set's record rides on every replicated state of the key until its own replication ends:
    // the key's records in flight, this set's among them, are what its REPs carry (see `ship`)
    const h = rid !== undefined && targets.length > 0 ? this.hold(uk, rid, undefined) : undefined;
    const ship = this.shipment(p, targets, (err) => {
      if (h !== undefined) this.unhold(uk, rid!);
      const ok = err === undefined;
      un.settle(uk, u, seq, ok && un.needsState(u) ? (raw !== undefined ? raw : rawAt(b!, vType, vExp, vOff, vLen)) : null, ok);
      if (err !== undefined) this.resyncLater(p, name, ks, u);
      reply(err);
    });
    if (targets.length > 0) {
      const k: KeySource = { s: ks, len: klen };
      const done: Done | undefined = rid === undefined ? undefined : [rid, undefined];
      for (const to of targets) this.ship(ship, p, to, name, k, raw, b, vType, vExp, vOff, vLen, 0, done, uk, h);
    }
    ship.done();
  }

  /** Runs a write on this primary (`apply` takes the partition lock itself), then waits for its replication. */
  async write<T>(p: number, map: string, key: string, apply: () => Promise<T>): Promise<T> {
    this.assertPrimary(p);
    return this.tracked(p, map, key, apply, undefined);
  }

  /**
   * Applies a write and replicates the key's state, with the key unsettled meanwhile: reads serve
   * the state its copies hold until the replication is acknowledged (unsettled.ts). `rid`: the
   * write's request id, recorded with its result before the replication starts.
   */
  private async tracked<T>(p: number, map: string, key: string, apply: () => Promise<T>, rid: string | undefined): Promise<T> {
    const k = keyOf(map, key);
    const un = this.unsettled;
    const u = un.begin(p, k, () => this.records.stateNow(map, key));
    let r: T;
    try {
      r = await apply();
    } catch (e) {
      un.abandon(k, u);
      throw e;
    }
    if (rid !== undefined) {
      this.dedupe.put(p, rid, r);
      this.hold(k, rid, r);
    }
    let seq = 0;
    let shipped: RawState = null;
    try {
      await this.replicate(map, key, rid === undefined ? undefined : [rid, r], (s) => {
        seq = un.shipped(u);
        shipped = s;
      });
    } catch (e) {
      un.settle(k, u, seq, shipped, false);
      this.resyncLater(p, map, key, u);
      throw e;
    } finally {
      if (rid !== undefined) this.unhold(k, rid);
    }
    un.settle(k, u, seq, shipped, seq > 0);
    if (seq === 0) this.resyncLater(p, map, key, u);
    return r;
  }

  /**
   * A write of key failed after it was applied here: its effect may be on no copy, and reads of
   * the key serve the older state the copies hold. Ships the key's current state again in a
   * second (and again after each failure) while this member is still p's primary and the key
   * still unsettled, so the copies catch up and the key settles (unsettled.ts).
   */
  resyncLater(p: number, map: string, key: string, u: Unsettled): void {
    const k = keyOf(map, key);
    setTimeout(() => {
      if (this.unsettled.get(k) !== u || u.failedFrom === 0 || !this.serves(p)) return;
      this.tracked(p, map, key, () => Promise.resolve(undefined), undefined).catch(() => undefined);
    }, RESYNC_MS).unref();
  }

  /**
   * A retry of request `rid` (result `r`) this partition already applied: ships the key's state
   * again (its reply was lost, or its first replication is still running or failed), tracked like
   * a write, so that once it is acknowledged the key is settled too.
   */
  async replicateAgain(p: number, map: string, key: string, rid: string, r: unknown): Promise<unknown> {
    this.assertPrimary(p);
    return this.tracked(p, map, key, () => Promise.resolve(r), rid);
  }

  /** The unsettled record of map/key when a write of it is being replicated from here (serve its `stable` state), else undefined. */
  unsettledOf(map: string, key: string): Unsettled | undefined {
    return this.unsettled.size === 0 ? undefined : this.unsettled.get(keyOf(map, key));
  }

  /** Whether partition p has unsettled keys (a cheap filter before `unsettledOf`). */
  unsettledIn(p: number): boolean {
    return this.unsettled.size !== 0 && this.store.unsettledIn(p) !== 0;
  }

  /**
   * A write under request id `rid`: applied at most once on this partition whatever the retries
   * (dedupe.ts); its result is recorded and replicated with the key's state, so a primary that
   * takes over knows it too. Without a rid, `write`.
   */
  writeOnce<T>(p: number, map: string, key: string, rid: string | undefined, apply: () => Promise<T>): Promise<T> {
    if (rid === undefined) return this.write(p, map, key, apply);
    const d = this.dedupe;
    return d.once(
      p,
      rid,
      async () => {
        this.assertPrimary(p);
        return this.tracked(p, map, key, apply, rid);
      },
      (r) => this.replicateAgain(p, map, key, rid, r),
    );
  }
}

/**
 * The request records of one key whose replication has not finished: one record in two fields
 * (the common case: no Map per write), a Map once a second write of the key is in flight.
 * Exported for its unit test.
 */
export class Held {
  private many: Map<string, unknown> | undefined;

  constructor(
    private rid: string,
    private result: unknown,
  ) {}

  get size(): number {
    return this.many === undefined ? 1 : this.many.size;
  }

  has(id: string): boolean {
    return this.many === undefined ? this.rid === id : this.many.has(id);
  }

  add(id: string, result: unknown): void {
    if (this.many === undefined) {
      if (this.rid === id) {
        this.result = result;
        return;
      }
      this.many = new Map([[this.rid, this.result]]);
    }
    this.many.set(id, result);
  }

  /** Forgets `id`; true when no record is left. */
  remove(id: string): boolean {
    if (this.many === undefined) return this.rid === id;
    this.many.delete(id);
    return this.many.size === 0;
  }

  entries(): Array<[string, unknown]> {
    return this.many === undefined ? [[this.rid, this.result]] : [...this.many];
  }
}

/** A member's role in a partition (Replicas.roleIn): none, its primary, or a copy (another owner, or pending). */
const ROLE_NONE = 0;
const ROLE_PRIMARY = 1;
const ROLE_COPY = 2;

/** Most request records one replicated state carries besides its own (a bound a peer is held to). */
const MAX_INFLIGHT_RECORDS = 256;

/** The inflight map key of a key source. */
function inflightKey(map: string, key: KeySource): string {
  return keyOf(map, keyString(key));
}

/** The key of a key source as a string. */
function keyString(key: KeySource): string {
  return key.s ?? Buffer.from(key.b!.subarray(key.off, key.off! + key.len)).toString('utf8');
}

/** This member's role in p under table t, for the trace. */
function roleOf(t: PartitionTable | undefined, p: number, me: string): string {
  if (t === undefined) return 'none';
  const i = t.owners[p].indexOf(me);
  return i === 0 ? 'primary' : i > 0 ? 'backup' : t.pending[p].includes(me) ? 'pending' : 'none';
}

/** Backups and pending copies of p, other than `self`. */
export function copiesOf(t: PartitionTable, p: number, self: string): readonly string[] {
  let c = copiesCache.get(t);
  if (c === undefined || c.self !== self) copiesCache.set(t, (c = { self, of: new Array(t.owners.length) }));
  return (c.of[p] ??= copiesIn(t, p, self));
}

/** copiesOf's answers per table (tables are immutable once applied): one array per partition, not one per write. */
const copiesCache = new WeakMap<PartitionTable, { self: string; of: Array<readonly string[] | undefined> }>();

function copiesIn(t: PartitionTable, p: number, self: string): string[] {
  const out: string[] = [];
  for (const m of t.owners[p]) if (m !== self) out.push(m);
  for (const m of t.pending[p]) if (m !== self && !out.includes(m)) out.push(m);
  return out;
}
