/**
 * Routing: runs an operation of the map facade (routed-map.ts) on its partition's primary — here,
 * through the replicas layer, or on another member as one FAST record or a grid.op request — and
 * retries moved partitions and unreachable primaries until RETRY_DEADLINE_MS, waiting for a newer
 * table in between (native-notes.md, "Cluster layers").
 */
import { GridClosedError, MemberUnreachableError, PartitionMovedError, RetryableGridError } from '../errors.js';
import type { FastPeer } from '../transport/transport.js';
import { RETRY_DEADLINE_MS, type MemberContext } from './context.js';
import type { Replicas } from './replicas.js';

export class Router {
  /** Open connection to each partition's primary (FAST requests), filled on use, emptied with every new table. */
  private peerCache: Array<FastPeer | undefined> = [];
  private readonly partitions: number;

  constructor(
    private readonly ctx: MemberContext,
    private readonly r: Replicas,
  ) {
    this.partitions = ctx.partitions;
  }

  /** A new table: cached connections may point at former primaries. */
  onTable(): void {
    this.peerCache = [];
  }

  /** Whether this member is the metadata Raft leader (the coordinator). */

  primaryOf(p: number): string | undefined {
    return this.r.table?.owners[p][0];
  }


  fastPeerOf(p: number): FastPeer | undefined {
    if (this.ctx.closed) return undefined;
    const c = this.peerCache[p];
    if (c !== undefined && c.isOpen) return c;
    const to = this.primaryOf(p);
    if (to === undefined || to === this.ctx.memberId) return undefined;
    const peer = this.ctx.transport.peer(to);
    if (peer !== undefined) this.peerCache[p] = peer;
    return peer;
  }

  /** The open connection to member `to` (after ensureLink), or undefined. */
  peer(to: string): FastPeer | undefined {
    return this.ctx.transport.peer(to);
  }

  /** A grid.op request to member `to`. */
  request<T>(to: string, body: Record<string, unknown>): Promise<T> {
    return this.ctx.transport.request(to, 'grid.op', body) as Promise<T>;
  }

  /**
   * Runs an operation on partition p's primary: `local()` when that is this member, else the
   * `body` as a grid.op request. Retries moved partitions and unreachable primaries until
   * RETRY_DEADLINE_MS, waiting for a newer table in between. `timeoutMs`: how long the request
   * waits for its answer (default: the transport's).
   */
  route<T>(p: number, local: () => T | Promise<T>, body: Record<string, unknown>, timeoutMs?: number): Promise<T> {
    const remote = (to: string) => this.ctx.transport.request(to, 'grid.op', body, timeoutMs) as Promise<T>;
    // fast path: a remote primary we are connected to, one request, no async frame of our own
    const to = this.primaryOf(p);
    if (to !== undefined && to !== this.ctx.memberId && !this.ctx.closed && this.ctx.transport.isConnected(to)) {
      return remote(to).catch((e: unknown) => this.routeSlow(p, local, remote, e));
    }
    return this.routeSlow(p, local, remote, undefined);
  }

  /**
   * route() after a first attempt failed with `first` (or without one): waits for a newer table
   * when the error is retryable, then runs `local()` or `remote(primary)` again, until
   * RETRY_DEADLINE_MS.
   */
  async routeSlow<T>(p: number, local: () => T | Promise<T>, remote: (to: string) => Promise<T>, first: unknown): Promise<T> {
    const deadline = Date.now() + RETRY_DEADLINE_MS;
    if (first !== undefined) {
      if (!(first instanceof RetryableGridError || first instanceof MemberUnreachableError)) throw first;
      await this.recover(first, this.primaryOf(p), 0);
    }
    for (let attempt = 0; ; attempt++) {
      if (this.ctx.closed) throw new GridClosedError('the grid is closed');
      if (this.r.table === undefined) await this.r.tableChange(100);
      const to = this.primaryOf(p);
      try {
        if (to === this.ctx.memberId) {
          this.r.assertPrimary(p); // the lease, for reads that do not check it themselves
          return await local();
        }
        if (to === undefined) throw new MemberUnreachableError(`no live data member holds partition ${p}`, { partition: p });
        await this.ctx.ensureLink(to);
        return await remote(to);
      } catch (e) {
        if (!(e instanceof RetryableGridError || e instanceof MemberUnreachableError) || Date.now() > deadline) throw e;
        await this.recover(e, to, attempt);
      }
    }
  }

