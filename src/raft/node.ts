/**
 * RaftNode: the Raft algorithm as a pure, deterministic state machine, after etcd-io/raft's
 * design (written from scratch here). The application feeds it inputs — `tick()` (logical time),
 * `step(message)`, `propose`, `proposeConfChange`, `compact`, `transferLeadership` — and after
 * each input calls `ready()`, does what it says in order (persist hard state, persist the
 * snapshot, persist entries, send messages, apply committed entries) and calls `advance()`.
 * The node does no I/O, reads no clock and draws randomness only from its seed, so the same seed
 * and inputs always give the same outputs; that is what makes the simulation in sim.ts possible.
 *
 * Features: randomized election timeouts; PreVote (thesis §9.6); CheckQuorum and leader
 * stickiness (§6.2, §4.2.3); log replication with conflict hints; commit by counting only in the
 * current term (§5.4.2); log compaction and snapshot install (§5); learners; single-server
 * membership changes that take effect on append (§4.1), with the leader's first-commit rule that
 * fixes the bug Ongaro reported in 2015; a removed leader steps down once its removal commits;
 * leadership transfer (TimeoutNow, §3.10); linearizable reads by ReadIndex (§6.4).
 */
import { RaftLog } from './log.js';
import { Rand, hashString, mixSeed } from './rand.js';
import {
  LIMITS, RaftConfChangePendingError, RaftError, RaftInvalidArgumentError, RaftNotLeaderError, RaftReadBusyError, RaftTransferInProgressError,
  isConfig,
} from './types.js';
import type {
  AppendMsg, AppendRespMsg, Config, ConfChange, Entry, HardState, HeartbeatMsg, NodeId, RaftMessage, Snapshot, SnapshotMsg,
} from './types.js';

export type Role = 'follower' | 'precandidate' | 'candidate' | 'leader';

/**
 * Test-only switches that each break one rule of Raft on purpose. They exist so the simulation's
 * checkers can be shown to catch a known-bad node (negative controls). Never set them otherwise.
 */
export interface UnsafeOptions {
  /** grant (pre)votes without the §5.4.1 "candidate's log is at least as up to date" check */
  skipLogUpToDateCheck?: boolean;
  /** let a leader commit entries of earlier terms by counting replicas (the Figure 8 bug) */
  commitPriorTermByCount?: boolean;
  /** grant a vote even after voting for someone else in the same term */
  grantMultipleVotes?: boolean;
  /** answer a read at once at the leader's commit index, without the heartbeat round (stale reads from a deposed leader) */
  readWithoutQuorum?: boolean;
  /** answer reads before the leader committed an entry of its term (its commit index may lag what its predecessor committed) */
  readBeforeTermCommit?: boolean;
  /** grant (pre)votes while still hearing from a live leader (no leader stickiness) */
  ignoreStickiness?: boolean;
  /** a leader that steps down may vote at once (no stickiness for its own leadership) */
  voteRightAfterLeading?: boolean;
  /** a candidate leaves its own vote out of `electionQuiet` (its own silence is part of the bound: the lease bound breaks) */
  quietOmitsSelf?: boolean;
}

/** A read confirmed by ReadIndex: serve request `rid` once this node applied `index`. */
export interface ReadState {
  readonly rid: string;
  readonly index: number;
}

export interface RaftNodeOptions {
  id: NodeId;
  /** bootstrap configuration, used only when the restored state is empty; [] for a node that joins later */
  voters?: readonly NodeId[];
  learners?: readonly NodeId[];
  /** ticks without a leader before campaigning; the actual timeout is drawn from [electionTicks, 2*electionTicks) */
  electionTicks?: number;
  /** ticks between a leader's heartbeats; less than electionTicks */
  heartbeatTicks?: number;
  seed?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  /** most entries in one append message (validateMessage accepts up to LIMITS.maxEntries) */
  maxEntriesPerAppend?: number;
  /**
   * Leader, when its commit index moved: whether to tell follower `to` at once that entries
   * (from, upTo] are committed (a heartbeat now), or let it learn that from the next append or
   * heartbeat tick (at most `heartbeatTicks` later). Default: always at once. Only when a follower
   * learns of a commit changes; what is committed, and when, does not (safety never depends on it).
   */
  commitNotice?: (to: NodeId, from: number, upTo: number) => boolean;
  unsafe?: UnsafeOptions;
}

/** What a restart reloads from stable storage. */
export interface PersistentState {
  term: number;
  vote?: NodeId;
  commit?: number;
  /** entries after the snapshot (or from index 1), consecutive */
  entries?: readonly Entry[];
  snapshot?: Snapshot;
}

/** Everything the application must do, in this order, before calling advance(). */
export interface Ready {
  /** persist when present (changed since the last ready) */
  hardState: HardState | undefined;
  /** persist it, replace the state machine by its data, and drop every stored entry */
  snapshot: Snapshot | undefined;
  /** persist: first delete stored entries at index ≥ entries[0].index, then append these */
  entries: Entry[];
  /** send only after the above is durable */
  messages: RaftMessage[];
  /** apply in order (conf entries too: the node has already switched configs when it appended them) */
  committed: Entry[];
  /** reads confirmed (readIndex): serve each once `committed` above is applied and the applied index reaches its index */
  readStates: ReadState[];
}

/** A read waiting for the leader's heartbeat round; `from` is the node that asked (this node or a follower). */
interface PendingRead {
  rid: string;
  from: NodeId;
  index: number;
  /** the round (readSeq) whose acknowledgement by a majority confirms it */
  seq: number;
}

interface Progress {
  /** highest index known to be replicated on the peer */
  match: number;
  /** next index to send (optimistically advanced as appends go out) */
  next: number;
  /** heard from since the last CheckQuorum round */
  recentActive: boolean;
  /** highest `ctx` (leader tick at send time) the peer acknowledged; -1 before any */
  lastAck: number;
  /** highest ReadIndex round (`read` of a heartbeat) the peer echoed in this term */
  readAck: number;
  /** index of a snapshot in flight to the peer, 0 when none */
  pendingSnapshot: number;
  /** highest commit index sent to the peer in a heartbeat */
  commitSent: number;
  snapshotSentAt: number;
}

const DEFAULTS = Object.freeze({
  electionTicks: 10,
  heartbeatTicks: 1,
  seed: 1,
  preVote: true,
  checkQuorum: true,
  maxEntriesPerAppend: 64,
});

