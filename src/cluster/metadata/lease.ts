/**
 * Primary leases (native-notes.md, "Leases and fencing").
 *
 * A data member serves a partition as primary only while it holds a lease from the metadata
 * leader, and checks it on the operation path itself: after a pause (SIGSTOP, a long GC, a VM
 * freeze) the I/O that was buffered meanwhile runs before any timer, so only a check made by each
 * operation can notice that time has passed. The monotonic clock (performance.now) keeps running
 * while a process is stopped, so a paused member finds its lease expired the moment it resumes.
 *
 * A lease is `{ until, safe }`:
 * - `until`: the member's own clock reading when it *sent* the request, plus the granted duration
 *   shortened by the drift margin. The leader counts the same duration from when it *answered*
 *   (later in real time) lengthened by the margin, so the leader's bound is never earlier than
 *   the member's.
 * - `safe`: the highest table version that every member that may still hold a lease has applied
 *   (or whose lease surely ended). A member serves p only if epochs[p] <= safe: the member that was
 *   p's primary before epoch[p] has either applied the table that moved p away, or lost its lease.
 *
 * The leader keeps one invariant over the grants that may still run: every holder's reported
 * version is at least every holder's `safe`. A grant's `safe` is the minimum reported version of
 * all such holders (its own included), and a member whose reported version is below a `safe`
 * still outstanding gets no lease until it has applied the newer table. Why it holds: say M
 * serves p at epoch e and N at epoch f > e. M's table predates f, so M reported less than f; N's
 * safe is at least f. Whichever grant came second broke the invariant. So two members never serve
 * one partition at once, whatever pauses or partitions happen. A new leader cannot know its
 * predecessor's grants: for one lease duration after its election it grants `safe` 0 only.
 */

/** Granted lease duration, ms. */
export const LEASE_MS = 1500;
/** How often a member renews its lease (and reports the table version it applied). */
export const RENEW_MS = 250;
/** Clock drift margin: the member counts its lease 10 % shorter, the leader 10 % longer. */
export const DRIFT = 0.1;

export const now = (): number => performance.now();

/** The member side: the lease this member holds. */
export class Lease {
  private until = 0;
  private sentOfLast = -1;
  /** Highest table version whose epochs this member may serve. */
  safe = 0;
  /** Called after every grant and revoke (the member mirrors its lease into shared memory for its other threads). */
  onChange: (() => void) | undefined;

  /** The lease's end on this thread's clock (performance.now); 0 or past when none runs. */
  get end(): number {
    return this.until;
  }

  /** Records a grant for a request sent at `sentAt` (this member's clock). Replies may arrive out of order. */
  granted(sentAt: number, durationMs: number, safe: number): void {
    if (sentAt < this.sentOfLast) return;
    this.sentOfLast = sentAt;
    this.until = Math.max(this.until, sentAt + durationMs * (1 - DRIFT));
    this.safe = safe;
    this.onChange?.();
  }

  /** Drops the lease at once (removed from the cluster, closing). */
  revoke(): void {
    this.until = 0;
    this.safe = 0;
    this.onChange?.();
  }

  /** Whether a partition at `epoch` may be served now. */
  covers(epoch: number): boolean {
    return epoch <= this.safe && now() < this.until;
  }

  /** ms left (for status), 0 when lapsed. */
  remaining(): number {
    return Math.max(0, this.until - now());
  }
}

interface Grant {
  /** Leader's clock: the latest moment the member may still believe its lease valid. */
  until: number;
  /** Table version the member reported applied. */
  acked: number;
  /** The safe version it was given. */
  safe: number;
}

/** The leader side: what it granted, and the safe version it computes from that. */
export class LeaseTable {
  private readonly grants = new Map<string, Grant>();
  /** Until this moment (leader clock) leases granted by an earlier leader may still run. */
  private inheritedUntil = 0;

  /**
   * A new leader cannot know what its predecessor granted: it assumes every lease runs a full term
   * from now, less `creditMs` — how long before this election every earlier leader surely stopped
   * granting (NEW_LEADER_CREDIT_MS after an election without a transfer; 0 otherwise).
   */
  becameLeader(fresh = false, creditMs = 0): void {
    this.grants.clear();
    this.inheritedUntil = fresh ? 0 : now() + LEASE_MS * (1 + DRIFT) - creditMs;
  }

  /**
   * Grants `id`, which reported table version `acked`, a lease; returns the safe version it gets,
   * or -1 (no lease) while its table is older than a safe version another holder was given.
   */
  grant(id: string, acked: number, committed: number): number {
    const t = now();
    this.prune(t);
    let s = t < this.inheritedUntil ? 0 : Math.min(committed, acked);
    for (const [other, g] of this.grants) {
      if (other === id) continue;
      if (acked < g.safe) return -1;
      if (g.acked < s) s = g.acked;
    }
    // a reply can be lost: the member may still use the safe version of its previous grant
    const prev = this.grants.get(id);
    this.grants.set(id, { until: t + LEASE_MS * (1 + DRIFT), acked, safe: prev === undefined ? s : Math.max(s, prev.safe) });
    return s;
  }

  /** ms until this leader may grant more than `safe` 0 (its predecessor's grants may run until then); 0 once past. */
  inheritedLeft(): number {
    return Math.max(0, this.inheritedUntil - now());
  }

  /** Forgets grants that surely ended. */
  private prune(t: number): void {
    for (const [id, g] of this.grants) if (g.until <= t) this.grants.delete(id);
  }

  /** Whether `id` may still hold a lease (leader clock). */
  mayHold(id: string): boolean {
    const g = this.grants.get(id);
    return now() < this.inheritedUntil || (g !== undefined && now() < g.until);
  }
}
