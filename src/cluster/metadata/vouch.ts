/**
 * Claims one member makes about the metadata log, confirmed by others before a member acts on them
 * (native-notes.md, "Claims confirmed by f+1 members").
 *
 * Every secret holder is a member, so any one of them (buggy, stale or rogue) could tell a lite
 * member "here is the table" or a data member "the log removed you". Such a claim is only a hint
 * now: the member asks f+1 of the n members concerned directly, f = floor((n-1)/2), and acts only
 * when that many agree. With at most f of them wrong, at least one honest member agreed, and an
 * honest member says only what its log committed.
 */
import { createHash } from 'node:crypto';
import type { PartitionTable } from '../../ring/table.js';
import { principalOfId } from '../../transport/identity.js';
import { packr } from '../../transport/wire.js';

/** f+1 for n members (f = floor((n-1)/2)): n = 1 or 2 → 1, 3-4 → 2, 5-6 → 3. */
export function vouchersNeeded(n: number): number {
  return Math.floor((Math.max(n, 1) - 1) / 2) + 1;
}

/**
 * Who speaks with one voice: with `cluster.tls` the certificate an id names (identity.ts: every id
 * of one key is one principal, however many members it started), else the id itself.
 */
export function principalKey(id: string): string {
  return principalOfId(id) ?? id;
}

/**
 * Agreement among the members asked: reached once f+1 of their ids agreed and, counting the ids
 * of one certificate once, f+1 of their principals (each f from its own count). Without TLS, or
 * with a certificate per member, the two counts are the same; members that share one certificate
 * are one principal, so the id count decides, as before principals were counted. What the second
 * count stops: the key of one member starting more members of its own to outvote the others.
 * `self`: a member counted among n but not asked (removalRound counts the asking member).
 */
export class Tally {
  private readonly needIds: number;
  private readonly needPrincipals: number;
  private ids = 0;
  private readonly principals = new Set<string>();

  constructor(asked: readonly string[], self?: string) {
    const all = self === undefined ? asked : [...asked, self];
    this.needIds = vouchersNeeded(all.length);
    this.needPrincipals = vouchersNeeded(new Set(all.map(principalKey)).size);
  }

  /** Records the agreement of `id` (each id once); true once agreement is reached. */
  add(id: string): boolean {
    this.ids++;
    this.principals.add(principalKey(id));
    return this.reached();
  }

  reached(): boolean {
    return this.ids >= this.needIds && this.principals.size >= this.needPrincipals;
  }

  /** For log lines: "k of n needed". */
  get needed(): number {
    return this.needIds;
  }

  get count(): number {
    return this.ids;
  }
}

/**
 * The learner to promote to voter, of `learners` (oldest first) that `alive` says are alive: the
 * oldest whose principal (principalKey) no voter has, else the oldest. So the key of one member
 * gets a second voter seat only when no other member could take it.
 */
export function learnerToPromote(learners: readonly string[], voters: readonly string[], alive: (id: string) => boolean): string | undefined {
  const taken = new Set(voters.map(principalKey));
  let first: string | undefined;
  for (const id of learners) {
    if (!alive(id)) continue;
    if (!taken.has(principalKey(id))) return id;
    first ??= id;
  }
  return first;
}

/** A digest of a table's contents (its fields in a fixed order: the key order of a peer's map does not count). */
export function tableDigest(t: PartitionTable): string {
  return createHash('sha256').update(packr.pack([t.version, t.owners, t.pending, t.epochs, t.lost])).digest('base64');
}

/**
 * Runs the confirmation rounds of one kind of claim. A hint asks for a round (with the highest
 * argument hinted since the last one began); hints during a round ask for one more after it, so a
 * peer sending hints back to back gets one round per MIN_GAP_MS, not one per hint. The gap is
 * skipped after a round that made progress (`progressed`): tables committed in a burst (a
 * failover's) are each taken at once. A hint with a higher argument than every round in flight
 * starts a second round beside them (never a third): a round waiting on a member that does not
 * answer (cut off, up to its ask timeout) does not hold back a newer table. A round that ends
 * saying it saw something it could not confirm yet (a table some members have not applied) runs
 * again RETRY_MS later, at most RETRIES times until a round ends with nothing pending.
 */