const EMPTY_CONFIG: Config = Object.freeze({ voters: Object.freeze([]), learners: Object.freeze([]) });
const CHANGE_KINDS: ReadonlySet<string> = new Set(['addVoter', 'addLearner', 'remove', 'promote']);

function checkInt(name: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new RaftInvalidArgumentError(`options.${name} must be an integer from ${min} to ${max}`);
  }
  return v;
}

export class RaftNode {
  readonly id: NodeId;
  private readonly electionTicks: number;
  private readonly heartbeatTicks: number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly maxEntries: number;
  private readonly unsafe: UnsafeOptions;
  private readonly rand: Rand;

  private _term: number;
  private vote: NodeId | undefined;
  private _role: Role = 'follower';
  private _leader: NodeId | undefined = undefined;
  private readonly log: RaftLog;
  private _config: Config;
  /** index of the entry (or snapshot) that set the current config */
  private confIndex: number;

  /** logical clock: ticks since construction; stamped into leader messages as `ctx` */
  private now = 0;
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedTimeout = 0;
  private votes = new Map<NodeId, boolean>();
  private progress = new Map<NodeId, Progress>();
  /** leader: index of the empty entry that opened its term */
  private termStartIndex = 0;
  private transferee: NodeId | undefined = undefined;
  /** Having led until it stepped down, this node votes for nobody before this tick (handleVoteRequest). */
  private ledUntil = -1;
  /** The kind of this node's latest campaign (what `wonByTransfer` reports once it leads). */
  private campaignKind: 'pre' | 'real' | 'transfer' = 'real';
  /**
   * The tick at which this node last heard from a leader (an append, heartbeat or snapshot it
   * accepted), or last led itself. Starts at construction: a node restarted with its persisted
   * state may have answered a leader before, so "just heard" is the safe assumption.
   */
  private heardAt = 0;
  /** candidate: the smallest `quiet` of the votes granted in this campaign (its own included) */
  private campaignQuiet = Infinity;
  /** leader: `campaignQuiet` of the campaign that won (0 for a transfer) */
  private wonQuiet = 0;

  /** ReadIndex (thesis §6.4): rounds sent (never reset, so an old echo cannot count for a new read) */
  private readSeq = 0;
  /** a round must go out with the next ready() (reads arrived since the last one) */
  private readRoundDue = false;
  /**
   * leader: the first index appended since the last ready(), or 0. Entries proposed between two
   * ready() calls go to each caught-up peer in one append message (sent from ready()), not one
   * message per entry: proposals that arrive together (one frame of 64 requests) cost one append
   * round, not 64.
   */
  private appendFrom = 0;
  /** leader: the commit index moved since the last ready() */
  private commitDue = false;
  /** leader: reads waiting for a majority to echo their round, in round order */
  private reads: PendingRead[] = [];
  /** leader: reads that arrived before it committed an entry of its term */
  private readsBeforeCommit: Array<{ rid: string; from: NodeId }> = [];
  private readStates: ReadState[] = [];

  private msgs: RaftMessage[] = [];
  private readonly commitNotice: ((to: NodeId, from: number, upTo: number) => boolean) | undefined;
  private persisted: HardState;
  private pending: { stableTo: number; appliedTo: number; hardState: HardState; snapshot: Snapshot | undefined } | undefined;

  constructor(options: RaftNodeOptions, state?: PersistentState) {
    if (typeof options !== 'object' || options === null) throw new RaftInvalidArgumentError('options must be an object');
    if (typeof options.id !== 'string' || options.id.length === 0 || options.id.length > LIMITS.maxIdLength) {
      throw new RaftInvalidArgumentError(`options.id must be a non-empty string of at most ${LIMITS.maxIdLength} characters`);
    }
    this.id = options.id;
    this.electionTicks = checkInt('electionTicks', options.electionTicks ?? DEFAULTS.electionTicks, 2, 1 << 20);
    this.heartbeatTicks = checkInt('heartbeatTicks', options.heartbeatTicks ?? DEFAULTS.heartbeatTicks, 1, this.electionTicks - 1);
    const seed = checkInt('seed', options.seed ?? DEFAULTS.seed, 0);
    this.maxEntries = checkInt('maxEntriesPerAppend', options.maxEntriesPerAppend ?? DEFAULTS.maxEntriesPerAppend, 1, LIMITS.maxEntries);
    this.preVote = options.preVote ?? DEFAULTS.preVote;
    this.checkQuorum = options.checkQuorum ?? DEFAULTS.checkQuorum;
    this.unsafe = { ...(options.unsafe ?? {}) };
    this.commitNotice = options.commitNotice;
    // fold the id in so that nodes given the same seed still draw different timeouts
    this.rand = new Rand(mixSeed(seed % 0x100000000, hashString(this.id)));

    const boot: Config = { voters: [...(options.voters ?? [])], learners: [...(options.learners ?? [])] };
    if (!isConfig(boot)) throw new RaftInvalidArgumentError('options.voters and options.learners must be disjoint lists of distinct valid ids');

    const st = state ?? { term: 0 };
    const term = checkInt('state.term', st.term, 0);
    if (st.vote !== undefined && typeof st.vote !== 'string') throw new RaftInvalidArgumentError('state.vote must be a string');
    const entries = [...(st.entries ?? [])];
    const snap: Snapshot = st.snapshot ?? { index: 0, term: 0, config: EMPTY_CONFIG, data: new Uint8Array(0) };
    let prevTerm = snap.term;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      if (e.index !== snap.index + 1 + i || e.term < prevTerm || e.term > term) {
        throw new RaftInvalidArgumentError('state.entries must be consecutive after the snapshot, with non-decreasing terms not above state.term');
      }
      prevTerm = e.term;
    }
    const commit = checkInt('state.commit', st.commit ?? snap.index, snap.index, snap.index + entries.length);