  /** Sends one request per member for the partitions it is primary for (getMany / setMany). */
  async routeMany<T>(parts: readonly number[], local: (idx: number[]) => Promise<T[]>, remote: (to: string, idx: number[]) => Promise<T[]>): Promise<T[]> {
    const out = new Array<T>(parts.length);
    await this.byPrimary(parts, async (to, idx) => {
      const r = to === this.ctx.memberId ? await local(idx) : await remote(to, idx);
      for (let j = 0; j < idx.length; j++) out[idx[j]] = r[j];
    });
    return out;
  }

  /**
   * Runs a whole-map operation (size, aggregate, clear) over every partition, each exactly once:
   * one request per member naming the partitions it is primary for in this member's table; the
   * member answers for all of them or refuses (PartitionMovedError, lease), and the partitions of
   * a refused or unreachable request are grouped again by a newer table and sent again, until
   * RETRY_DEADLINE_MS. Returns one result per request that succeeded. (Asking every member for
   * "its primaries", each by its own table, counted a moving partition twice or not at all.)
   */
  async overPartitions<T>(local: (ps: number[]) => Promise<T>, remote: (to: string, ps: number[]) => Promise<T>): Promise<T[]> {
    const all = Array.from({ length: this.partitions }, (_, p) => p);
    const out: T[] = [];
    await this.byPrimary(all, async (to, idx) => {
      const ps = idx.map((i) => all[i]);
      out.push(to === this.ctx.memberId ? await local(ps) : await remote(to, ps));
    });
    return out;
  }

  /**
   * Groups the indexes of `parts` by their partition's primary and calls `run(primary, indexes)`
   * once per group (after checking this member's lease when it is the primary itself, after
   * ensureLink when it is another); the groups that fail with a retryable error are grouped again
   * after a newer table, until RETRY_DEADLINE_MS.
   */
  private async byPrimary(parts: readonly number[], run: (to: string, idx: number[]) => Promise<void>): Promise<void> {
    let todo = parts.map((_, i) => i);
    // RETRY_DEADLINE_MS of waiting for tables, not counting the time the groups' own work took:
    // an aggregation share of 15 s refused at its end because a partition changed hands
    // meanwhile (a join) is sent again instead of failing with GRID_ERR_PARTITION_MOVED
    let deadline = Date.now() + RETRY_DEADLINE_MS;
    for (let attempt = 0; todo.length > 0; attempt++) {
      if (this.ctx.closed) throw new GridClosedError('the grid is closed');
      if (this.r.table === undefined) await this.r.tableChange(100);
      const groups = new Map<string | undefined, number[]>();
      for (const i of todo) {
        const to = this.primaryOf(parts[i]);
        let g = groups.get(to);
        if (g === undefined) groups.set(to, (g = []));
        g.push(i);
      }
      const failed: number[] = [];
      let firstErr: unknown;
      let worked = 0; // the longest run() of this round that ended in a retryable refusal
      await Promise.all(
        [...groups].map(async ([to, idx]) => {
          let started = 0;
          try {
            if (to === this.ctx.memberId) for (const i of idx) this.r.assertPrimary(parts[i]);
            else if (to === undefined) throw new MemberUnreachableError('no live data member holds some of the partitions');
            else await this.ctx.ensureLink(to);
            started = Date.now();
            await run(to, idx);
          } catch (e) {
            if (started > 0) worked = Math.max(worked, Date.now() - started);
            if (!(e instanceof RetryableGridError || e instanceof MemberUnreachableError) || Date.now() > deadline + worked) throw e;
            failed.push(...idx);
            firstErr ??= e;
          }
        }),
      );
      deadline += worked;
      todo = failed;
      if (todo.length > 0) await this.recover(firstErr, undefined, attempt);
    }
  }

  private async recover(e: unknown, to: string | undefined, attempt: number): Promise<void> {
    const v = e instanceof PartitionMovedError ? Number((e.data as { version?: unknown } | undefined)?.version) : NaN;
    // the primary we asked knows a newer table: a lite member asks the data members for it (the
    // primary's word alone is not taken: Metadata.liteRound); a data member's tables come from
    // its own log, which is catching up
    if (this.ctx.lite && to !== undefined && v > this.r.version) this.ctx.meta.liteHint(v);
    await this.r.tableChange(Math.min(10 * 2 ** attempt, 250));
  }
}
