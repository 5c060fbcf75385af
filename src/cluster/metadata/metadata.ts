/**
 * Metadata: the Raft group of the data members and what its leader does (native-notes.md,
 * "Metadata on Raft").
 *
 * - Every data member runs a RaftNode (src/raft, a pure state machine) and applies the committed
 *   commands to a MetaState (state.ts): members and the partition table. The Raft leader is the
 *   coordinator: it alone proposes joins, removals and tables, and grants primary leases.
 * - Lite members are outside the group: they take tables the leader pushes to them or that they
 *   fetch, only to route (a stale table only sends an operation to a member that refuses it).
 * - The driver: `tick()` every TICK_MS advances the Raft clock; Raft messages travel as
 *   `raft` notifications over the authenticated transport, each accepted only from the member it
 *   names as its sender; after every input, `flush()` hands the node's Ready to the world (send
 *   messages, apply committed entries) and advances it. Nothing is persisted: a member that
 *   restarts is a new member with a new id and no data, so the log lives as long as the process.
 * - Leader duties, one step per tick: admit joins, remove members SWIM found dead (they leave
 *   every owner list in the same entry: their backups are primaries at once, fenced by epoch and
 *   leases), keep the Raft configuration equal to the members (learners first, then 3 voters, 5
 *   from 5 members), replan the table (pending copies, hand-overs once copies are synced), and
 *   drop copies that missed a write.
 */
import { EventEmitter } from 'node:events';
import { MemberUnreachableError, NotLeaderError, PartitionUnavailableError, ProtocolError, TimeoutError } from '../../errors.js';
import { RaftError, RaftNode, validateMessage, type Entry, type RaftMessage } from '../../raft/index.js';
import { isTable, lastCopiesOf, migrating, namedIn, plan, type PartitionTable } from '../../ring/table.js';
import type { LogFn, Transport } from '../../transport/transport.js';
import { packr, safeText, unpackr } from '../../transport/wire.js';
import { CpDriver } from './cp-driver.js';
import { LazyCommits, OwnCpEntries, cpBatchTooBig, isOversizedCpBatch, packCpEntries, type CpCommand, type CpCounts } from './cp-state.js';
import { DRIFT, LEASE_MS, Lease, LeaseTable, RENEW_MS, now } from './lease.js';
import { isMemberUrl } from '../../config.js';
import { MetaState, isMemberId, isStateSnapshot, parseCommand, type Applied, type Command, type StateSnapshot } from './state.js';
import { Rounds, Tally, askAll, learnerToPromote, tableDigest } from './vouch.js';

/** Raft clock: one tick. Elections time out after 10-20 ticks, the leader heartbeats every tick. */
export const TICK_MS = 100;
export const ELECTION_TICKS = 10;
/**
 * How much of the inherited lease wait a leader elected without a transfer skips (native-notes,
 * "A shorter wait for a new leader"), given its election's `quiet` (RaftNode.electionQuiet: the
 * fewest ticks any voter that elected it had gone without hearing from a leader). A leader grants
 * only while a majority answered a heartbeat it sent less than half an election timeout ago
 * (leaderLeaseValid); that majority shares a voter with the successor's, which heard that heartbeat
 * at least `quiet` of its ticks before the election, and ticks never run faster than real time:
 * so every earlier leader's last grant came at least quiet - ET/2 ticks before this election. One
 * tick less for timer granularity, and the drift margin. Leader stickiness makes quiet at least an
 * election timeout, so this is never less than the fixed (ET/2 - 1 tick) credit used before;
 * a leader elected later than that (a slow election, an unlucky timeout draw) waits that much less.
 * Checked by the Raft simulation (`leases`, test/raft/sim.test.ts) and the lease model
 * (test/cluster/lease.test.ts).
 */
export function newLeaderCreditMs(quiet: number): number {
  return Math.max(0, (quiet - ELECTION_TICKS / 2 - 1) * TICK_MS * (1 - DRIFT));
}
/** The credit of the shortest possible election (quiet = one election timeout): what every new leader was given before electionQuiet. */
export const NEW_LEADER_CREDIT_MS = newLeaderCreditMs(ELECTION_TICKS);
/** The most a Raft message's term may be ahead of this member's (onRaft): 2^20 elections. */
const MAX_TERM_GAP = 2 ** 20;
/** syncedAt for a partition without reports (the steady state): one shared empty set. */
const NONE_SYNCED: ReadonlySet<string> = new Set<string>();
/** Delay of a leader step asked for by a table applied or a copy synced (coalesces a burst of reports). */
const STEP_SOON_MS = 5;
/** A member asks again this long after a new leader's safe-0 period ends (clocks and timers are not exact). */
const RENEW_AFTER_SLACK_MS = 10;
/** A snapshot of the state machine is taken (and the log compacted) every this many applied entries. */
const COMPACT_EVERY = 512;
/** How long a join request waits for its entry to commit. */
const JOIN_TIMEOUT_MS = 10_000;
/** A lease whose safe version lags the applied table is renewed again after this long. */
const CATCH_UP_MS = 25;
/** Without a leader, every this many renewal periods one data member is asked whether we were removed. */
const ORPHAN_ASK_EVERY = 4;
/** At most this many such renewals per table version. */
const CATCH_UP_TRIES = 20;
/**
 * How long the leader waits before removing a member SWIM calls dead (its lease ended) that holds
 * the only copy of some partitions; its other partitions fail over at once.
 */
const LAST_COPY_GRACE_MS = 15_000;
/**
 * A member the leader granted no lease for this long (its last grant ended, and it asked for none
 * lately) is "away": the leader's plan moves its partitions to members that hold their data, as a
 * removal would, but leaves it its last copies and keeps it a member. It could not serve anyway
 * (its own lease ended earlier), so this costs no availability, and SWIM need not first call it
 * dead: a member cut off from the leader but not from everyone (one-way partitions, an isolation
 * that lite members still reach) is never declared dead, and waiting for SWIM added 2–4 s of
 * unavailability (native-notes "Leases and fencing").
 */
const AWAY_MS = LEASE_MS * (1 + DRIFT);
/**
 * A primary that reported copy m of one of its partitions unreachable gets no copy on m for this
 * long (plan's `blocked`): both may be alive and leased but unable to talk (a one-way or pairwise
 * partition), and the balanced plan would put the replacement copy right back on m, where it can
 * never be streamed, while the partition's writes wait for a second copy. Each new report renews it.
 */
const BLOCK_MS = 5000;
/** A member that asked for a lease this recently is not away (it is reachable, only behind on tables). */
const ASKED_RECENTLY_MS = 4 * RENEW_MS;
/** A graceful leave waits this long at most for its removal to commit (best effort: SWIM's leave gossip removes it anyway). */
const LEAVE_MS = 2000;
/**
 * A graceful leave waits this long at most for its turn (the leader removes one leaver at a time,
 * once the copies the previous one took away are rebuilt); then it leaves anyway, as before.
 */
const LEAVE_TURN_MS = 30_000;
/** How often a leaver waiting for its turn asks again. */
const LEAVE_POLL_MS = 200;
/** A turn to leave is held this long for its member to ask for its removal (it stops serving in between). */
const LEAVE_TURN_HOLD_MS = 10_000;
/** How long a lite member waits for a data member's answer to `grid.table?` when confirming a table (liteRound). */
const LITE_ASK_MS = 1000;
/**
 * A data member asked `grid.table?` with `{ v }` (a lite member confirming a table of version v it
 * was told of) answers once it applied index v, or after this long with the table it has; at most
 * TABLE_ASKS_WAITING such answers wait at once (the others are answered at once).
 */
const TABLE_WAIT_MS = 500;
const TABLE_ASKS_WAITING = 64;
/** ... and only for a v at most this far past its applied index (a follower lags a heartbeat's entries, not 2^50). */
const TABLE_WAIT_AHEAD = 4096;
/** A lite member's round asks at most this many members (the log admits at most 256). */
const LITE_ASKED = 256;