export class Rounds {
  static readonly MIN_GAP_MS = 20;
  static readonly RETRY_MS = 100;
  static readonly RETRIES = 20;
  static readonly MAX_IN_FLIGHT = 2;
  private inFlight = 0;
  /** The highest argument of the rounds in flight. */
  private runningArg = 0;
  /** A round is asked for (by a hint or a retry), with `arg` (0: the last round's, `lastArg`). */
  private queued = false;
  private arg = 0;
  private lastArg = 0;
  private startedAt = -Infinity;
  private retries = 0;
  private timer: NodeJS.Timeout | undefined;
  /** When the scheduled round starts (performance.now). */
  private dueAt = 0;
  private closed = false;

  /** `round(arg)` resolves true when it should run again soon (something seen but not confirmed yet). */
  constructor(private readonly round: (arg: number) => Promise<boolean>) {}

  hint(arg = 0): void {
    if (this.closed) return;
    this.arg = Math.max(this.arg, arg);
    this.queued = true;
    if (this.mayStart()) this.schedule(this.gapLeft());
  }

  /** The round running now confirmed something new: the next one need not wait out the gap. */
  progressed(): void {
    this.startedAt = -Infinity;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** How long until MIN_GAP_MS has passed since the last round began (0: it has). */
  private gapLeft(): number {
    return Math.max(0, this.startedAt + Rounds.MIN_GAP_MS - performance.now());
  }

  private mayStart(): boolean {
    return this.queued && (this.inFlight === 0 || (this.inFlight < Rounds.MAX_IN_FLIGHT && this.arg > this.runningArg));
  }

  /** Starts the next round `ms` from now (a round already scheduled keeps its time, unless this is sooner). */
  private schedule(ms: number): void {
    const at = performance.now() + ms;
    if (this.timer !== undefined) {
      if (this.dueAt <= at) return;
      clearTimeout(this.timer);
    }
    this.dueAt = at;
    this.timer = setTimeout(() => this.start(), ms);
    this.timer.unref();
  }

  private start(): void {
    this.timer = undefined;
    if (this.closed || !this.mayStart()) return;
    const arg = this.arg > 0 ? this.arg : this.lastArg;
    this.lastArg = arg;
    this.arg = 0;
    this.queued = false;
    this.inFlight++;
    this.runningArg = Math.max(this.runningArg, arg);
    this.startedAt = performance.now();
    this.round(arg).then(
      (again) => this.ended(again),
      () => this.ended(false),
    );
  }

  private ended(again: boolean): void {
    if (--this.inFlight === 0) this.runningArg = 0;
    if (this.closed) return;
    if (!again) {
      this.retries = 0;
      this.lastArg = 0;
    }
    if (this.queued) {
      if (this.mayStart()) this.schedule(this.gapLeft());
    } else if (again && ++this.retries <= Rounds.RETRIES) {
      this.queued = true;
      this.schedule(Rounds.RETRY_MS);
    }
  }
}

/**
 * Asks every member of `ids` (`ask`), and calls `answer(id, reply)` for each reply as it comes,
 * until `answer` returns true (the round has what it needs) or every ask settled (a failed ask
 * counts as no answer). Resolves then; replies that come later are ignored.
 */
export function askAll(ids: readonly string[], ask: (id: string) => Promise<unknown>, answer: (id: string, reply: unknown) => boolean): Promise<void> {
  return new Promise((resolve) => {
    let left = ids.length;
    let over = false;
    const settle = (): void => {
      if (!over && --left <= 0) {
        over = true;
        resolve();
      }
    };
    if (left === 0) resolve();
    for (const id of ids) {
      ask(id).then(
        (r) => {
          if (over) return;
          if (answer(id, r)) {
            over = true;
            resolve();
            return;
          }
          settle();
        },
        settle,
      );
    }
  });
}