    const fresh = term === 0 && entries.length === 0 && st.snapshot === undefined;
    if (fresh && boot.voters.length > 0) {
      // Bootstrap: every founding member writes the same first entry, so it is committed by
      // construction; members added later receive it (or a snapshot covering it) from a leader.
      this._term = 1;
      this.vote = undefined;
      this.log = new RaftLog(snap, [{ index: 1, term: 1, type: 'conf', config: boot }], 1);
      this.log.stableIndex = 0;
    } else {
      this._term = term;
      this.vote = st.vote;
      this.log = new RaftLog(snap, entries, commit);
    }
    this.persisted = { term, vote: st.vote, commit };
    const c = this.log.configAt(this.log.lastIndex);
    this._config = c.config;
    this.confIndex = c.index;
    this.resetTimers();
  }

  // ------------------------------------------------------------------ read-only state

  get term(): number { return this._term; }
  get role(): Role { return this._role; }
  get leader(): NodeId | undefined { return this._leader; }
  get commitIndex(): number { return this.log.committed; }
  get appliedIndex(): number { return this.log.applied; }
  get lastIndex(): number { return this.log.lastIndex; }
  get lastTerm(): number { return this.log.lastTerm; }
  get firstIndex(): number { return this.log.firstIndex; }
  get config(): Config { return this._config; }
  get votedFor(): NodeId | undefined { return this.vote; }
  /** ticks since construction (the clock `quorumContactTick` is measured on) */
  get ticks(): number { return this.now; }
  /** the term of the entry at `index` (undefined when compacted or beyond the end) */
  termAt(index: number): number | undefined { return this.log.termAt(index); }
  /** the entry at `index` if still in the log (for tests and checkers) */
  entryAt(index: number): Entry | undefined { return this.log.entryAt(index); }
  get snapshotIndex(): number { return this.log.snapshot.index; }
  get transferTarget(): NodeId | undefined { return this.transferee; }
  /**
   * Leader only: whether this node won its term through a leadership transfer (TimeoutNow), whose
   * votes skip leader stickiness. Otherwise every voter that elected it had not heard from the
   * previous leader for at least an election timeout of its own ticks when it voted, which bounds
   * how recently that leader could still have believed in its lease (metadata lease.ts).
   */
  get wonByTransfer(): boolean { return this._role === 'leader' && this.campaignKind === 'transfer'; }

  /**
   * Leader only: the smallest number of its own ticks that any voter who granted this node its
   * term had gone without hearing from a leader when it voted (the node's own vote included);
   * 0 after a transfer, undefined when not leader. Every earlier leader's majority shares a voter
   * with this one's, that voter heard that leader's last acknowledged round no later than
   * `electionQuiet` of its ticks before the election, and ticks never run faster than real time:
   * so an earlier leader's last moment of sure leadership (a majority answered a round it sent less
   * than half an election timeout before) came at most electionTicks / 2 + 1 ticks after that.
   * The metadata layer's new-leader lease wait counts from there (metadata.ts `newLeaderCreditMs`).
   */
  get electionQuiet(): number | undefined { return this._role === 'leader' ? this.wonQuiet : undefined; }

  /** Ticks since this node last heard from a leader (0 while it leads). */
  private sinceHeard(): number { return this._role === 'leader' ? 0 : this.now - this.heardAt; }

  /**
   * Leader only: the latest tick T (on this node's `ticks` clock) such that a majority of voters
   * acknowledged a message this leader sent at tick ≥ T. Followers that heard from the leader
   * refuse votes for an election timeout (leader stickiness), so no other leader can be elected
   * before roughly T + electionTicks: the basis for time-bounded leases. Undefined when not
   * leader or before a majority answered.
   */
  quorumContactTick(): number | undefined {
    if (this._role !== 'leader') return undefined;
    const acks: number[] = [];
    for (const v of this._config.voters) acks.push(v === this.id ? this.now : (this.progress.get(v)?.lastAck ?? -1));
    if (acks.length === 0) return undefined;
    acks.sort((a, b) => b - a);
    const t = acks[quorum(acks.length) - 1];
    return t < 0 ? undefined : t;
  }

  // ------------------------------------------------------------------ inputs

  /** Advances logical time by one tick. */
  tick(): void {
    this.now++;
    if (this._role === 'leader') this.tickLeader();
    else this.tickElection();
  }

  /**
   * Proposes an application entry. Returns its index (it commits later, or never if leadership
   * is lost), or an error when this node cannot accept proposals now.
   */
  propose(data: Uint8Array): number | RaftError {
    if (!(data instanceof Uint8Array) || data.byteLength > LIMITS.maxEntryBytes) {
      throw new RaftInvalidArgumentError(`propose(data): data must be a Uint8Array of at most ${LIMITS.maxEntryBytes} bytes`);
    }
    const refused = this.refuseProposal();
    if (refused !== undefined) return refused;
    return this.appendEntry({ type: 'normal', data });
  }

  /**
   * Asks for a linearizable read (ReadIndex, thesis §6.4). `rid` names the request (an id string:
   * `[A-Za-z0-9._:@-]{1,128}`). A leader answers with the commit index it holds once (a) it has
   * committed an entry of its own term, so that index covers everything any earlier leader
   * committed, and (b) a majority of voters echoed a heartbeat round sent after the request
   * arrived, so no other leader had been elected then. The answer appears in `ready().readStates`
   * as `{ rid, index }`: serve the read once the applied index reaches `index`. A follower forwards
   * the request to its leader, whose answer comes back as a message. Nothing is retried: a read
   * lost with a leader change never appears, and the application retries after a timeout.
   */
  readIndex(rid: string): RaftError | undefined {
    if (typeof rid !== 'string' || rid.length === 0 || rid.length > LIMITS.maxIdLength || !/^[A-Za-z0-9._:@-]+$/.test(rid)) {
      throw new RaftInvalidArgumentError('readIndex(rid): rid must be 1-128 characters of [A-Za-z0-9._:@-]');
    }
    if (this._role === 'leader') return this.leaderRead(rid, this.id) ? undefined : new RaftReadBusyError();
    if (this._leader === undefined || this._role !== 'follower') return new RaftNotLeaderError(this._leader);
    this.send({ type: 'readIndex', from: this.id, to: this._leader, term: this._term, rid });
    return undefined;
  }

  /**
   * Proposes one single-server membership change. Refused while an earlier change is not
   * committed, and until the leader has committed the first entry of its term (without that
   * rule, single-server changes across leader changes can elect two leaders: Ongaro, raft-dev,
   * 2015). The new configuration takes effect on every node as soon as it appends the entry.
   */
  proposeConfChange(cc: ConfChange): number | RaftError {
    if (typeof cc !== 'object' || cc === null || !CHANGE_KINDS.has(cc.kind) || typeof cc.id !== 'string' || cc.id.length === 0 || cc.id.length > LIMITS.maxIdLength) {
      throw new RaftInvalidArgumentError('proposeConfChange(cc): cc must be { kind: addVoter|addLearner|remove|promote, id }');
    }
    const refused = this.refuseProposal();
    if (refused !== undefined) return refused;
    if (this.log.committed < this.termStartIndex) return new RaftConfChangePendingError('the leader has not yet committed an entry of its term');
    if (this.confIndex > this.log.committed) return new RaftConfChangePendingError(`the membership change at index ${this.confIndex} is not committed yet`);
    const { voters, learners } = this._config;
    const isVoter = voters.includes(cc.id);
    const isLearner = learners.includes(cc.id);
    let next: Config;
    switch (cc.kind) {
      case 'addVoter':
        if (isVoter || isLearner) return new RaftInvalidArgumentError(`${cc.id} is already a member (use promote for a learner)`);
        next = { voters: [...voters, cc.id], learners: [...learners] };
        break;
      case 'addLearner':
        if (isVoter || isLearner) return new RaftInvalidArgumentError(`${cc.id} is already a member`);
        next = { voters: [...voters], learners: [...learners, cc.id] };
        break;
      case 'promote':
        if (!isLearner) return new RaftInvalidArgumentError(`${cc.id} is not a learner`);
        next = { voters: [...voters, cc.id], learners: learners.filter((l) => l !== cc.id) };
        break;
      case 'remove':
        if (!isVoter && !isLearner) return new RaftInvalidArgumentError(`${cc.id} is not a member`);
        if (isVoter && voters.length === 1) return new RaftInvalidArgumentError('cannot remove the last voter');
        next = { voters: voters.filter((v) => v !== cc.id), learners: learners.filter((l) => l !== cc.id) };
        break;
    }
    return this.appendEntry({ type: 'conf', change: { kind: cc.kind, id: cc.id }, config: next });
  }

  /**
   * The application has a snapshot of its state machine up to `index` (≤ appliedIndex): drop the
   * log up to it. The application persists that snapshot itself (it made it) and drops the same
   * entries from its storage. Returns the snapshot metadata the application should store with
   * its data. An index at or below the current snapshot is a no-op.
   */
  compact(index: number, data: Uint8Array): Snapshot {
    if (!Number.isSafeInteger(index) || index < 0 || index > this.log.applied) {
      throw new RaftInvalidArgumentError(`compact(index): index must be an integer from 0 to appliedIndex (${this.log.applied})`);
    }
    if (!(data instanceof Uint8Array)) throw new RaftInvalidArgumentError('compact(index, data): data must be a Uint8Array');
    if (index <= this.log.snapshot.index) return this.log.snapshot;
    return this.log.compact(index, this.log.configAt(index).config, data);
  }

  /**
   * Leader only: hand leadership to voter `to` once its log is caught up (TimeoutNow). New
   * proposals are refused until the transfer completes or an election timeout passes.
   */
  transferLeadership(to: NodeId): RaftError | undefined {
    if (this._role !== 'leader') return new RaftNotLeaderError(this._leader);
    if (to === this.id) return undefined;
    if (!this._config.voters.includes(to)) return new RaftInvalidArgumentError(`${to} is not a voter`);
    if (this.transferee === to) return undefined;
    this.transferee = to;
    this.electionElapsed = 0; // the transfer is abandoned after one election timeout
    const pr = this.progress.get(to) as Progress;
    if (pr.match === this.log.lastIndex) this.send({ type: 'timeoutNow', from: this.id, to, term: this._term });
    else this.sendAppend(to, pr);
    return undefined;
  }

  /**
   * Feeds one message (already checked by validateMessage when it came off the wire). Messages
   * addressed to another node are ignored, as are responses from nodes outside the configuration.
   */
  step(m: RaftMessage): void {
    if (m.to !== this.id || m.from === this.id) return;
    if (m.term > this._term) {
      if (m.type === 'preVote' || m.type === 'vote') {
        // Leader stickiness: while we heard from a live leader within the election timeout, a
        // higher-term (pre)vote is ignored outright; we neither grant it nor adopt its term. A
        // vote sent on a leader's TimeoutNow request is the exception.
        const inLease = this.checkQuorum && this._leader !== undefined && this.electionElapsed < this.electionTicks && this.unsafe.ignoreStickiness !== true;
        if (inLease && !(m.type === 'vote' && m.transfer)) return;
      }
      if (m.type === 'preVote' || (m.type === 'preVoteResp' && !m.reject)) {
        // pre-votes never change anyone's term: that is the point of PreVote
      } else {
        const fromLeader = m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot';
        this.becomeFollower(m.term, fromLeader ? m.from : undefined);
      }
    } else if (m.term < this._term) {
      if ((this.checkQuorum || this.preVote) && (m.type === 'append' || m.type === 'heartbeat')) {
        // A stale leader (e.g. one cut off while we moved on) learns our term and steps down.
        // Without this, with PreVote on, a node whose term ran ahead could never rejoin.
        this.send({ type: 'appendResp', from: this.id, to: m.from, term: this._term, index: 0, reject: true, hintIndex: 0, hintTerm: 0, ctx: 0 });
      } else if (m.type === 'preVote') {
        this.send({ type: 'preVoteResp', from: this.id, to: m.from, term: this._term, reject: true });
      }
      return;
    }

    if (m.type === 'preVote' || m.type === 'vote') { this.handleVoteRequest(m); return; }

    switch (this._role) {
      case 'leader':
        this.stepLeader(m);
        break;
      case 'precandidate':
      case 'candidate':
        if (m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot') {
          // a leader exists at our term
          this.becomeFollower(m.term, m.from);
          this.stepFollower(m);
        } else if ((m.type === 'preVoteResp' && this._role === 'precandidate') || (m.type === 'voteResp' && this._role === 'candidate')) {
          this.handleVoteResponse(m.from, m.term, m.reject, m.type === 'voteResp' ? m.quiet : 0);
        }
        break;
      case 'follower':
        this.stepFollower(m);
        break;
    }
  }

  // ------------------------------------------------------------------ ready / advance

  hasReady(): boolean {
    const hs = this.hardState();
    return this.msgs.length > 0 || this.readStates.length > 0 || this.readRoundDue || this.appendFrom !== 0 || this.commitDue || this.log.unstableSnapshot !== undefined || this.log.stableIndex < this.log.lastIndex ||
      this.log.committed > this.log.applied || !sameHardState(hs, this.persisted);
  }

  /** What to persist, send and apply now; acknowledge with advance() before the next input. */
  ready(): Ready {
    const hs = this.hardState();
    const snapshot = this.log.unstableSnapshot;
    const entries = this.log.stableIndex < this.log.lastIndex ? this.log.slice(this.log.stableIndex + 1, this.log.lastIndex, Infinity) : [];
    const from = Math.max(this.log.applied, this.log.snapshot.index) + 1;
    const committed = this.log.committed >= from ? this.log.slice(from, this.log.committed, Infinity) : [];
    // one heartbeat round for every read that arrived since the last ready(): rounds cost
    // messages per flush of the application, not per read
    if (this.appendFrom !== 0 && this._role === 'leader') this.sendNewEntries();
    this.appendFrom = 0;
    if (this.commitDue && this._role === 'leader') this.sendCommit();
    this.commitDue = false;
    if (this.readRoundDue && this._role === 'leader') this.sendReadRound();
    this.readRoundDue = false;
    const messages = this.msgs;
    this.msgs = [];
    const readStates = this.readStates;
    this.readStates = [];
    this.pending = { stableTo: this.log.lastIndex, appliedTo: Math.max(this.log.committed, this.log.applied), hardState: hs, snapshot };
    return { hardState: sameHardState(hs, this.persisted) ? undefined : hs, snapshot, entries, messages, committed, readStates };
  }

  /** The application did everything the last ready() asked. */
  advance(): void {
    const p = this.pending;
    if (p === undefined) return;
    this.pending = undefined;
    this.persisted = p.hardState;
    if (p.snapshot !== undefined && this.log.unstableSnapshot === p.snapshot) this.log.unstableSnapshot = undefined;
    this.log.stableIndex = Math.min(p.stableTo, this.log.lastIndex);
    this.log.applied = Math.max(this.log.applied, p.appliedTo);
    // the leader counts its own log only once it is durable
    if (this._role === 'leader') this.maybeCommit();
  }

  // ------------------------------------------------------------------ roles

  private hardState(): HardState { return { term: this._term, vote: this.vote, commit: this.log.committed }; }

  private resetTimers(): void {
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedTimeout = this.electionTicks + this.rand.int(0, this.electionTicks);
  }

  private becomeFollower(term: number, leader: NodeId | undefined): void {
    if (this._role === 'leader') {
      this.ledUntil = this.now + this.electionTicks;
      this.heardAt = this.now;
    }
    if (term > this._term) {
      this._term = term;
      this.vote = undefined;
    }
    this._role = 'follower';
    this._leader = leader;
    this.votes.clear();
    this.progress.clear();
    this.dropReads();
    this.appendFrom = 0;
    this.commitDue = false;
    this.transferee = undefined;
    this.resetTimers();
  }

  private promotable(): boolean { return this._config.voters.includes(this.id); }

  /** `pre`: a PreVote round at term+1 without changing term; `transfer`: on a TimeoutNow. */
  private campaign(kind: 'pre' | 'real' | 'transfer'): void {
    if (this._role === 'leader') this.heardAt = this.now;
    this.campaignKind = kind;
    this.campaignQuiet = Infinity;
    this.resetTimers();
    this.votes.clear();
    this._leader = undefined;
    if (kind === 'pre') {
      this._role = 'precandidate';
    } else {
      this._role = 'candidate';
      this._term++;
      this.vote = this.id;
    }
    this.progress.clear();
    this.dropReads();
    this.appendFrom = 0;
    this.commitDue = false;
    this.transferee = undefined;
    this.handleVoteResponse(this.id, kind === 'pre' ? this._term + 1 : this._term, false, this.sinceHeard());
    if ((this._role as Role) === 'leader' || (this._role as Role) === 'follower') return; // a single voter wins at once
    const term = kind === 'pre' ? this._term + 1 : this._term;
    for (const v of this._config.voters) {
      if (v === this.id) continue;
      if (kind === 'pre') this.send({ type: 'preVote', from: this.id, to: v, term, lastIndex: this.log.lastIndex, lastTerm: this.log.lastTerm });
      else this.send({ type: 'vote', from: this.id, to: v, term, lastIndex: this.log.lastIndex, lastTerm: this.log.lastTerm, transfer: kind === 'transfer' });
    }
  }

  private handleVoteResponse(from: NodeId, term: number, reject: boolean, quiet: number): void {
    if (!this._config.voters.includes(from)) return; // a non-voter's answer does not count
    const pre = this._role === 'precandidate';
    // a granted pre-vote echoes term+1; a rejected one carries the voter's term (= ours here)
    if (!reject && term !== (pre ? this._term + 1 : this._term)) return;
    this.votes.set(from, !reject);
    if (!reject && !pre && quiet < this.campaignQuiet && !(from === this.id && this.unsafe.quietOmitsSelf === true)) this.campaignQuiet = quiet;
    let granted = 0;
    let rejected = 0;
    for (const v of this._config.voters) {
      const g = this.votes.get(v);
      if (g === true) granted++;
      else if (g === false) rejected++;
    }
    const q = quorum(this._config.voters.length);
    if (granted >= q) {
      if (pre) this.campaign('real');
      else this.becomeLeader();
    } else if (rejected > this._config.voters.length - q) {
      this.becomeFollower(this._term, undefined);
    }
  }

  private becomeLeader(): void {
    this.wonQuiet = this.campaignKind === 'transfer' || this.campaignQuiet === Infinity ? 0 : this.campaignQuiet;
    this._role = 'leader';
    this._leader = this.id;
    this.votes.clear();
    this.resetTimers();
    this.progress.clear();
    for (const id of [...this._config.voters, ...this._config.learners]) if (id !== this.id) this.progress.set(id, this.newProgress());
    this.termStartIndex = this.log.lastIndex + 1;
    this.appendFrom = 0;
    this.appendEntry({ type: 'normal' });
  }

  private newProgress(): Progress {
    return { match: 0, next: this.log.lastIndex + 1, recentActive: false, lastAck: -1, readAck: 0, pendingSnapshot: 0, snapshotSentAt: 0, commitSent: 0 };
  }

  private refuseProposal(): RaftError | undefined {
    if (this._role !== 'leader') return new RaftNotLeaderError(this._leader);
    if (this.transferee !== undefined) return new RaftTransferInProgressError(this.transferee);
    return undefined;
  }

  /** Leader: append one entry of the current term; the next ready() sends it to peers that are caught up. */
  private appendEntry(e: { type: 'normal' | 'conf'; data?: Uint8Array; change?: ConfChange; config?: Config }): number {
    const index = this.log.lastIndex + 1;
    const entry: Entry = e.type === 'normal'
      ? (e.data === undefined ? { index, term: this._term, type: 'normal' } : { index, term: this._term, type: 'normal', data: e.data })
      : { index, term: this._term, type: 'conf', change: e.change, config: e.config };
    this.log.push(entry);
    if (entry.type === 'conf') this.setConfig(entry.config as Config, index);
    if (this.appendFrom === 0) this.appendFrom = index;
    this.maybeCommit();
    return index;
  }

  /** Leader, from ready(): the entries appended since the last ready() to every peer that had all before them. */
  private sendNewEntries(): void {
    const from = this.appendFrom;
    this.appendFrom = 0;
    for (const [id, pr] of this.progress) {
      if (pr.pendingSnapshot === 0 && pr.next === from) this.sendAppend(id, pr);
    }
  }

  /** Switches to a new configuration (on append, truncation or snapshot). */
  private setConfig(config: Config, index: number): void {
    this._config = config;
    this.confIndex = index;
    if (this._role !== 'leader') return;
    const members = new Set([...config.voters, ...config.learners]);
    for (const id of members) if (id !== this.id && !this.progress.has(id)) this.progress.set(id, this.newProgress());
    for (const id of [...this.progress.keys()]) if (!members.has(id)) this.progress.delete(id);
    if (this.transferee !== undefined && !config.voters.includes(this.transferee)) this.transferee = undefined;
  }

  private refreshConfig(): void {
    const c = this.log.configAt(this.log.lastIndex);
    if (c.index !== this.confIndex || c.config !== this._config) this.setConfig(c.config, c.index);
  }

  // ------------------------------------------------------------------ timers

  private tickElection(): void {
    this.electionElapsed++;
    // A node outside its latest configuration still campaigns while that configuration is
    // uncommitted (thesis §4.2.2): it may be needed to commit it. Its own vote does not count.
    // Without this, a leader that removed itself and then lost its quorum can leave a cluster in
    // which the only voters of the new configuration lack it and nobody that has it campaigns.
    if (this.electionElapsed >= this.randomizedTimeout && (this.promotable() || this.confIndex > this.log.committed)) {
      this.campaign(this.preVote ? 'pre' : 'real');
    } else if (this.electionElapsed >= this.randomizedTimeout) {
      // a learner or removed node never campaigns; it forgets a leader it has not heard from
      this.resetTimers();
      this._leader = undefined;
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTicks) {
      this.electionElapsed = 0;
      if (this.checkQuorum && !this.quorumActive()) {
        this.becomeFollower(this._term, undefined);
        return;
      }
      this.transferee = undefined; // a transfer that did not finish within an election timeout is abandoned
    }
    if (this.heartbeatElapsed >= this.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      for (const [id, pr] of this.progress) this.sendHeartbeat(id, pr);
    }
  }

  /** CheckQuorum: did a majority of voters (counting ourselves if a voter) answer this round? Resets the round. */
  private quorumActive(): boolean {
    let active = 0;
    for (const v of this._config.voters) {
      if (v === this.id) active++;
      else if (this.progress.get(v)?.recentActive === true) active++;
    }
    for (const pr of this.progress.values()) pr.recentActive = false;
    return active >= quorum(this._config.voters.length);
  }

  // ------------------------------------------------------------------ leader side

  private sendHeartbeat(to: NodeId, pr: Progress): void {
    if (pr.pendingSnapshot !== 0) {
      if (this.now - pr.snapshotSentAt >= this.electionTicks) this.sendSnapshot(to, pr);
      else this.heartbeat(to, pr);
      return;
    }
    if (pr.match < this.log.lastIndex) {
      // retransmit from what the peer surely has: covers appends lost on the way
      pr.next = pr.match + 1;
      this.sendAppend(to, pr);
    } else {
      this.heartbeat(to, pr);
    }
  }

  /** A heartbeat to `to`: the commit index it may take (what it surely holds of ours), the read round. */
  private heartbeat(to: NodeId, pr: Progress): void {
    const commit = Math.min(pr.match, this.log.committed);
    if (commit > pr.commitSent) pr.commitSent = commit;
    this.send<HeartbeatMsg>({ type: 'heartbeat', from: this.id, to, term: this._term, commit, ctx: this.now, read: this.readSeq });
  }

  /**
   * Leader, from ready(), after the commit index moved: tells each peer holding entries it has not
   * been told are committed (etcd's bcastAppend on commit). Without it a follower learns of a commit
   * only from the next append or the heartbeat tick, and a CP command submitted through it (its own
   * or a lite member's) waits that long for its result. The `commitNotice` option may defer it per
   * follower (entries nobody waits for on that follower: a heartbeat and its reply less per round).
   */
  private sendCommit(): void {
    for (const [id, pr] of this.progress) {
      if (pr.pendingSnapshot !== 0) continue;
      const upTo = Math.min(pr.match, this.log.committed);
      if (upTo > pr.commitSent && (this.commitNotice === undefined || this.commitNotice(id, pr.commitSent, upTo))) this.heartbeat(id, pr);
    }
  }

  /**
   * Leader: tells `to` now of the commits it holds and was not told of (a heartbeat), e.g. after
   * `commitNotice` deferred them; nothing when there is none or this node does not lead.
   */
  sendCommitTo(to: NodeId): void {
    if (this._role !== 'leader') return;
    const pr = this.progress.get(to);
    if (pr !== undefined && pr.pendingSnapshot === 0 && Math.min(pr.match, this.log.committed) > pr.commitSent) this.heartbeat(to, pr);
  }

  private sendAppend(to: NodeId, pr: Progress): void {
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.termAt(prevIndex);
    if (prevTerm === undefined) {
      this.sendSnapshot(to, pr);
      return;
    }
    const entries = this.log.slice(pr.next, this.log.lastIndex, this.maxEntries);
    this.send<AppendMsg>({ type: 'append', from: this.id, to, term: this._term, prevIndex, prevTerm, entries, commit: this.log.committed, ctx: this.now });
    if (entries.length > 0) pr.next = entries[entries.length - 1].index + 1;
  }

  private sendSnapshot(to: NodeId, pr: Progress): void {
    const s = this.log.snapshot;
    pr.pendingSnapshot = s.index;
    pr.snapshotSentAt = this.now;
    pr.next = s.index + 1;
    this.send<SnapshotMsg>({ type: 'snapshot', from: this.id, to, term: this._term, snapshot: s, ctx: this.now });
  }

  // ------------------------------------------------------------------ ReadIndex (leader side)

  /** Queues a read from `from` (this node or a follower); false when too many wait. */
  private leaderRead(rid: string, from: NodeId): boolean {
    if (this.reads.length + this.readsBeforeCommit.length >= LIMITS.maxPendingReads) return false;
    if (this.log.committed < this.termStartIndex && !this.unsafe.readBeforeTermCommit) {
      // our commit index may still lag what the previous leader committed: wait for our first commit
      this.readsBeforeCommit.push({ rid, from });
      return true;
    }
    if (this.unsafe.readWithoutQuorum) {
      this.readDone(rid, from, this.log.committed);
      return true;
    }
    this.reads.push({ rid, from, index: this.log.committed, seq: this.readSeq + 1 });
    this.readRoundDue = true;
    this.confirmReads(); // a single voter is its own majority
    return true;
  }

  /** Sends a heartbeat round carrying a new `read` number to every voter (called from ready()). */
  private sendReadRound(): void {
    this.readRoundDue = false;
    this.readSeq++;
    for (const v of this._config.voters) {
      if (v === this.id) continue;
      const pr = this.progress.get(v);
      if (pr === undefined) continue;
      this.heartbeat(v, pr);
    }
  }

  /** Answers every waiting read whose round a majority of voters echoed. */
  private confirmReads(): void {
    if (this.reads.length === 0) return;
    const voters = this._config.voters;
    const acks: number[] = [];
    for (const v of voters) acks.push(v === this.id ? Infinity : (this.progress.get(v)?.readAck ?? 0));
    if (acks.length === 0) return;
    acks.sort((a, b) => b - a);
    const confirmed = acks[quorum(acks.length) - 1]; // the highest round a majority echoed
    let n = 0;
    while (n < this.reads.length && this.reads[n].seq <= confirmed) {
      const r = this.reads[n++];
      this.readDone(r.rid, r.from, r.index);
    }
    if (n > 0) this.reads = this.reads.slice(n);
  }

  private readDone(rid: string, from: NodeId, index: number): void {
    if (from === this.id) this.readStates.push({ rid, index });
    else this.send({ type: 'readIndexResp', from: this.id, to: from, term: this._term, rid, index });
  }

  /** Leadership ends: waiting reads are dropped (their askers time out and retry). */
  private dropReads(): void {
    this.reads = [];
    this.readsBeforeCommit = [];
    this.readRoundDue = false;
  }

  private stepLeader(m: RaftMessage): void {
    if (m.type === 'readIndex') {
      // a read forwarded by a member (a stranger's progress does not exist: ignored)
      if (this.progress.has(m.from)) this.leaderRead(m.rid, m.from);
      return;
    }
    if (m.type !== 'appendResp' && m.type !== 'heartbeatResp') return;
    const pr = this.progress.get(m.from);
    if (pr === undefined) return; // not (or no longer) a member
    pr.recentActive = true;
    if (m.ctx > pr.lastAck) pr.lastAck = m.ctx;
    if (m.type === 'heartbeatResp') {
      if (m.read > pr.readAck && m.read <= this.readSeq) {
        pr.readAck = m.read;
        this.confirmReads();
      }
      // entries appended since and not yet sent go out now; sent-but-unacknowledged ones are
      // retransmitted by the heartbeat tick
      if (pr.pendingSnapshot === 0 && pr.next <= this.log.lastIndex) this.sendAppend(m.from, pr);
      return;
    }
    this.handleAppendResp(m, pr);
  }

  private handleAppendResp(m: AppendRespMsg, pr: Progress): void {
    // An honest follower never acknowledges beyond our log (its entries came from us, and its
    // commit index from leaders whose committed entries we hold); ignore one that claims to.
    if (m.index > this.log.lastIndex) return;
    if (m.reject) {
      if (m.index <= pr.match) return; // stale: we already know it has more
      // Jump back to the largest index whose term is at most the follower's hint term: one
      // round trip per conflicting term instead of one per entry.
      let next = this.log.findConflictByTerm(m.hintIndex, m.hintTerm) + 1;
      next = Math.min(next, m.index); // strictly before the rejected prevIndex+1
      next = Math.max(next, pr.match + 1);
      pr.next = next;
      pr.pendingSnapshot = 0;
      this.sendAppend(m.from, pr);
      return;
    }
    if (m.index > pr.match) pr.match = m.index;
    if (pr.next <= pr.match) pr.next = pr.match + 1;
    if (pr.pendingSnapshot !== 0 && pr.match >= pr.pendingSnapshot) pr.pendingSnapshot = 0;
    this.maybeCommit();
    // a peer whose acknowledgement came after the commit it completes has not been told of it yet
    if (Math.min(pr.match, this.log.committed) > pr.commitSent) this.commitDue = true;
    if (this._role !== 'leader') return;
    if (pr.pendingSnapshot === 0 && pr.match < this.log.lastIndex && pr.next <= this.log.lastIndex) this.sendAppend(m.from, pr);
    if (this.transferee === m.from && pr.match === this.log.lastIndex) {
      this.send({ type: 'timeoutNow', from: this.id, to: m.from, term: this._term });
    }
  }

  /**
   * Commit the highest index a majority of voters has (the leader's own log counts once
   * durable), but only if it is of the current term (§5.4.2): an older entry commits with it.
   */
  private maybeCommit(): void {
    const voters = this._config.voters;
    if (voters.length === 0) return;
    const matches: number[] = [];
    for (const v of voters) matches.push(v === this.id ? this.log.stableIndex : (this.progress.get(v)?.match ?? 0));
    matches.sort((a, b) => b - a);
    const idx = matches[quorum(voters.length) - 1];
    if (idx <= this.log.committed) return;
    if (this.log.termAt(idx) !== this._term && !this.unsafe.commitPriorTermByCount) return;
    this.log.committed = idx;
    this.commitDue = true;
    if (this.readsBeforeCommit.length > 0 && idx >= this.termStartIndex) {
      const waiting = this.readsBeforeCommit;
      this.readsBeforeCommit = [];
      for (const r of waiting) this.leaderRead(r.rid, r.from);
    }
    if (!voters.includes(this.id) && this.confIndex <= idx) this.stepDownRemoved();
  }

  /**
   * Our removal committed: tell the others the new commit index, hand over to the most caught-up
   * voter (TimeoutNow, so they need not wait out an election timeout), and become a follower.
   */
  private stepDownRemoved(): void {
    let best: NodeId | undefined;
    let bestMatch = -1;
    for (const [id, pr] of this.progress) {
      this.heartbeat(id, pr);
      if (this._config.voters.includes(id) && pr.match > bestMatch) { best = id; bestMatch = pr.match; }
    }
    if (best !== undefined && bestMatch === this.log.lastIndex) this.send({ type: 'timeoutNow', from: this.id, to: best, term: this._term });
    this.becomeFollower(this._term, undefined);
  }

  // ------------------------------------------------------------------ follower side

  private handleVoteRequest(m: Extract<RaftMessage, { type: 'preVote' | 'vote' }>): void {
    const pre = m.type === 'preVote';
    const canVote = this.vote === m.from || (this.vote === undefined && this._leader === undefined) || (pre && m.term > this._term) ||
      (!pre && this.unsafe.grantMultipleVotes === true && this._role !== 'leader');
    const upToDate = this.unsafe.skipLogUpToDateCheck === true || this.log.isUpToDate(m.lastIndex, m.lastTerm);
    // Stickiness of a leader that just stepped down (it learnt a higher term from a reply): it
    // heard itself lead until then, so like its followers it votes for nobody for an election
    // timeout (a transfer it asked for excepted). Without this, a leader whose lease was fresh
    // voted for its successor at once (raft sim --leases, schedule seed 2279776454).
    const justLed = this.checkQuorum && this.now < this.ledUntil && this.vote !== m.from && !(m.type === 'vote' && m.transfer) &&
      this.unsafe.ignoreStickiness !== true && this.unsafe.voteRightAfterLeading !== true;
    if (canVote && upToDate && !justLed) {
      if (pre) this.send({ type: 'preVoteResp', from: this.id, to: m.from, term: m.term, reject: false });
      else {
        this.send({ type: 'voteResp', from: this.id, to: m.from, term: m.term, reject: false, quiet: this.sinceHeard() });
        this.vote = m.from;
        this.electionElapsed = 0;
      }
    } else if (pre) {
      this.send({ type: 'preVoteResp', from: this.id, to: m.from, term: this._term, reject: true });
    } else {
      this.send({ type: 'voteResp', from: this.id, to: m.from, term: this._term, reject: true, quiet: 0 });
    }
  }

  private stepFollower(m: RaftMessage): void {
    switch (m.type) {
      case 'append':
        this.electionElapsed = 0;
        this._leader = m.from;
        this.heardAt = this.now;
        this.handleAppend(m);
        break;
      case 'heartbeat':
        this.electionElapsed = 0;
        this._leader = m.from;
        this.heardAt = this.now;
        if (m.commit > this.log.committed) this.log.committed = Math.min(m.commit, this.log.lastIndex);
        this.send({ type: 'heartbeatResp', from: this.id, to: m.from, term: this._term, ctx: m.ctx, read: m.read });
        break;
      case 'snapshot':
        this.electionElapsed = 0;
        this._leader = m.from;
        this.heardAt = this.now;
        this.handleSnapshot(m);
        break;
      case 'timeoutNow':
        if (this.promotable()) this.campaign('transfer');
        break;
      case 'readIndexResp':
        // same term as ours (step() checked): from the one leader of this term
        if (m.from === this._leader) this.readStates.push({ rid: m.rid, index: m.index });
        break;
      default:
        break; // stray responses from an earlier role
    }
  }

  private reply(m: AppendMsg | SnapshotMsg, index: number, reject: boolean, hintIndex = 0, hintTerm = 0): void {
    this.send<AppendRespMsg>({ type: 'appendResp', from: this.id, to: m.from, term: this._term, index, reject, hintIndex, hintTerm, ctx: m.ctx });
  }

  private handleAppend(m: AppendMsg): void {
    const log = this.log;
    let prevIndex = m.prevIndex;
    let prevTerm = m.prevTerm;
    let entries = m.entries;
    if (prevIndex < log.committed) {
      // Everything up to our commit index matches any leader's log (and may be compacted here):
      // skip that part and append the rest after our commit index.
      const skip = log.committed - prevIndex;
      if (entries.length <= skip) {
        this.reply(m, log.committed, false);
        return;
      }
      entries = entries.slice(skip);
      prevIndex = log.committed;
      prevTerm = m.entries[skip - 1].term;
    }
    if (log.matchTerm(prevIndex, prevTerm)) {
      const written = log.appendMatching(entries);
      if (written !== undefined && (written <= this.confIndex || entries.some((e) => e.type === 'conf'))) this.refreshConfig();
      const lastNew = prevIndex + entries.length;
      const c = Math.min(m.commit, lastNew);
      if (c > log.committed) log.committed = c;
      this.reply(m, lastNew, false);
      return;
    }
    const hintIndex = log.findConflictByTerm(Math.min(prevIndex, log.lastIndex), prevTerm);
    this.reply(m, m.prevIndex, true, hintIndex, log.termAt(hintIndex) as number);
  }

  private handleSnapshot(m: SnapshotMsg): void {
    const s = m.snapshot;
    const log = this.log;
    if (s.index <= log.committed) {
      this.reply(m, log.committed, false);
      return;
    }
    if (log.matchTerm(s.index, s.term)) {
      // we already have the entry the snapshot ends at: just learn that it is committed
      log.committed = s.index;
      this.reply(m, s.index, false);
      return;
    }
    log.restore(s);
    this.setConfig(s.config, s.index);
    this.reply(m, s.index, false);
  }

  private send<M extends RaftMessage>(m: M): void { this.msgs.push(m); }
}

/** Votes needed among n voters. */
export function quorum(n: number): number { return (n >> 1) + 1; }

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