export interface MetadataHost {
  readonly memberId: string;
  readonly url: string;
  readonly partitions: number;
  readonly backups: number;
  readonly transport: Transport;
  readonly log: LogFn;
  /** SWIM's verdict on a member: 'alive' / 'suspect', or 'dead' / 'left' (final), or undefined when unknown. */
  swimStatus(id: string): string | undefined;
  /** Ids of the lite members SWIM knows (they get table pushes). */
  liteMembers(): string[];
  /** Ids of the data members other than this one that SWIM holds alive (a lite member's first table is confirmed by them). */
  dataMembers(): string[];
  /** Where SWIM says member `id` listens, if it knows it. */
  memberUrl(id: string): string | undefined;
}

/** Events: 'table' (PartitionTable), 'removed' (this member was removed), 'lost' (partitions), 'leader' (id | undefined). */
export class Metadata extends EventEmitter {
  readonly state: MetaState;
  readonly lease = new Lease();
  /** The CP subsystem's submit/read/leader duties (cp-driver.ts). */
  readonly cp: CpDriver;
  private readonly host: MetadataHost;
  private readonly lite: boolean;
  private raft: RaftNode | undefined;
  private timer: NodeJS.Timeout | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private soonTimer: NodeJS.Timeout | undefined;
  /** An extra renewal at the end of a new leader's safe-0 period (renewAfter), and when it is due. */
  private afterTimer: NodeJS.Timeout | undefined;
  private afterAt = 0;
  /** A leader step due soon (stepSoon), besides the one every tick. */
  private stepTimer: NodeJS.Timeout | undefined;
  private soonVersion = -1;
  /** Renewals skipped for want of a leader (askWhetherRemoved paces itself by them). */
  private orphanRenewals = 0;
  private soonTries = 0;
  private closed = false;
  private flushing = false;
  private wasLeader = false;
  private lastLeader: string | undefined;
  /** Monotonic time of each recent tick of the core (tickTimes[i] = time of tick tickBase + i). */
  private tickBase = 0;
  private readonly tickTimes: number[] = [];
  /** A lite member's table (data members read state.table). */
  private liteTable: PartitionTable | undefined;
  /** Whether f+1 data members vouched for liteTable (the first one, from a seed, is taken before: trust on first use). */
  private liteConfirmed = false;
  /** Lite: rounds asking the data members for their table (liteRound), run on hints. */
  private readonly liteRounds = new Rounds((v) => this.liteRound(v));
  /** Rounds asking the members of our log whether it removed us (removalRound), run on claims that it did. */
  private readonly removalRounds = new Rounds(() => this.removalRound());
  /** `grid.table?` answers waiting for an index to be applied (onTableAsk). */
  private tableAsksWaiting = 0;
  /** Leader: what it proposed and is waiting to see applied. */
  private proposedTableBase = -1;
  private flushQueued = false;
  private listening = false;
  private readonly proposedRemovals = new Set<string>();
  /** Leader: the member whose graceful leave comes next (onLeaveTurn), until it is removed or `until`. */
  private leaveTurn: { id: string; until: number } | undefined;
  /** Leader: when each member was first seen dead by SWIM during this leadership (now() clock). */
  private readonly deadSince = new Map<string, number>();
  /** Leader: members waiting out LAST_COPY_GRACE_MS this step (out of the Raft configuration meanwhile). */
  private readonly grace = new Set<string>();
  /** Leader: members whose partitions this step's plan moves away (in their grace, or away: AWAY_MS). */
  private readonly away = new Set<string>();
  /** Leader: when each member was first seen in this leadership, and when it last asked for a lease (now() clock). */
  private readonly memberSince = new Map<string, number>();
  private readonly lastAsked = new Map<string, number>();
  /** Leader: since when its steps ran without a stall and its leadership was sure, and when the last step ran. */
  private awakeSince = 0;
  private lastStep = 0;
  /** Leader: `${primary}\u0000${copy}` → until when plan must not put a copy of primary's partitions on copy (BLOCK_MS). */
  private readonly blockedCopies = new Map<string, number>();
  private readonly proposedDrops = new Set<string>();
  private readonly proposedJoins = new Set<string>();
  private confPendingIndex = 0;
  /** Leader: pending copies reported complete, "p:member" with the epoch they were reported at. */
  private readonly synced = new Map<number, Map<string, number>>();
  private readonly leases = new LeaseTable();
  /** Leader: bumped whenever a synced report, a blocked copy or its expiry changes what plan() would see. */
  private planInputs = 0;
  /** Leader: the inputs (table version, planInputs, live and away members) of the last plan() that found nothing to do. */
  private settledPlanKey = '';
  /** Leader: CP commands proposed in this task; the next flush() packs them into one entry (proposeCp). */
  private cpQueue: CpCommand[] = [];
  /** Leader: the member that submitted each queued CP command (cp.propose), undefined for its own. */
  private cpVia: (string | undefined)[] = [];
  /** Leader: each queued CP command as it was received, when it was (packed as it is). */
  private cpWire: (unknown[] | undefined)[] = [];
  /** Leader: which followers must hear at once that a CP entry committed (RaftNodeOptions.commitNotice). */
  private readonly lazyCommits = new LazyCommits();
  /** Leader: its own CP entries, applied from the commands it packed instead of decoding them (cp-state.ts). */
  private readonly ownCp = new OwnCpEntries();
  /** Waiters for an index to be applied. */
  private readonly applyWaiters = new Map<number, Array<(ok: boolean) => void>>();
  private sinceCompact = 0;

  constructor(host: MetadataHost, lite: boolean) {
    super();
    this.host = host;
    this.lite = lite;
    this.state = new MetaState(host.partitions);
    this.cp = new CpDriver({
      memberId: host.memberId,
      lite,
      transport: host.transport,
      state: this.state,
      log: host.log,
      isLeader: () => this.isLeader(),
      leaderId: () => this.raft?.leader,
      propose: (cmd, via, wire) => this.queueCp(cmd, via, wire),
      readIndex: (rid) => this.raft !== undefined && this.raft.readIndex(rid) === undefined,
      flush: () => this.flushSoon(),
    });
  }

  get table(): PartitionTable | undefined {
    if (this.lite) return this.liteTable;
    return this.state.table.version > 0 ? this.state.table : undefined;
  }

  get leaderId(): string | undefined {
    return this.raft?.leader;
  }

  isLeader(): boolean {
    return this.raft !== undefined && this.raft.role === 'leader';
  }

  get term(): number {
    return this.raft?.term ?? 0;
  }

  /**
   * Registers the message handlers (idempotent). Called before membership starts, so that what
   * peers send as soon as they know this member (the leader's table push to a new lite member)
   * finds its handler; every handler copes with no Raft node yet.
   */
  listen(): void {
    if (this.listening) return;
    this.listening = true;
    const t = this.host.transport;
    t.handle('raft', (b, from) => this.onRaft(b, from));
    t.handle('meta.join', (_b, from) => this.onJoin(from));
    t.handle('meta.leave', (_b, from) => this.onLeave(from));
    t.handle('meta.leave?', (_b, from) => this.onLeaveTurn(from));
    t.handle('meta.lease', (b, from) => this.onLease(b, from));
    t.handle('meta.removed', (_b, from) => this.onRemovedNotice(from));
    t.handle('meta.synced', (b, from) => this.onSynced(b, from));
    t.handle('meta.drop', (b, from) => this.onDrop(b, from));
    t.handle('grid.table', (b) => this.onTablePush(b));
    t.handle('grid.table?', (b) => this.onTableAsk(b));
    t.handle('meta.leader?', () => ({ leader: this.raft?.leader ?? null, url: this.urlOf(this.raft?.leader) ?? null, term: this.raft?.term ?? 0 }));
    // a lite member's `shardgrid status` asks a data member: it has no log, so no CP state
    t.handle('cp.status?', () => this.cpStatus() ?? null);
    this.cp.start();
  }

  /**
   * Starts the Raft node: bootstraps a new group when `bootstrap` (the first member of a new
   * cluster), else waits to be added by the leader. Lite members run no node.
   */
  start(bootstrap: boolean): void {
    this.listen();
    if (this.lite) return;
    const me = this.host.memberId;
    this.raft = new RaftNode({
      id: me,
      voters: bootstrap ? [me] : [],
      learners: [],
      electionTicks: ELECTION_TICKS,
      heartbeatTicks: 1,
      seed: seedOf(me),
      preVote: true,
      checkQuorum: true,
      commitNotice: (to, from, upTo) => this.lazyCommits.notify(to, from, upTo),
    });
    this.tickTimes.push(now());
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
    this.renewTimer = setInterval(() => this.renew(), RENEW_MS);
    this.renewTimer.unref();
    if (bootstrap) {
      // a group of one elects itself after one election timeout of ticks: run them now
      for (let i = 0; i < 2 * ELECTION_TICKS && this.raft.role !== 'leader'; i++) this.advanceTick();
      this.flush();
      this.leaderStep();
      this.flush();
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    clearInterval(this.renewTimer);
    clearTimeout(this.soonTimer);
    clearTimeout(this.stepTimer);
    clearTimeout(this.afterTimer);
    this.liteRounds.close();
    this.removalRounds.close();
    this.lease.revoke();
    this.cp.close();
    for (const ws of this.applyWaiters.values()) for (const w of ws) w(false);
    this.applyWaiters.clear();
  }

  // ── the Raft driver ───────────────────────────────────────────────────────────────────────────

  private tick(): void {
    if (this.closed || this.raft === undefined) return;
    this.advanceTick();
    this.flush();
    if (this.isLeader()) {
      this.leaderStep();
      this.cp.leaderTick();
      this.flush();
    }
  }

  private advanceTick(): void {
    this.raft!.tick();
    this.tickTimes.push(now());
    if (this.tickTimes.length > 4 * ELECTION_TICKS) {
      this.tickTimes.shift();
      this.tickBase++;
    }
  }

  /** Monotonic time of the core's tick number `n` (0 when it is too old to remember). */
  private timeOfTick(n: number): number {
    const i = n - this.tickBase;
    return i >= 0 && i < this.tickTimes.length ? this.tickTimes[i] : 0;
  }

  /**
   * Whether this leader surely still leads: a majority answered a heartbeat round sent less than
   * half an election timeout ago, so no other leader can have been elected since (followers that
   * heard from a leader refuse votes for a whole election timeout).
   */
  private leaderLeaseValid(): boolean {
    const r = this.raft;
    // a leader handing over (a transfer: its successor's votes skip stickiness) stops granting
    if (r === undefined || r.role !== 'leader' || r.transferTarget !== undefined) return false;
    const q = r.quorumContactTick();
    if (q === undefined) return false;
    const t = this.timeOfTick(q);
    return t > 0 && now() - t < (ELECTION_TICKS * TICK_MS) / 2;
  }

  private onRaft(b: unknown, from: string): void {
    const r = this.raft;
    if (r === undefined || this.closed) return;
    const m = validateMessage(b);
    if (m === undefined) throw new ProtocolError('malformed raft message');
    // a member speaks only for itself, and only to us
    if (m.from !== from || m.to !== this.host.memberId) throw new ProtocolError('raft message with a forged sender or recipient');
    // A term more than MAX_TERM_GAP past ours is no run of elections this member missed but a
    // peer pushing the group's terms toward the end of the safe integers: one heartbeat of term
    // 2^53-1 from any holder of the secret was adopted by every member, after which no election's
    // term was a safe integer and the group stayed without a leader for good (helper 34,
    // 2026-11-28). Now such a peer needs 2^33 messages to get there.
    if (m.term > r.term + MAX_TERM_GAP) throw new ProtocolError(`raft message of term ${m.term}, more than ${MAX_TERM_GAP} past this member's ${r.term}`);
    if (this.state.wasRemoved(from)) {
      // a member the log removed (a zombie after a pause) still speaks Raft: tell it, so it rejoins
      this.host.transport.notify(from, 'meta.removed', { term: r.term });
      return;
    }
    r.step(m);
    this.flush();
  }

  /**
   * flush() once the current task's synchronous work is done: CP commands proposed and reads asked
   * while one frame's messages are handled (up to 64 from a member at c=64) go out in one append
   * round and one read round, not one each (the Raft core sends entries from ready()).
   */
  private flushSoon(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      this.flush();
    });
  }

  /** Hands the node's Ready to the world, repeatedly, until it has nothing more. */
  private flush(): void {
    const r = this.raft;
    if (r === undefined || this.flushing || this.closed) return;
    this.flushing = true;
    try {
      if (this.cpQueue.length > 0) this.proposeCp();
      while (r.hasReady()) {
        const rd = r.ready();
        if (rd.snapshot !== undefined) this.restore(rd.snapshot.data, rd.snapshot.index);
        for (const m of rd.messages) this.send(m);
        // the messages go before the entries are applied: a follower's acknowledgement (the
        // leader commits on it) and a leader's appends (the followers acknowledge them) would
        // otherwise wait at the end of the turn for every command of the entries to apply
        if (rd.committed.length > 0) for (const m of rd.messages) this.host.transport.flushTo(m.to);
        for (const e of rd.committed) this.applyEntry(e);
        if (rd.readStates.length > 0) this.cp.readStates(rd.readStates);
        r.advance();
        // after advance(): the core compacts only up to what it knows is applied, and a ready()
        // can carry many committed entries (compacting inside the loop threw on the second)
        if (this.sinceCompact >= COMPACT_EVERY) {
          this.sinceCompact = 0;
          r.compact(this.state.index, packr.pack(this.state.snapshot()));
        }
      }
    } finally {
      this.flushing = false;
    }
    const leader = r.leader;
    if (leader !== this.lastLeader) {
      this.lastLeader = leader;
      this.emit('leader', leader);
    }
    const isLeader = r.role === 'leader';
    if (isLeader && !this.wasLeader) this.becameLeader();
    this.wasLeader = isLeader;
  }

  private send(m: RaftMessage): void {
    const to = m.to;
    const t = this.host.transport;
    if (t.isConnected(to)) {
      t.notify(to, 'raft', m);
      return;
    }
    const url = this.urlOf(to);
    if (url === undefined) return;
    // dial in the background; Raft resends whatever is lost
    t.connect(url).then(
      (id) => {
        if (id === to) t.notify(to, 'raft', m);
      },
      () => undefined,
    );
  }

  /** Where member `id` is dialled: its url in the log, else the url its handshake named when that is a member url (ws(s)://host:port, as the log takes). */
  private urlOf(id: string | undefined): string | undefined {
    if (id === undefined) return undefined;
    const logged = this.state.members.get(id)?.url;
    if (logged !== undefined) return logged;
    const hello = this.host.transport.urlOf(id);
    return isMemberUrl(hello) ? hello : undefined;
  }

  private applyEntry(e: Entry): void {
    if (e.type !== 'normal' || e.data === undefined || e.data.length === 0) {
      this.state.index = e.index;
      this.settle(e.index);
      return;
    }
    let cmd: Command | undefined = this.ownCp.size === 0 ? undefined : this.ownCp.take(e.index, e.data);
    if (cmd === undefined) {
      try {
        // a CP batch over its byte bound is refused before msgpackr builds anything of it
        cmd = isOversizedCpBatch(e.data) ? undefined : parseCommand(unpackr.unpack(e.data), this.host.partitions);
        if (cpBatchTooBig(cmd, e.data.length)) cmd = undefined;
      } catch {
        cmd = undefined;
      }
    }
    const a = this.state.apply(e.index, cmd);
    if (cmd?.c !== 'cpb') this.host.log('info', `log ${e.index}: ${cmd === undefined ? 'no-op' : cmd.c === 'table' ? `table on base ${cmd.base}${a.table === undefined ? ' (refused)' : ''}` : cmd.c === 'drop' ? `drop copy ${cmd.m} of p${cmd.p} at epoch ${cmd.epoch}` : `${cmd.c} ${cmd.id}`}`);
    if (cmd?.c === 'table' && a.table === undefined && this.proposedTableBase === cmd.base) {
      // refused by the state machine (the table moved on meanwhile, or the plan broke a rule): plan again
      this.proposedTableBase = -1;
      if (cmd.base === this.state.table.version) this.host.log('warn', `the state machine refused a planned table (base ${cmd.base}); planning again`);
    }
    this.applied(a);
    // the next table may be planned now rather than at the next tick (a failover moves partitions
    // in several tables, one in flight at a time; each waited up to a tick)
    if (a.table !== undefined || a.joined !== undefined || a.removed !== undefined) this.stepSoon();
    if (a.cp !== undefined) {
      for (const x of a.cp) this.cp.applied(x);
      // this leader's own CP entry: tell the followers that wait for it (LazyCommits)
      const tell = this.lazyCommits.applied(e.index, a.cp);
      if (tell !== undefined) {
        const r = this.raft!;
        if (tell === 'all') for (const m of this.state.members.keys()) r.sendCommitTo(m);
        else for (const m of tell) r.sendCommitTo(m);
      }
    }
    this.settle(e.index);
    this.sinceCompact++;
  }

  private applied(a: Applied): void {
    const me = this.host.memberId;
    if (a.joined !== undefined) this.proposedJoins.delete(a.joined.id);
    if (a.removed !== undefined) {
      this.proposedRemovals.delete(a.removed.id);
      if (a.removed.id === me) {
        this.lease.revoke();
        this.emit('removed', a.removed.why);
      }
    }
    if (a.table !== undefined) {
      this.proposedTableBase = -1;
      for (const [p, ms] of this.synced) {
        for (const m of ms.keys()) if (!a.table.pending[p].includes(m)) ms.delete(m);
        if (ms.size === 0) this.synced.delete(p);
      }
      this.planInputs++;
      this.proposedDrops.clear();
      this.emit('table', a.table);
      if (this.isLeader()) this.pushTable(a.table);
      // report the new version at once: hand-overs wait for every lease holder to have it
      this.renew();
    }
    if (a.lost !== undefined) this.emit('lost', a.lost);
  }

  private restore(data: Uint8Array, index: number): void {
    let s: unknown;
    try {
      s = unpackr.unpack(data);
    } catch {
      throw new ProtocolError('undecodable metadata snapshot');
    }
    if (!isStateSnapshot(s, this.host.partitions, isTable)) throw new ProtocolError('malformed metadata snapshot');
    this.state.restore(s as StateSnapshot);
    this.state.index = index;
    this.ownCp.forgetTo(index);
    this.cp.appliedTo(index);
    if (!this.state.members.has(this.host.memberId) && this.state.wasRemoved(this.host.memberId)) this.emit('removed', 'removed');
    if (this.state.table.version > 0) this.emit('table', this.state.table);
  }

  private settle(index: number): void {
    this.cp.appliedTo(index);
    for (const [i, ws] of this.applyWaiters) {
      if (i > index) continue;
      this.applyWaiters.delete(i);
      for (const w of ws) w(true);
    }
  }

  private waitApplied(index: number, ms: number): Promise<boolean> {
    if (this.state.index >= index) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), ms);
      let ws = this.applyWaiters.get(index);
      if (ws === undefined) this.applyWaiters.set(index, (ws = []));
      ws.push((ok) => {
        clearTimeout(t);
        resolve(ok);
      });
    });
  }

  /**
   * The CP driver's proposals: queued while this node leads, and proposed by the next flush() (the
   * driver flushes at the end of the task) as one entry for all of them. 0 when queued, -1 when
   * this node does not lead.
   */
  private queueCp(cmd: CpCommand, via?: string, wire?: unknown[]): number {
    if (this.raft === undefined || this.raft.role !== 'leader') return -1;
    this.cpQueue.push(cmd);
    this.cpVia.push(via);
    this.cpWire.push(wire);
    return 0;
  }

  /**
   * Proposes the queued CP commands in as few entries as the bounds allow (`packCpEntries`), in
   * their order. If the core refuses (leadership lost meanwhile), the rest are dropped: the
   * submitters resend theirs, and the leader's own (expire, leaseEnd) are planned again from the
   * state by `cp.becameLeader()` (its timers start afresh, so expiry can only come later).
   */
  private proposeCp(): void {
    const q = this.cpQueue;
    const via = this.cpVia;
    const wire = this.cpWire;
    this.cpQueue = [];
    this.cpVia = [];
    this.cpWire = [];
    const parts: CpCommand[][] = [];
    let at = 0; // packCpEntries keeps the order: part k is q[at, at + part.length)
    for (const data of packCpEntries(q, (x) => packr.pack(x), parts, wire)) {
      const part = parts.shift()!;
      const index = this.raft!.propose(data);
      if (!(index instanceof RaftError)) {
        this.ownCp.remember(index, data, part);
        this.lazyCommits.add(index, part, via, at);
        at += part.length;
        continue;
      }
      this.host.log('warn', `the Raft core refused queued CP commands (${q.length} in this task); their submitters resend`);
      if (this.isLeader()) this.cp.becameLeader();
      return;
    }
  }

  /** Proposes a command; its log index, or -1 when this node cannot propose now. */
  private propose(cmd: Command): number {
    const r = this.raft!.propose(packr.pack(cmd));
    return r instanceof RaftError ? -1 : r;
  }

  // ── leader duties ─────────────────────────────────────────────────────────────────────────────

  private becameLeader(): void {
    // a brand-new cluster has no earlier leases to wait out
    // a leader elected through a transfer got votes that skip stickiness: it waits the whole lease
    const r = this.raft!;
    const creditMs = r.wonByTransfer ? 0 : newLeaderCreditMs(r.electionQuiet ?? 0);
    this.leases.becameLeader(this.state.members.size === 0, creditMs);
    this.host.log('info', `leader of term ${r.term}: election quiet ${r.electionQuiet ?? 0} ticks, ${Math.round(creditMs)} ms off the inherited lease wait`);
    this.proposedTableBase = -1;
    this.settledPlanKey = '';
    this.lazyCommits.clear();
    this.proposedRemovals.clear();
    this.deadSince.clear();
    this.memberSince.clear();
    this.lastAsked.clear();
    this.awakeSince = now();
    this.proposedDrops.clear();
    this.proposedJoins.clear();
    this.confPendingIndex = 0;
    this.cp.becameLeader();
    this.host.log('info', `became the metadata leader (term ${this.term})`);
  }

  /** One step of the leader's duties; each waits for the previous of its kind to be applied. */
  private leaderStep(): void {
    const st = this.state;
    // the first member of a new cluster joins itself
    const me = this.host.memberId;
    if (st.members.size === 0 && !this.proposedJoins.has(me) && !st.wasRemoved(me)) {
      if (this.propose({ c: 'join', id: me, url: this.host.url }) >= 0) this.proposedJoins.add(me);
      return;
    }
    // members SWIM found dead or gone. A member SWIM calls dead is removed only once its lease
    // surely ended: until then it may still serve (a pause), and a member that still renews its
    // lease is alive whatever SWIM says (an overloaded member that answers pings late)
    const t = st.table;
    const t0 = now();
    // a stalled leader (a pause, a long task) could not renew anyone: judge nobody away until it has run a whole lease since
    if (t0 - this.lastStep > 3 * TICK_MS || !this.leaderLeaseValid()) this.awakeSince = t0;
    this.lastStep = t0;
    this.grace.clear();
    this.away.clear();
    for (const id of this.memberSince.keys()) {
      if (!st.members.has(id)) {
        this.memberSince.delete(id);
        this.lastAsked.delete(id);
      }
    }
    for (const id of st.members.keys()) {
      if (id === me || this.proposedRemovals.has(id)) continue;
      if (!this.memberSince.has(id)) this.memberSince.set(id, t0);
      const s = this.host.swimStatus(id);
      if (s !== 'dead') this.deadSince.delete(id);
      if (s !== 'left' && this.isAway(id, t0)) this.away.add(id);
      if (s === 'dead' && this.leases.mayHold(id)) continue;
      if (s === 'dead') {
        // a member holding the only copy of some partitions is not removed at once: a removal
        // destroys that data for good (the member drops everything and rejoins), and a member
        // SWIM calls dead may only be slow (an overloaded machine: nemesis seed 7000 schedule 4
        // lost 95 partitions when a member still streaming the copies of a paused one was
        // declared dead). Its other partitions fail over meanwhile (plan with `away`); if it refutes
        // within the grace, nothing is lost; if it is really gone, the removal comes later and
        // reports those partitions lost, as it would have at once.
        const since = this.deadSince.get(id) ?? t0;
        this.deadSince.set(id, since);
        if (t0 - since < LAST_COPY_GRACE_MS && lastCopiesOf(t, id, st.members).length > 0) {
          this.grace.add(id);
          this.away.add(id);
          continue;
        }
      }
      if ((s === 'dead' || s === 'left') && this.propose({ c: 'remove', id, why: s }) >= 0) this.proposedRemovals.add(id);
    }
    this.reconcileConfig();
    // the table: one proposal in flight at a time
    if (this.proposedTableBase === st.table.version || st.members.size === 0) return;
    // members away keep their last copies (plan leaves a partition that only they hold as it is) and get nothing new
    const live = [...st.members.keys()].filter((id) => !this.away.has(id));
    for (const [k, until] of this.blockedCopies) {
      if (until > t0) continue;
      this.blockedCopies.delete(k);
      this.planInputs++;
    }
    // nothing plan() reads changed since it last found nothing to do: skip it (it walks every
    // partition; the leader steps 10 times a second, nearly always in a settled cluster)
    const key = `${t.version}|${this.planInputs}|${live.join(',')}|${[...this.away].join(',')}`;
    if (key === this.settledPlanKey) return;
    const blocked = this.blockedCopies.size === 0 ? undefined : (primary: string, copy: string) => this.blockedCopies.has(`${primary}\u0000${copy}`);
    const next = plan(t, live, this.host.backups, (p) => this.syncedAt(p, t.epochs[p]), { away: this.away, blocked });
    if (next === undefined) {
      this.settledPlanKey = key;
      return;
    }
    if (this.propose({ c: 'table', base: t.version, owners: next.owners, pending: next.pending }) >= 0) this.proposedTableBase = t.version;
  }

  /** Pending copies of p its primary reported complete at `epoch`. */
  private syncedAt(p: number, epoch: number): ReadonlySet<string> {
    const ms = this.synced.get(p);
    if (ms === undefined || ms.size === 0) return NONE_SYNCED; // the steady state: no Set per partition per tick
    const out = new Set<string>();
    for (const [m, e] of ms) if (e === epoch) out.add(m);
    return out;
  }


  /**
   * Keeps the Raft configuration equal to the data members, one change at a time: removed members
   * out, new members in as learners, then learners promoted until there are 3 voters (5 from 5
   * members on).
   */
  private reconcileConfig(): void {
    const r = this.raft!;
    if (this.confPendingIndex > this.state.index) return;
    const cfg = r.config;
    const members = this.state.members;
    const me = this.host.memberId;
    const change = (kind: 'remove' | 'addLearner' | 'promote', id: string): void => {
      const i = r.proposeConfChange({ kind, id });
      // refused (a change still pending in the core, or not leading): try again next tick
      if (!(i instanceof RaftError)) this.confPendingIndex = i;
    };
    // a member in its last-copy grace (dead to SWIM, kept as a data owner) leaves the Raft
    // configuration meanwhile: kept as a voter it would cost the metadata group its fault
    // tolerance (one more failure and no majority: the cp cluster test's leader kill right after
    // a member kill got no leader). It comes back as a learner if it refutes.
    for (const id of [...cfg.voters, ...cfg.learners]) {
      if ((!members.has(id) || this.grace.has(id)) && id !== me) return change('remove', id);
    }
    for (const id of members.keys()) {
      if (!this.grace.has(id) && !cfg.voters.includes(id) && !cfg.learners.includes(id)) return change('addLearner', id);
    }
    const want = members.size >= 5 ? 5 : Math.min(3, members.size);
    if (cfg.voters.length < want) {
      // promote the oldest learner that SWIM believes alive, preferring one whose certificate no
      // voter has (vouch.ts learnerToPromote)
      const id = learnerToPromote([...members.keys()].filter((x) => cfg.learners.includes(x)), cfg.voters, (x) => this.host.swimStatus(x) === 'alive');
      if (id !== undefined) return change('promote', id);
    }
  }

  /** Pushes a committed table to the lite members (they route with it). */
  private pushTable(t: PartitionTable): void {
    for (const id of this.host.liteMembers()) this.host.transport.notify(id, 'grid.table', t);
  }

  private onJoin(from: string): Promise<unknown> | unknown {
    if (!this.isLeader()) throw new NotLeaderError('not the metadata leader', { leader: this.raft?.leader ?? null, url: this.urlOf(this.raft?.leader) ?? null });
    if (this.state.wasRemoved(from)) throw new ProtocolError(`member ${from} was removed from the cluster; restart it to rejoin under a new id`);
    if (this.state.members.has(from)) return { ok: true };
    const url = this.host.transport.urlOf(from);
    if (url === undefined || !isMemberId(from)) throw new ProtocolError('join from a member without a url');
    // as the log's join command takes it (parseCommand): another url was proposed all the same, an
    // entry every member stored and ignored, and the joiner was told it was "not committed in time"
    if (!isMemberUrl(url)) throw new ProtocolError(`join from a member whose url ${safeText(url)} is not ws:// or wss:// and host:port`);
    const index = this.propose({ c: 'join', id: from, url });
    if (index < 0) throw new NotLeaderError('not the metadata leader now', { leader: this.raft?.leader ?? null });
    this.flush();
    return this.waitApplied(index, JOIN_TIMEOUT_MS).then((ok) => {
      if (!ok || !this.state.members.has(from)) throw new TimeoutError('the join was not committed in time');
      return { ok: true };
    });
  }

  /**
   * A leaver asks, still serving, whether it is its turn (`awaitLeaveTurn`): `{ ok: true }` holds the
   * turn for it (LEAVE_TURN_HOLD_MS) while it stops serving and asks for its removal; `{ wait: true }`
   * while another member holds the turn or the cluster is not whole again (mayLeave).
   */
  private onLeaveTurn(from: string): unknown {
    if (!this.isLeader()) throw new NotLeaderError('not the metadata leader', { leader: this.raft?.leader ?? null });
    if (!this.state.members.has(from)) return { ok: true };
    if (this.leaveTurn?.id === from || (!this.turnHeldByOther(from) && this.mayLeave(from))) {
      this.leaveTurn = { id: from, until: now() + LEAVE_TURN_HOLD_MS };
      return { ok: true };
    }
    return { wait: true };
  }

  private turnHeldByOther(from: string): boolean {
    const lt = this.leaveTurn;
    return lt !== undefined && lt.id !== from && this.state.members.has(lt.id) && lt.until > now();
  }

  private onLeave(from: string): unknown {
    if (!this.isLeader()) throw new NotLeaderError('not the metadata leader', { leader: this.raft?.leader ?? null });
    if (!this.state.members.has(from)) return { ok: true };
    // the turn's holder goes (it stopped serving already); anyone else only as onLeaveTurn would let it
    if (!this.proposedRemovals.has(from) && this.leaveTurn?.id !== from && (this.turnHeldByOther(from) || !this.mayLeave(from))) return { wait: true };
    if (!this.proposedRemovals.has(from)) {
      this.proposedRemovals.add(from);
      const index = this.propose({ c: 'remove', id: from, why: 'left' });
      if (index < 0) throw new NotLeaderError('not the metadata leader now', { leader: this.raft?.leader ?? null });
      this.flush();
      return this.waitApplied(index, LEAVE_MS).then(() => ({ ok: true }));
    }
    return { ok: true };
  }

  /**
   * Whether the leader may remove member `from` for a graceful leave now. One leaver at a time,
   * each once the cluster is whole again: no other removal under way (proposed and not applied),
   * no copy being streamed, every partition with its `backups + 1` owners (as many as there are
   * members), and the Raft voters all members, as many as wanted. Two members leaving together were
   * two failures at once: the partitions they shared lost every copy, and two of the three voters
   * left at once (the rest never elected a leader again). A leaver answered `{ wait: true }` asks
   * again (`leave`).
   */
  private mayLeave(from: string): boolean {
    const st = this.state;
    for (const id of this.proposedRemovals) if (id !== from && st.members.has(id)) return false;
    const t = st.table;
    if (migrating(t) > 0) return false;
    const want = Math.min(this.host.backups + 1, st.members.size);
    for (let p = 0; p < t.owners.length; p++) {
      let held = 0;
      for (const m of t.owners[p]) if (st.members.has(m)) held++;
      // 0: lost already, beyond the tolerance; nothing a wait would mend
      if (held > 0 && held < want) return false;
    }
    const cfg = this.raft?.config;
    if (cfg === undefined) return true;
    if (cfg.voters.some((v) => !st.members.has(v))) return false;
    return cfg.voters.length >= (st.members.size >= 5 ? 5 : Math.min(3, st.members.size));
  }

  /**
   * A member of our log says the log removed us. Only members our own log knows are heard (a
   * stranger cannot talk us out of the cluster), and only as a hint (removalHint): a removed
   * member cannot know otherwise, since the leader no longer sends it anything.
   */
  private onRemovedNotice(from: string): void {
    if (this.lite || this.closed || !this.state.members.has(from) || from === this.host.memberId) return;
    this.removalHint();
  }

  /** A lease request: `{ v }` = the table version the member applied. */
  private onLease(b: unknown, from: string): unknown {
    const v = (b as { v?: unknown } | null)?.v;
    if (!Number.isSafeInteger(v) || (v as number) < 0) throw new ProtocolError('malformed lease request');
    if (this.isLeader() && this.state.members.has(from)) this.lastAsked.set(from, now());
    return this.grant(from, v as number);
  }

  /**
   * Leader: whether member `id` is away (AWAY_MS): this leader ran without a stall for a whole lease
   * and knew the member that long, the member's last grant ended, and it has not asked lately.
   */
  private isAway(id: string, t: number): boolean {
    return (
      t - this.awakeSince >= AWAY_MS &&
      t - (this.memberSince.get(id) ?? t) >= AWAY_MS &&
      !this.leases.mayHold(id) &&
      t - (this.lastAsked.get(id) ?? 0) >= ASKED_RECENTLY_MS
    );
  }

  private grant(id: string, v: number): { d: number; s: number; w?: number } | { removed: true } {
    // any member whose log committed the removal says so (a removed member may not know the leader)
    if (this.state.wasRemoved(id)) return { removed: true };
    if (!this.isLeader()) throw new NotLeaderError('not the metadata leader', { leader: this.raft?.leader ?? null });
    if (!this.state.members.has(id)) throw new PartitionUnavailableError(`member ${id} has not joined yet`);
    if (!this.leaderLeaseValid()) throw new NotLeaderError('the metadata leader has not heard from a majority lately');
    const s = this.leases.grant(id, v, this.state.table.version);
    if (s < 0) return { d: 0, s: 0 };
    // a new leader's `safe` 0 period: say when it ends, so the member asks again right then
    const w = s === 0 ? this.leases.inheritedLeft() : 0;
    return w > 0 ? { d: LEASE_MS, s, w: Math.ceil(w) } : { d: LEASE_MS, s };
  }

  private onSynced(b: unknown, from: string): void {
    const { p, m, e } = (b ?? {}) as { p?: unknown; m?: unknown; e?: unknown };
    if (!Number.isInteger(p) || (p as number) < 0 || (p as number) >= this.host.partitions || !isMemberId(m) || !Number.isSafeInteger(e)) throw new ProtocolError('malformed sync report');
    const t = this.state.table;
    // only p's primary at the current epoch reports its copies
    if (!this.isLeader() || t.owners[p as number][0] !== from || t.epochs[p as number] !== e || !t.pending[p as number].includes(m)) return;
    let ms = this.synced.get(p as number);
    if (ms === undefined) this.synced.set(p as number, (ms = new Map()));
    ms.set(m as string, e as number);
    this.planInputs++;
    this.stepSoon(); // the synced copy can become an owner now: writes waiting for a second copy wait for that table
  }

  /** Runs a leader step STEP_SOON_MS from now (reports that arrive together share it), besides the tick's. */
  private stepSoon(): void {
    if (this.stepTimer !== undefined || this.closed || !this.isLeader()) return;
    this.stepTimer = setTimeout(() => {
      this.stepTimer = undefined;
      if (this.closed || !this.isLeader()) return;
      this.leaderStep();
      this.flush();
    }, STEP_SOON_MS);
    this.stepTimer.unref();
  }

  private onDrop(b: unknown, from: string): void {
    const { p, m, e } = (b ?? {}) as { p?: unknown; m?: unknown; e?: unknown };
    if (!Number.isInteger(p) || (p as number) < 0 || (p as number) >= this.host.partitions || !isMemberId(m) || !Number.isSafeInteger(e)) throw new ProtocolError('malformed drop report');
    const t = this.state.table;
    if (!this.isLeader() || t.owners[p as number][0] !== from || t.epochs[p as number] !== e) return;
    if (m !== from && this.state.members.has(m as string)) this.blockedCopies.set(`${from}\u0000${m as string}`, now() + BLOCK_MS);
    this.planInputs++;
    const k = `${p}:${m}:${e}`;
    if (this.proposedDrops.has(k)) return;
    this.proposedDrops.add(k);
    this.synced.get(p as number)?.delete(m as string);
    if (t.owners[p as number].includes(m as string) || t.pending[p as number].includes(m as string)) {
      if (this.propose({ c: 'drop', p: p as number, m: m as string, epoch: e as number }) < 0) this.proposedDrops.delete(k);
      this.flush();
    }
  }

  /**
   * A table pushed to a lite member (the leader pushes every committed one): only a hint that
   * version `b.version` exists. Any secret holder can push; a forged table of version 2^50 taken
   * as it came left the lite member routing with it for good (no honest table was ever newer).
   */
  private onTablePush(b: unknown): void {
    if (!this.lite || b === null) return;
    if (!isTable(b, this.host.partitions)) throw new ProtocolError('malformed partition table');
    this.liteHint(b.version);
  }

  /**
   * `grid.table?`: this member's table. With `{ v }` (a lite member confirming version v, which
   * this member may not have applied yet: followers apply an entry a heartbeat after the leader),
   * once it applied index v, or after TABLE_WAIT_MS with what it has.
   */
  private onTableAsk(b: unknown): unknown {
    const v = typeof b === 'object' && b !== null ? (b as { v?: unknown }).v : undefined;
    const ahead = Number.isSafeInteger(v) ? (v as number) - this.state.index : 0;
    if (this.lite || this.raft === undefined || ahead <= 0 || ahead > TABLE_WAIT_AHEAD || this.tableAsksWaiting >= TABLE_ASKS_WAITING) return this.table ?? null;
    this.tableAsksWaiting++;
    return this.waitApplied(v as number, TABLE_WAIT_MS).then(() => {
      this.tableAsksWaiting--;
      return this.table ?? null;
    });
  }

  /** Whether f+1 data members vouched for this lite member's table (false before the first is confirmed). */
  get liteTableConfirmed(): boolean {
    return this.liteConfirmed;
  }

  /**
   * Lite members: a hint that a newer table may exist (a push, a primary's refusal naming version
   * v, the periodic refresh). A round asks the data members for theirs (liteRound); nothing is
   * taken from the hint itself.
   */
  liteHint(v = 0): void {
    if (this.lite && !this.closed) this.liteRounds.hint(v);
  }

  /**
   * Lite members: the first table, from whichever seed answered first (trust on first use: there
   * is no table yet to name the members to ask). Confirmed at once by a round like any other.
   */
  firstLiteTable(t: PartitionTable): void {
    if (!this.lite || this.liteTable !== undefined) return;
    this.liteTable = t;
    this.emit('table', t, false);
    this.liteHint(t.version);
  }

  /**
   * One round of a lite member's table confirmation: asks every data member its confirmed table
   * names (before the first is confirmed: the data members SWIM holds alive, else those the first
   * table names) for its table, directly, and takes a table that f+1 of them answered identically
   * (same digest), when it is newer than the confirmed one. With at most f of them wrong, one
   * honest member vouched for it, and an honest member answers only tables its log committed. An
   * unconfirmed first table may be replaced by an older confirmed one (a forged first table's
   * version does not stick). `v`: the version hinted (the members wait until they applied it,
   * onTableAsk). Resolves true when some member answered a newer table that did not gather f+1
   * votes yet (run again soon).
   */
  private async liteRound(v: number): Promise<boolean> {
    const cur = this.liteTable;
    const swim = this.liteConfirmed ? [] : this.host.dataMembers();
    const ids = (swim.length > 0 ? swim : namedIn(cur)).filter((id) => id !== this.host.memberId).slice(0, LITE_ASKED);
    const body = v > 0 ? { v } : null;
    const votes = new Map<string, { t: PartitionTable; tally: Tally }>();
    await askAll(
      ids,
      (id) => this.ask(id, 'grid.table?', body, LITE_ASK_MS + (body === null ? 0 : TABLE_WAIT_MS)),
      (id, b) => {
        if (this.closed || b === null || !isTable(b, this.host.partitions)) return false;
        const d = tableDigest(b);
        let e = votes.get(d);
        if (e === undefined) votes.set(d, (e = { t: b, tally: new Tally(ids) }));
        if (e.tally.add(id)) this.installLite(e.t);
        // done once the version hinted (or a newer one) is confirmed; stragglers are not waited for
        return this.liteConfirmed && v > 0 && this.liteTable!.version >= v;
      },
    );
    const held = this.liteTable;
    return [...votes.values()].some((e) => held === undefined || e.t.version > held.version);
  }

  /** Installs a table f+1 data members vouched for: newer than the confirmed one, or any in place of an unconfirmed one. */
  private installLite(t: PartitionTable): void {
    const cur = this.liteTable;
    if (cur !== undefined && this.liteConfirmed && t.version <= cur.version) return;
    const was = this.liteConfirmed;
    this.liteConfirmed = true;
    if (cur !== undefined && !was && t.version === cur.version && tableDigest(t) === tableDigest(cur)) return; // the first table, confirmed
    this.liteTable = t;
    this.liteRounds.progressed();
    // replace: an unconfirmed first table gives way to this one even when this one is older
    this.emit('table', t, !was);
  }

  /** Asks member `id` directly (dialling it at the url its log, its handshake or SWIM gave when not linked). */
  private async ask(id: string, type: string, body: unknown, ms: number): Promise<unknown> {
    const t = this.host.transport;
    if (!t.isConnected(id)) {
      const url = this.urlOf(id) ?? this.host.memberUrl(id);
      if (url === undefined || (await t.connect(url, ms)) !== id) throw new MemberUnreachableError(`member ${id} cannot be asked`, { member: id });
    }
    return t.request(id, type, body, ms);
  }

  // ── requests from this member to the leader ───────────────────────────────────────────────────

  /** Renews this member's lease and reports the table version it applied. */
  private renew(): void {
    if (this.closed || this.lite) return;
    const me = this.host.memberId;
    const leader = this.raft?.leader;
    const v = this.state.table.version;
    // not a member of our own log (yet, or any more), or no leader in reach: no lease to renew;
    // only find out whether the log removed us
    if (!this.state.members.has(me) || leader === undefined || (leader !== me && !this.host.transport.isConnected(leader))) {
      this.askWhetherRemoved(v, leader !== undefined && leader !== me && this.host.transport.isConnected(leader) ? leader : undefined);
      return;
    }
    const sentAt = now();
    const done = (r: unknown): void => {
      if (this.closed) return;
      const g = r as { d?: unknown; s?: unknown; w?: unknown; removed?: unknown } | null;
      if (g?.removed === true) {
        // the leader's word, or whoever claimed to lead: confirmed by the others first
        if (leader === this.host.memberId) this.emit('removed', 'removed');
        else this.removalHint();
        return;
      }
      if (typeof g?.d === 'number' && typeof g.s === 'number' && g.d > 0) {
        this.lease.granted(sentAt, g.d, g.s);
        // a new leader grants safe 0 until its predecessor's leases surely ended: ask again the
        // moment that period ends (instead of up to a renewal period later)
        if (typeof g.w === 'number' && g.w > 0 && g.w <= LEASE_MS * (1 + DRIFT)) this.renewAfter(g.w + RENEW_AFTER_SLACK_MS);
        // a table this member applied is not safe to serve yet (another holder had not reported
        // it): ask again soon rather than a whole renewal period later, since writes to the
        // partitions it was just given wait for this
        else if (g.s < this.state.table.version) this.renewSoon();
      }
    };
    if (leader === this.host.memberId) {
      try {
        done(this.grant(leader, v));
      } catch {
        // not leading any more, or no recent quorum: no lease
      }
      return;
    }
    // a request that fails leaves the lease to run out: that is the point of a lease
    this.host.transport.request(leader, 'meta.lease', { v }, RENEW_MS * 2).then(done, () => undefined);
  }

  /**
   * Not a member of our own log, or no leader in reach: once a second, asks the leader (else one
   * connected data member of our log) whether its log removed us. A learner removed while cut off never hears of it otherwise: it does not campaign
   * (so it never speaks Raft to anyone who could tell it), and the leader no longer sends it
   * entries; it stayed a zombie at an old table for good (nemesis seed 8000 schedule 10). Only a
   * member of our own log is asked and believed, as for a meta.removed notice.
   */
  private askWhetherRemoved(v: number, leader: string | undefined): void {
    if (++this.orphanRenewals % ORPHAN_ASK_EVERY !== 0) return;
    const t = this.host.transport;
    const me = this.host.memberId;
    const peers = leader !== undefined ? [leader] : [...this.state.members.keys()].filter((id) => id !== me && t.isConnected(id));
    if (peers.length === 0) return;
    const to = peers[this.orphanRenewals % peers.length]!;
    t.request(to, 'meta.lease', { v }, RENEW_MS * 2).then((r) => {
      if (this.closed || !saysRemoved(r) || !this.state.members.has(to)) return;
      this.removalHint();
    }, () => undefined);
  }

  /**
   * Another member says our log removed us (a meta.removed notice, a lease answer): we stop serving
   * at once (the lease: until the next renewal, if the claim was false), but drop our data and
   * rejoin only once f+1 members of our log confirm it (removalRound). One member's word made any
   * data member drop everything: one bad member could empty every other.
   */
  private removalHint(): void {
    if (this.lite || this.closed) return;
    this.lease.revoke();
    this.removalRounds.hint();
  }

  /**
   * Asks every other member of our log (`meta.lease`, as askWhetherRemoved: a member whose log
   * removed us answers `{ removed: true }`) and emits 'removed' when f+1 of them say so, n counting
   * this member. Resolves true when some said so but not enough yet (they apply the removal a
   * heartbeat apart): asked again soon.
   */
  private async removalRound(): Promise<boolean> {
    const me = this.host.memberId;
    if (this.closed) return false;
    if (this.state.wasRemoved(me)) {
      this.emit('removed', 'removed'); // our own log says so
      return false;
    }
    const others = [...this.state.members.keys()].filter((id) => id !== me);
    const yes = new Tally(others, me);
    const v = this.state.table.version;
    await askAll(
      others,
      (id) => this.ask(id, 'meta.lease', { v }, RENEW_MS * 2),
      (id, r) => saysRemoved(r) && yes.add(id),
    );
    if (this.closed) return false;
    this.host.log('info', `${yes.count} of the ${others.length} other members of the log say it removed this member (${yes.needed} needed)`);
    if (!yes.reached()) return yes.count > 0;
    this.lease.revoke();
    this.emit('removed', 'removed');
    return false;
  }

  /** One extra renewal `ms` from now (the earliest asked for wins). */
  private renewAfter(ms: number): void {
    const at = now() + ms;
    if (this.afterTimer !== undefined && this.afterAt <= at) return;
    clearTimeout(this.afterTimer);
    this.afterAt = at;
    this.afterTimer = setTimeout(() => {
      this.afterTimer = undefined;
      this.renew();
    }, ms);
    this.afterTimer.unref();
  }

  /** One extra renewal CATCH_UP_MS from now (at most one waiting, CATCH_UP_TRIES per table version). */
  private renewSoon(): void {
    if (this.soonTimer !== undefined || this.closed) return;
    const v = this.state.table.version;
    if (v !== this.soonVersion) {
      this.soonVersion = v;
      this.soonTries = 0;
    }
    if (++this.soonTries > CATCH_UP_TRIES) return; // a holder that stays behind: the renewal period paces us
    this.soonTimer = setTimeout(() => {
      this.soonTimer = undefined;
      this.renew();
    }, CATCH_UP_MS);
    this.soonTimer.unref();
  }

  /** Reports to the leader that pending copy m of p holds the data (this member is p's primary at epoch e). */
  reportSynced(p: number, m: string, e: number): void {
    this.toLeader('meta.synced', { p, m, e }, (from) => this.onSynced({ p, m, e }, from));
  }

  /** Reports that copy m of p missed a replicated write at epoch e: it must be dropped before the write can be acknowledged. */
  reportDrop(p: number, m: string, e: number): void {
    this.toLeader('meta.drop', { p, m, e }, (from) => this.onDrop({ p, m, e }, from));
  }

  private toLeader(type: string, body: unknown, local: (from: string) => void): void {
    const leader = this.raft?.leader;
    if (leader === undefined || this.closed) return;
    if (leader === this.host.memberId) local(leader);
    else if (this.host.transport.isConnected(leader)) this.host.transport.notify(leader, type, body);
  }

  /**
   * Joins the cluster through the members at `urls`: asks each for the leader and asks the leader
   * to admit this member, until admitted (the leader's entry is committed) or `deadlineMs`.
   */
  async join(seedIds: () => string[], deadlineMs: number): Promise<void> {
    const t = this.host.transport;
    const end = Date.now() + deadlineMs;
    let leader: string | undefined;
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new TimeoutError('closed while joining');
      const ids = leader !== undefined ? [leader] : seedIds();
      for (const id of ids) {
        try {
          if (!t.isConnected(id)) {
            const url = t.urlOf(id);
            if (url !== undefined) await t.connect(url, 2000);
          }
          await t.request(id, 'meta.join', null, 5000);
          return;
        } catch (e) {
          const d = (e as { data?: { leader?: unknown; url?: unknown } }).data;
          if (e instanceof NotLeaderError && typeof d?.leader === 'string') {
            leader = d.leader;
            // a member url only (ws(s)://host:port): a seed's answer is peer data, and a joiner dialled
            // whatever it named, paths and credentials too (GET /latest/meta-data/... of any HTTP server)
            if (isMemberUrl(d.url) && !t.isConnected(leader)) await t.connect(d.url, 2000).catch(() => undefined);
            break;
          }
          if (e instanceof ProtocolError) throw e;
          leader = undefined;
        }
      }
      if (Date.now() > end) throw new TimeoutError(`not admitted to the cluster within ${deadlineMs} ms`);
      await new Promise((r) => setTimeout(r, Math.min(50 * 2 ** attempt, 500)));
    }
  }

  /**
   * Before a graceful leave, while this member still serves: waits until the leader gives it the
   * turn (onLeaveTurn), at most LEAVE_TURN_MS; no leader, or the last data member: at once.
   */
  awaitLeaveTurn(): Promise<void> {
    return this.askLeaderUntilGone('meta.leave?', (id) => this.onLeaveTurn(id));
  }

  /** Leaves gracefully: asks the leader to remove this member (its backups take over at once). */
  leave(): Promise<void> {
    // the leader itself leaving: removing ourselves works, the new config elects another leader
    return this.askLeaderUntilGone('meta.leave', (id) => this.onLeave(id));
  }

  /**
   * The leaver's side of awaitLeaveTurn and leave: asks whoever leads (`type`, or `local` when that
   * is this member) until the answer is not `{ wait: true }`, at most LEAVE_TURN_MS (best effort
   * after that: SWIM's leave gossip makes the leader remove us anyway). Returns at once with no
   * leader, or as the last data member (nobody to hand partitions to).
   */
  private async askLeaderUntilGone(type: string, local: (id: string) => unknown): Promise<void> {
    if (this.lite) return;
    const deadline = now() + LEAVE_TURN_MS;
    for (;;) {
      const leader = this.raft?.leader;
      if (leader === undefined || this.closed || this.state.members.size <= 1) return;
      try {
        const r = leader === this.host.memberId ? await local(leader) : await this.host.transport.request(leader, type, null, LEAVE_MS);
        if ((r as { wait?: unknown } | null)?.wait !== true) return;
      } catch {
        // the leader changed or cannot be reached: ask again (whoever leads then)
      }
      if (now() > deadline) return;
      await new Promise((r) => setTimeout(r, LEAVE_POLL_MS));
    }
  }

  /**
   * Before a graceful leave: a leader hands the lead to another live voter (TimeoutNow) and waits
   * until it no longer leads, at most `ms`, so that the new leader removes this member, from the
   * log and then from the Raft configuration. A leader that removed itself and stopped stayed in
   * the configuration (the others do not hear a removed member, nor does the leader remove
   * itself): of two voters the one left never won an election again, and every read and write
   * failed with GRID_ERR_PARTITION_UNAVAILABLE for good. Returns at once when this member does
   * not lead or is the only voter.
   */
  async handOverLead(ms: number): Promise<void> {
    const end = now() + ms;
    const me = this.host.memberId;
    for (;;) {
      const r = this.raft;
      if (r === undefined || this.closed || this.lite || r.role !== 'leader') return;
      const to = r.config.voters.find((v) => v !== me && this.state.members.has(v) && this.host.swimStatus(v) === 'alive');
      if (to === undefined) return;
      if (now() > end) {
        this.host.log('warn', `leaving while still the metadata leader: no voter took over within ${ms} ms`);
        return;
      }
      r.transferLeadership(to); // again each round: a transfer not done within an election timeout is abandoned
      this.flush();
      await new Promise((res) => setTimeout(res, LEAVE_POLL_MS / 4));
    }
  }

  /**
   * The CP group (this log) as `shardgrid status` shows it: leader, term, the index applied, and
   * counts of what the CP state machine holds (one pass over its primitives). Undefined on a
   * lite member, which applies no log.
   */
  cpStatus(): (CpCounts & { leader?: string; term: number; index: number }) | undefined {
    if (this.lite || this.raft === undefined) return undefined;
    return { leader: this.raft.leader, term: this.raft.term, index: this.state.index, ...this.state.cp.summary() };
  }

  /** For status. */
  describe(): { leader: string | undefined; term: number; role: string; voters: readonly string[]; learners: readonly string[]; leaseMs: number; safe: number } {
    const r = this.raft;
    return {
      leader: r?.leader,
      term: r?.term ?? 0,
      role: r?.role ?? (this.lite ? 'lite' : 'none'),
      voters: r?.config.voters ?? [],
      learners: r?.config.learners ?? [],
      leaseMs: Math.round(this.lease.remaining()),
      safe: this.lease.safe,
    };
  }
}


/** A seed for the core's election-timeout randomness, from the member id. */
function seedOf(id: string): number {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** A `meta.lease` answer saying the answering member's log removed the asker. */
function saysRemoved(r: unknown): boolean {
  return (r as { removed?: unknown } | null)?.removed === true;
}
