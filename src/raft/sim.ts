/**
 * A deterministic simulated network for RaftNode, and the checkers that run on every schedule.
 *
 * One schedule: 3 or 5 founding voters plus 0–2 spare nodes, a seeded PRNG driving everything —
 * per-message drop, duplication and delay (hence reordering), partitions (any split, one-way
 * links too), crashes that lose whatever the node had not yet handed out through ready() and the
 * sim had not persisted, restarts from the persisted hard state + log + snapshot, compaction at
 * random points, random proposals, single-server membership changes and leadership transfers.
 * After the chaos phase the network heals and every node restarts: a leader must then commit a
 * fresh proposal within a bounded number of ticks (liveness after healing).
 *
 * Checkers (run continuously, a violation ends the schedule):
 * - election safety: at most one leader per term, over all time;
 * - log matching, on persisted logs: an (index, term) pair always names the same entry with the
 *   same previous term, which by induction makes the logs identical up to it;
 * - leader completeness: a new leader's log holds every entry committed so far;
 * - state-machine safety: every node applies one global sequence (commit indexes observed on any
 *   node, entries applied, and snapshots installed must all agree with it), consecutively;
 * - messages produced by the core pass validateMessage;
 * - linearizable reads (ReadIndex): clients ask random nodes (mostly leaders) for reads; a read
 *   is served when its node's applied index reaches the index the core answered, and must
 *   reflect every entry committed anywhere before the read was asked (so a read never returns
 *   state older than a write that completed before it started), and only state that is
 *   committed (checked by state-machine safety: served state is the node's applied prefix);
 * - liveness after healing.
 *
 * Pure like the core: no Node APIs, no clock, no Math.random; imports only src/raft.
 */
import { RaftNode } from './node.js';
import type { PersistentState, UnsafeOptions } from './node.js';
import { Rand, hashString, mixSeed } from './rand.js';
import { validateMessage } from './types.js';
import type { ConfChangeKind, Entry, HardState, NodeId, RaftMessage, Snapshot } from './types.js';

export type ViolationKind =
  | 'election-safety' | 'log-matching' | 'leader-completeness' | 'state-machine-safety' | 'invalid-message' | 'liveness' | 'stale-read' | 'lease' | 'exception';

export interface Violation {
  kind: ViolationKind;
  tick: number;
  message: string;
}

/**
 * A deliberate bug in the simulated application or network (negative controls for the checkers):
 * - forgetVote: the application persists term and commit but not the vote (double votes after a restart);
 * - keepStaleSuffix: when the node overwrites a conflicting suffix, the application writes the
 *   new entries in place but keeps stored entries beyond them (a classic storage bug);
 * - dropVoteResponses: every vote response is lost (no leader can ever be elected: liveness).
 */
export type SimMutation = 'forgetVote' | 'keepStaleSuffix' | 'dropVoteResponses';

export interface ScheduleOptions {
  seed: number;
  /** founding voters: 3 or 5 (default: drawn from the seed) */
  voters?: number;
  /** extra nodes that can be added as learners / voters (default: 0–2 from the seed) */
  spare?: number;
  /** ticks of chaos before healing (default 150) */
  chaosTicks?: number;
  /** ticks allowed after healing for a leader to commit a new proposal (default 400) */
  healTicks?: number;
  electionTicks?: number;
  /** unsafe switches applied to every node (negative controls) */
  unsafe?: UnsafeOptions;
  mutation?: SimMutation;
  /** fault intensity multiplier (1 = drawn normally; higher = nastier schedules) */
  intensity?: number;
  /**
   * clients ask for linearizable reads (default true). Reads draw from their own PRNG, but their
   * messages go through the network's: with reads off a schedule is exactly what it was before
   * ReadIndex existed (the seeds of the older negative controls were found that way)
   */
  reads?: boolean;
  /**
   * Leaders defer half of their commit notices (RaftNodeOptions.commitNotice, drawn from a PRNG of
   * its own so the schedule's other draws are unchanged): followers then learn commits from the
   * next append or heartbeat. Default false.
   */
  lazyCommit?: boolean;
  /**
   * Check the lease bound the metadata layer relies on (cluster/metadata/lease.ts): a leader
   * elected without a transfer is elected at least `electionQuiet - leaseSlackTicks` ticks after
   * the last tick at which any earlier leader still had a majority's answer to a heartbeat sent
   * less than half an election timeout before (its `quorumContactTick`). Crashed nodes do not
   * restart during the chaos (a restarted cluster member comes back with a new identity, never as
   * the voter it was), and the check stops at healing, when every node restarts.
   */
  leases?: boolean;
  /** the slack `leases` allows, in ticks (default: electionTicks / 2 + 1, what the metadata layer takes off) */
  leaseSlackTicks?: number;
}

export interface ScheduleStats {
  ticks: number;
  delivered: number;
  dropped: number;
  leaders: number;
  maxTerm: number;
  committed: number;
  crashes: number;
  snapshotsSent: number;
  compactions: number;
  confChanges: number;
  proposals: number;
  /** ticks from healing until a new proposal committed (-1 when liveness failed) */
  recoveryTicks: number;
  /** reads asked (readIndex accepted by a node) and reads served (answered and applied) */
  reads: number;
  readsServed: number;
  /** `leases`: the smallest gap seen between an earlier leader's last valid lease tick and a new leader's election (-1: none) */
  minLeaseGap: number;
  /** `leases`: the smallest margin (gap - the bound the new leader claimed) of the elections that kept the bound (-1: none) */
  minLeaseMargin: number;
  /** `leases`: the largest bound a new leader claimed (electionQuiet - leaseSlackTicks), in ticks */
  maxLeaseBound: number;
}

export interface ScheduleResult {
  seed: number;
  voters: number;
  spare: number;
  violations: Violation[];
  stats: ScheduleStats;
}

interface Store {
  hs: HardState;
  snapshot: Snapshot | undefined;
  entries: Entry[];
}

interface SimNode {
  id: NodeId;
  founding: boolean;
  node: RaftNode | undefined;
  store: Store;
  /** applied keys, index i at position i-1 (volatile: rebuilt from snapshot + log on restart) */
  sm: string[];
  restarts: number;
  /** last commit index observed on the live node */
  seenCommit: number;
  /** last term in which we saw it lead */
  seenLeaderTerm: number;
  /** last term in which we saw it lead with that term persisted (what election safety counts) */
  durableLeaderTerm: number;
  /** reads the core confirmed here, waiting for the applied index to reach theirs (volatile) */
  readsToServe: Array<{ rid: string; index: number }>;
}

class Violated extends Error {}

const u32le = (n: number): Uint8Array => new Uint8Array([n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255]);
const readU32 = (b: Uint8Array): number => (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;

/** A short name for an entry's identity and content, used by every checker. */
export function entryKey(e: Entry): string {
  if (e.type === 'conf') return e.change === undefined ? `${e.term}:boot` : `${e.term}:${e.change.kind}:${e.change.id}`;
  return e.data === undefined ? `${e.term}:-` : `${e.term}:p${readU32(e.data)}`;
}
const keyTerm = (k: string): number => Number(k.slice(0, k.indexOf(':')));

export class Simulation {
  readonly rand: Rand;
  /** `lazyCommit`'s draws (apart from the schedule's, which stay as they were without it) */
  private readonly lazyRand: Rand;
  readonly opts: Required<Omit<ScheduleOptions, 'unsafe' | 'mutation'>> & Pick<ScheduleOptions, 'unsafe' | 'mutation'>;
  readonly nodes: SimNode[] = [];
  readonly byId = new Map<NodeId, SimNode>();
  now = 0;
  violations: Violation[] = [];
  readonly stats: ScheduleStats = {
    ticks: 0, delivered: 0, dropped: 0, leaders: 0, maxTerm: 0, committed: 0, crashes: 0, snapshotsSent: 0, compactions: 0,
    confChanges: 0, proposals: 0, recoveryTicks: -1, reads: 0, readsServed: 0, minLeaseGap: -1, minLeaseMargin: -1, maxLeaseBound: 0,
  };

  // network
  private inflight: RaftMessage[][] = [];
  private blocked = new Set<string>();
  /** nodes cut off from everyone until a tick (leader flapping) */
  private isolatedUntil = new Map<NodeId, number>();
  private pFlap = 0;
  private drop = 0;
  private dup = 0;
  private maxDelay = 0;
  // fault rates per tick
  private pCrash = 0;
  private pRestart = 0;
  private pPartition = 0;
  private pHealPartition = 0;
  private pPropose = 0;
  private pConf = 0;
  private pCompact = 0;
  private pTransfer = 0;
  private pReadyNow = 0;
  /** reads: their own PRNG, so adding them left the fault draws of the other inputs alone */
  private readonly readRand: Rand;
  private pRead = 0;
  /** rid → the highest index committed anywhere when the read was asked */
  private readonly readsAsked = new Map<string, number>();
  private nextRead = 1;
  private maxEntries = 64;
  private healed = false;

  // checker state
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** term → the node that led it with the term persisted: at most one (election safety) */
  private readonly durableLeaderOfTerm = new Map<number, NodeId>();
  /** the global committed sequence: index i at position i */
  private readonly committed: (string | undefined)[] = [undefined];
  private committedMax = 0;
  /** per index, the term it was committed in (see checkCommitted) */
  private readonly commitTerm: Array<number | undefined> = [];
  /** `${index}:${term}` → `${key}|${prevTerm}` of every entry ever persisted anywhere */
  private readonly persisted = new Map<string, string>();
  /** snapshot data carries a serial number; the keys it covers live here */
  private readonly snapshotKeys: string[][] = [];
  private nextProposal = 1;
  private sent = 0;
  private readonly flapStart = new Map<NodeId, number>();
  /** `leases`: per node, the term and the last sim tick at which it led with a fresh majority contact */
  private readonly leaseValid = new Map<NodeId, { term: number; tick: number }>();

  constructor(options: ScheduleOptions) {
    this.rand = new Rand(options.seed);
    this.lazyRand = new Rand(mixSeed(options.seed, 0x1a2c0));
    const r = this.rand;
    const intensity = options.intensity ?? 1;
    this.opts = {
      seed: options.seed,
      voters: options.voters ?? (r.chance(0.5) ? 3 : 5),
      spare: options.spare ?? r.int(0, 3),
      chaosTicks: options.chaosTicks ?? 150,
      healTicks: options.healTicks ?? 400,
      electionTicks: options.electionTicks ?? 10,
      intensity,
      reads: options.reads ?? true,
      lazyCommit: options.lazyCommit ?? false,
      leases: options.leases ?? false,
      leaseSlackTicks: options.leaseSlackTicks ?? Math.floor((options.electionTicks ?? 10) / 2) + 1,
      unsafe: options.unsafe,
      mutation: options.mutation,
    };
    // each schedule draws its own fault profile, from calm to hostile
    const f = (x: number) => Math.min(x * intensity, 0.9);
    this.drop = f(r.pick([0, 0.02, 0.1, 0.3]));
    this.dup = f(r.pick([0, 0.02, 0.1]));
    this.maxDelay = r.pick([0, 1, 3, 6]);
    this.pCrash = f(r.pick([0, 0.005, 0.02, 0.05]));
    this.pRestart = r.pick([0.05, 0.2, 0.5]);
    if (options.leases === true) this.pRestart = 0;
    this.pPartition = f(r.pick([0, 0.01, 0.03]));
    this.pFlap = f(r.pick([0, 0.1, 0.3]));
    this.pHealPartition = r.pick([0.02, 0.1]);
    this.pPropose = r.pick([0.1, 0.3, 0.8]);
    this.pConf = r.pick([0, 0.02, 0.08]);
    this.pCompact = r.pick([0, 0.02, 0.1]);
    this.pTransfer = r.pick([0, 0, 0.01]);
    this.pReadyNow = r.pick([0.3, 0.7, 1]);
    // small batches make a follower's log lag in more shapes (Figure 8 needs an old-term entry
    // replicated without the new leader's entry)
    this.maxEntries = r.pick([1, 2, 64]);
    this.readRand = new Rand(mixSeed(options.seed, 0x5ead));
    this.pRead = this.readRand.pick([0.1, 0.3, 0.8]);
    for (let i = 0; i <= this.maxDelay + 1; i++) this.inflight.push([]);

    const founders: NodeId[] = [];
    for (let i = 1; i <= this.opts.voters; i++) founders.push(`n${i}`);
    for (let i = 1; i <= this.opts.voters + this.opts.spare; i++) {
      const id = `n${i}`;
      const sn: SimNode = {
        id, founding: i <= this.opts.voters, node: undefined,
        store: { hs: { term: 0, vote: undefined, commit: 0 }, snapshot: undefined, entries: [] },
        sm: [], restarts: 0, seenCommit: 0, seenLeaderTerm: 0, durableLeaderTerm: 0, readsToServe: [],
      };
      this.nodes.push(sn);
      this.byId.set(id, sn);
    }
    this.founders = founders;
    for (const sn of this.nodes) this.start(sn);
  }
  private readonly founders: NodeId[];

  // ------------------------------------------------------------------ run

  run(): ScheduleResult {
    try {
      for (let t = 0; t < this.opts.chaosTicks; t++) this.step(true);
      this.heal();
      this.awaitLiveness();
    } catch (err) {
      if (!(err instanceof Violated)) {
        this.violations.push({ kind: 'exception', tick: this.now, message: err instanceof Error ? `${err.name}: ${err.message}\n${err.stack}` : String(err) });
      }
    }
    this.stats.ticks = this.now;
    this.stats.committed = this.committedMax;
    return { seed: this.opts.seed, voters: this.opts.voters, spare: this.opts.spare, violations: this.violations, stats: this.stats };
  }

  /** One tick of simulated time: faults and client actions, deliveries, then every node ticks. */
  step(chaos: boolean): void {
    this.now++;
    const r = this.rand;
    if (chaos) this.injectFaults();
    this.clientActions(chaos);
    // deliver everything due now, in a shuffled order
    const slot = this.now % this.inflight.length;
    const due = this.inflight[slot];
    this.inflight[slot] = [];
    for (let i = due.length - 1; i > 0; i--) {
      const j = r.int(0, i + 1);
      const x = due[i]; due[i] = due[j]; due[j] = x;
    }
    for (const m of due) {
      const sn = this.byId.get(m.to) as SimNode;
      // a partition also loses what was already on the wire when it began
      if (sn.node === undefined || this.cut(m)) { this.stats.dropped++; continue; }
      this.stats.delivered++;
      sn.node.step(m);
      this.afterInput(sn);
    }
    for (const sn of this.nodes) {
      if (sn.node === undefined) continue;
      sn.node.tick();
      this.afterInput(sn);
    }
    // readies not handled right after their input: most now, some left for later (a crash in
    // between loses them, as a real process would)
    for (const sn of this.nodes) {
      if (sn.node !== undefined && sn.node.hasReady() && (!chaos || r.chance(0.8))) this.handleReady(sn);
    }
  }

  private injectFaults(): void {
    const r = this.rand;
    if (r.chance(this.pCrash)) {
      // half the crashes hit a leader: the moments around a leader change are where Raft's
      // rules matter (a nemesis that kills primaries, as Jepsen's do)
      const alive = this.nodes.filter((n) => n.node !== undefined);
      const leaders = alive.filter((n) => (n.node as RaftNode).role === 'leader');
      if (leaders.length > 0 && r.chance(0.5)) this.crash(r.pick(leaders));
      else if (alive.length > 0) this.crash(r.pick(alive));
    }
    for (const sn of this.nodes) if (sn.node === undefined && r.chance(this.pRestart)) this.start(sn);
    if (this.blocked.size > 0 && r.chance(this.pHealPartition)) this.blocked.clear();
    if (this.opts.leases && r.chance(this.pPartition)) {
      // `leases`: a partial partition, the one that tests stickiness: the leader loses its link
      // to one node, which campaigns while the rest still hear the leader
      const leaders = this.nodes.filter((n) => n.node?.role === 'leader');
      if (leaders.length > 0) {
        const l = r.pick(leaders);
        const other = r.pick(this.nodes.filter((n) => n !== l));
        this.blocked.add(`${l.id}>${other.id}`);
        this.blocked.add(`${other.id}>${l.id}`);
      }
    }
    if (r.chance(this.pPartition)) {
      // a random split; each cut link is two-way, or one-way with some probability
      // half of them cut a leader off from everyone else
      const side = new Map<NodeId, boolean>();
      const leaders = this.nodes.filter((n) => n.node?.role === 'leader');
      const isolated = leaders.length > 0 && r.chance(0.5) ? r.pick(leaders) : undefined;
      for (const sn of this.nodes) side.set(sn.id, isolated === undefined ? r.chance(0.5) : sn === isolated);
      const oneWay = r.chance(0.3);
      for (const a of this.nodes) {
        for (const b of this.nodes) {
          if (a === b || side.get(a.id) === side.get(b.id)) continue;
          if (!oneWay || side.get(a.id) === true) this.blocked.add(`${a.id}>${b.id}`);
        }
      }
    }
  }

  private clientActions(chaos: boolean): void {
    const r = this.rand;
    const alive = this.nodes.filter((n) => n.node !== undefined);
    if (alive.length === 0) return;
    const leaders = alive.filter((n) => (n.node as RaftNode).role === 'leader');
    if (r.chance(this.pPropose)) {
      // mostly to a leader; sometimes to anyone, to exercise refusals (which cost an Error each)
      const sn = leaders.length > 0 && r.chance(0.9) ? r.pick(leaders) : r.pick(alive);
      const res = (sn.node as RaftNode).propose(u32le(this.nextProposal++));
      if (typeof res === 'number') this.stats.proposals++;
      this.afterInput(sn);
    }
    const rr = this.readRand;
    if (this.opts.reads && rr.chance(this.pRead)) {
      // mostly to a node that believes it leads (a deposed leader in a partition is the case
      // ReadIndex exists for), else to anyone (followers forward)
      const sn = leaders.length > 0 && rr.chance(0.7) ? rr.pick(leaders) : rr.pick(alive);
      const rid = `r${this.nextRead++}`;
      // everything committed anywhere so far: a read asked now must reflect all of it
      let bound = this.committedMax;
      for (const n of alive) bound = Math.max(bound, (n.node as RaftNode).commitIndex);
      const res = (sn.node as RaftNode).readIndex(rid);
      if (res === undefined) {
        this.readsAsked.set(rid, bound);
        this.stats.reads++;
      }
      this.afterInput(sn);
    }
    if (!chaos) return;
    if (leaders.length > 0 && r.chance(this.pConf)) {
      const sn = r.pick(leaders);
      const node = sn.node as RaftNode;
      const { voters, learners } = node.config;
      const all = this.nodes.map((n) => n.id);
      const outside = all.filter((id) => !voters.includes(id) && !learners.includes(id));
      const options: { kind: ConfChangeKind; id: NodeId }[] = [];
      for (const id of outside) options.push({ kind: 'addLearner', id }, { kind: 'addVoter', id });
      for (const id of learners) options.push({ kind: 'promote', id }, { kind: 'remove', id });
      if (voters.length > 1) for (const id of voters) options.push({ kind: 'remove', id });
      if (options.length > 0) {
        const res = node.proposeConfChange(r.pick(options));
        if (typeof res === 'number') this.stats.confChanges++;
        this.afterInput(sn);
      }
    }
    if (leaders.length > 0 && r.chance(this.pTransfer)) {
      const sn = r.pick(leaders);
      const node = sn.node as RaftNode;
      node.transferLeadership(r.pick(node.config.voters));
      this.afterInput(sn);
    }
    if (r.chance(this.pCompact)) {
      const sn = r.pick(alive);
      const node = sn.node as RaftNode;
      if (node.appliedIndex > node.snapshotIndex) {
        const index = r.int(node.snapshotIndex + 1, node.appliedIndex + 1);
        this.compact(sn, index);
      }
    }
  }

  /** Network heals, faults stop, every crashed node restarts. */
  heal(): void {
    this.healed = true;
    this.blocked.clear();
    this.isolatedUntil.clear();
    this.flapStart.clear();
    this.pFlap = 0;
    this.drop = 0;
    this.dup = 0;
    this.maxDelay = Math.min(this.maxDelay, 1);
    for (const sn of this.nodes) {
      if (sn.node === undefined) this.start(sn);
      else if (sn.node.hasReady()) this.handleReady(sn);
    }
  }

  /** After healing: a leader must commit a fresh proposal within healTicks. */
  awaitLiveness(): void {
    const start = this.now;
    let probe: { id: NodeId; index: number; term: number } | undefined;
    while (this.now - start < this.opts.healTicks) {
      this.step(false);
      if (probe !== undefined) {
        const n = this.byId.get(probe.id)?.node;
        if (n !== undefined && n.commitIndex >= probe.index && n.termAt(probe.index) === probe.term) {
          this.stats.recoveryTicks = this.now - start;
          return;
        }
        if (n === undefined || n.role !== 'leader' || n.term !== probe.term) probe = undefined;
      }
      if (probe === undefined) {
        for (const sn of this.nodes) {
          const n = sn.node as RaftNode;
          if (n.role !== 'leader') continue;
          const res = n.propose(u32le(this.nextProposal++));
          if (typeof res === 'number') probe = { id: sn.id, index: res, term: n.term };
          this.afterInput(sn);
          break;
        }
      }
    }
    const roles = this.nodes.map((sn) => `${sn.id}:${sn.node?.role}@${sn.node?.term} cfg=${sn.node?.config.voters.join(',')}/${sn.node?.config.learners.join(',')} last=${sn.node?.lastIndex} commit=${sn.node?.commitIndex}`).join('; ');
    this.fail('liveness', `no proposal committed within ${this.opts.healTicks} ticks of healing (${roles})`);
  }

  // ------------------------------------------------------------------ node lifecycle

  private start(sn: SimNode): void {
    const st = sn.store;
    // log matching over the whole stored log, as a restart reads it back
    const base = st.snapshot?.index ?? 0;
    for (let k = 0; k < st.entries.length; k++) {
      this.checkPersisted(sn, st.entries[k], k === 0 ? (st.snapshot?.term ?? 0) : st.entries[k - 1].term);
      if (st.entries[k].index !== base + 1 + k) this.fail('log-matching', `${sn.id} stored entry ${st.entries[k].index} at position ${base + 1 + k}`);
    }
    const state: PersistentState = { term: st.hs.term, vote: st.hs.vote, commit: st.hs.commit, entries: st.entries.slice(), snapshot: st.snapshot };
    sn.node = new RaftNode({
      id: sn.id,
      voters: sn.founding ? this.founders : [],
      electionTicks: this.opts.electionTicks,
      heartbeatTicks: 1,
      maxEntriesPerAppend: this.maxEntries,
      seed: mixSeed(mixSeed(this.opts.seed, hashString(sn.id)), sn.restarts),
      unsafe: this.opts.unsafe,
      commitNotice: this.opts.lazyCommit ? () => this.lazyRand.chance(0.5) : undefined,
    }, state);
    sn.restarts++;
    // the state machine is volatile: rebuild from the snapshot, then the node re-applies the log
    sn.sm = st.snapshot === undefined ? [] : this.snapshotKeys[readU32(st.snapshot.data)].slice();
    sn.seenCommit = sn.node.commitIndex;
    sn.seenLeaderTerm = 0;
    sn.durableLeaderTerm = 0;
    sn.readsToServe = [];
    this.afterInput(sn);
  }

  private crash(sn: SimNode): void {
    sn.node = undefined;
    sn.readsToServe = [];
    this.stats.crashes++;
  }

  private compact(sn: SimNode, index: number): void {
    const node = sn.node as RaftNode;
    const serial = this.snapshotKeys.length;
    this.snapshotKeys.push(sn.sm.slice(0, index));
    const snap = node.compact(index, u32le(serial));
    // the application persists the snapshot it made and drops the entries it covers
    const st = sn.store;
    const base = st.snapshot?.index ?? 0;
    st.entries = st.entries.slice(snap.index - base);
    st.snapshot = snap;
    this.stats.compactions++;
  }

  /** After any input: run the ready loop now (or later) and observe the node. */
  private afterInput(sn: SimNode): void {
    if (sn.node === undefined) return;
    if (!this.healed && !this.rand.chance(this.pReadyNow)) { this.observe(sn); return; }
    if (sn.node.hasReady()) this.handleReady(sn);
    else this.observe(sn);
  }

  /** The application's side of the ready loop: persist, send, apply, advance. */
  private handleReady(sn: SimNode): void {
    const node = sn.node as RaftNode;
    const rd = node.ready();
    const st = sn.store;
    const mutation = this.opts.mutation;
    if (rd.hardState !== undefined) {
      st.hs = mutation === 'forgetVote' ? { ...rd.hardState, vote: undefined } : rd.hardState;
    }
    if (rd.snapshot !== undefined) {
      st.snapshot = rd.snapshot;
      st.entries = [];
      const keys = this.snapshotKeys[readU32(rd.snapshot.data)];
      for (let i = 1; i <= keys.length; i++) this.checkCommitted(i, keys[i - 1], `${sn.id} installs a snapshot`, (sn.node as RaftNode).term);
      sn.sm = keys.slice();
    }
    if (rd.entries.length > 0) {
      const first = rd.entries[0].index;
      const base = st.snapshot?.index ?? 0;
      const tail = mutation === 'keepStaleSuffix' ? st.entries.slice(first - base - 1 + rd.entries.length) : [];
      st.entries.length = first - base - 1;
      for (const e of rd.entries) {
        const prev = e.index - 1 === base ? (st.snapshot?.term ?? 0) : st.entries[e.index - base - 2]?.term;
        this.checkPersisted(sn, e, prev);
        st.entries.push(e);
      }
      for (const e of tail) st.entries.push(e);
    }
    for (const m of rd.messages) this.send(m);
    for (const e of rd.committed) {
      if (e.index !== sn.sm.length + 1) this.fail('state-machine-safety', `${sn.id} applies index ${e.index} after ${sn.sm.length}`);
      const k = entryKey(e);
      this.checkCommitted(e.index, k, `${sn.id} applies`, node.term);
      sn.sm.push(k);
    }
    for (const rs of rd.readStates) sn.readsToServe.push(rs);
    if (sn.readsToServe.length > 0) this.serveReads(sn);
    node.advance();
    this.observe(sn);
  }

  /** Is the link of this message down (partition, or an isolated endpoint)? */
  private cut(m: RaftMessage): boolean {
    if (this.blocked.has(`${m.from}>${m.to}`)) return true;
    if (this.isolatedUntil.size === 0) return false;
    for (const id of [m.from, m.to]) {
      const until = this.isolatedUntil.get(id);
      if (until === undefined) continue;
      if (this.now >= until) { this.isolatedUntil.delete(id); this.flapStart.delete(id); continue; }
      if (this.now >= (this.flapStart.get(id) as number)) return true;
    }
    return false;
  }

  private send(m: RaftMessage): void {
    // every 8th message goes through the wire check (all of them would double the run time)
    if ((this.sent++ & 7) === 0 && validateMessage(m) === undefined) this.fail('invalid-message', `core produced a message validateMessage rejects: ${JSON.stringify(m)}`);
    if (m.type === 'snapshot') this.stats.snapshotsSent++;
    if (this.opts.mutation === 'dropVoteResponses' && m.type === 'voteResp') { this.stats.dropped++; return; }
    const r = this.rand;
    if (this.cut(m) || r.chance(this.drop)) { this.stats.dropped++; return; }
    const copies = r.chance(this.dup) ? 2 : 1;
    for (let c = 0; c < copies; c++) {
      const delay = 1 + r.int(0, this.maxDelay + 1);
      this.inflight[(this.now + delay) % this.inflight.length].push(m);
    }
  }

  /**
   * Serves the confirmed reads whose index this node applied. The state a read returns is the
   * node's applied prefix (sm); it must hold every entry committed anywhere before the read was
   * asked. (Its entries are committed ones: state-machine safety checks every applied entry.)
   */
  private serveReads(sn: SimNode): void {
    const keep: Array<{ rid: string; index: number }> = [];
    for (const rs of sn.readsToServe) {
      if (sn.sm.length < rs.index) { keep.push(rs); continue; }
      const bound = this.readsAsked.get(rs.rid);
      // a duplicated forward is answered twice: the application serves the first answer only
      if (bound === undefined) continue;
      this.readsAsked.delete(rs.rid);
      if (sn.sm.length < bound) {
        this.fail('stale-read', `${sn.id} served read ${rs.rid} at applied index ${sn.sm.length} (read index ${rs.index}), but index ${bound} was committed before the read was asked`);
      }
      this.stats.readsServed++;
    }
    sn.readsToServe = keep;
  }

  // ------------------------------------------------------------------ checkers

  private fail(kind: ViolationKind, message: string): never {
    this.violations.push({ kind, tick: this.now, message });
    throw new Violated(message);
  }

  /**
   * `term`: the observing node's term. The smallest term any node had when seen holding index
   * committed is the term it was committed in (the committing leader is seen first; nodes learn
   * of a commit only from its term or later): leader completeness is owed only to leaders of
   * later terms.
   */
  private checkCommitted(index: number, key: string, who: string, term: number): void {
    const ct = this.commitTerm[index];
    if (ct === undefined || term < ct) this.commitTerm[index] = term;
    const known = this.committed[index];
    if (known === undefined) {
      if (index > this.committedMax) {
        for (let i = this.committed.length; i < index; i++) this.committed.push(undefined);
        this.committedMax = index;
      }
      this.committed[index] = key;
    } else if (known !== key) {
      this.fail('state-machine-safety', `${who}: index ${index} committed as ${known} and as ${key}`);
    }
  }

  private checkPersisted(sn: SimNode, e: Entry, prevTerm: number | undefined): void {
    const id = `${e.index}:${e.term}`;
    const val = `${entryKey(e)}|${prevTerm}`;
    const known = this.persisted.get(id);
    if (known === undefined) this.persisted.set(id, val);
    else if (known !== val) this.fail('log-matching', `${sn.id} persisted (${id}) as ${val}, elsewhere ${known}`);
  }

  /**
   * `leases`: a leader elected by a real election (not a transfer) must come at least
   * `electionQuiet - leaseSlackTicks` ticks after every earlier leader's last moment of lease
   * validity; then records this leader's own validity (a majority answered a heartbeat sent <
   * electionTicks / 2 ago).
   */
  private checkLease(sn: SimNode, n: RaftNode): void {
    if (sn.seenLeaderTerm !== n.term && !n.wonByTransfer) {
      const bound = (n.electionQuiet ?? 0) - this.opts.leaseSlackTicks;
      if (bound > this.stats.maxLeaseBound) this.stats.maxLeaseBound = bound;
      for (const [id, v] of this.leaseValid) {
        if (v.term >= n.term) continue;
        const gap = this.now - v.tick;
        if (gap < this.stats.minLeaseGap || this.stats.minLeaseGap < 0) this.stats.minLeaseGap = gap;
        if (gap < bound) {
          this.fail('lease', `${sn.id} leads term ${n.term} ${gap} tick(s) after ${id} (term ${v.term}) last had a valid lease; it claimed ${bound} (quiet ${n.electionQuiet})`);
        } else if (gap - bound < this.stats.minLeaseMargin || this.stats.minLeaseMargin < 0) this.stats.minLeaseMargin = gap - bound;
      }
    }
    const q = n.quorumContactTick();
    if (q !== undefined && 2 * (n.ticks - q) < this.opts.electionTicks) this.leaseValid.set(sn.id, { term: n.term, tick: this.now });
  }

  private observe(sn: SimNode): void {
    const n = sn.node as RaftNode;
    if (n.term > this.stats.maxTerm) this.stats.maxTerm = n.term;
    // commits observed on any node join the global sequence
    if (n.commitIndex > sn.seenCommit) {
      for (let i = Math.max(sn.seenCommit + 1, n.snapshotIndex + 1); i <= n.commitIndex; i++) {
        this.checkCommitted(i, entryKey(n.entryAt(i) as Entry), `${sn.id} commits`, n.term);
      }
      sn.seenCommit = n.commitIndex;
    }
    // Election safety counts a leader once its term is durable. A node that wins alone (a single
    // voter) leads in memory at once; if it crashes before its next ready() persisted the term,
    // it comes back at the old term with nothing of its leadership seen by anyone (every message
    // goes out after the ready's hard state is stored), and may rightly vote in that term again.
    if (n.role === 'leader' && sn.durableLeaderTerm !== n.term && sn.store.hs.term === n.term) {
      sn.durableLeaderTerm = n.term;
      const other = this.durableLeaderOfTerm.get(n.term);
      if (other !== undefined && other !== sn.id) this.fail('election-safety', `${sn.id} and ${other} both lead term ${n.term}`);
      this.durableLeaderOfTerm.set(n.term, sn.id);
    }
    if (this.opts.leases && !this.healed && n.role === 'leader') this.checkLease(sn, n);
    if (n.role === 'leader' && sn.seenLeaderTerm !== n.term) {
      sn.seenLeaderTerm = n.term;
      const other = this.leaderOfTerm.get(n.term);
      if (other === undefined) {
        this.leaderOfTerm.set(n.term, sn.id);
        this.stats.leaders++;
        // leader flapping: a new leader is sometimes cut off within a few ticks, often with
        // only part of its log replicated (where the commit rules of §5.4.2 matter)
        if (this.pFlap > 0 && this.rand.chance(this.pFlap)) {
          this.isolatedUntil.set(sn.id, this.now + 1 + this.rand.int(0, 3) + this.rand.int(1, 3 * this.opts.electionTicks));
          this.flapStart.set(sn.id, this.now + this.rand.int(0, 3));
        }
      }
      // leader completeness (§5.4): every entry committed in an earlier term is in the new
      // leader's log. Not one committed in its own term or later: a candidate elected by votes
      // granted before the voters moved on, whose last vote reply arrived late, leads a term
      // older than one that already committed (run seed 4242 schedule 17,366: n1 leads term 3
      // after term 4 committed index 2; it can commit nothing, every majority being at term 4)
      for (let i = n.snapshotIndex + 1; i <= this.committedMax; i++) {
        const k = this.committed[i];
        if (k !== undefined && (this.commitTerm[i] ?? 0) < n.term && n.termAt(i) !== keyTerm(k)) {
          this.fail('leader-completeness', `${sn.id}, leader of term ${n.term}, lacks committed entry ${i} (${k}); has term ${n.termAt(i)}`);
        }
      }
    }
  }
}

export function runSchedule(options: ScheduleOptions): ScheduleResult {
  return new Simulation(options).run();
}

export interface RunOptions extends Omit<ScheduleOptions, 'seed'> {
  schedules: number;
  seed: number;
  /** stop at the first schedule with a violation (default true) */
  stopOnViolation?: boolean;
  onProgress?: (done: number, summary: RunSummary) => void;
  progressEvery?: number;
}

export interface RunSummary {
  schedules: number;
  violations: number;
  /** the first failing schedule: rerun it with runSchedule({ seed, ...options }) */
  firstFailure: ScheduleResult | undefined;
  totals: ScheduleStats;
  maxRecoveryTicks: number;
  violationsByKind: Partial<Record<ViolationKind, number>>;
}

/** Seed of schedule i of a run started with `seed`. */
export function scheduleSeed(seed: number, i: number): number { return mixSeed(seed, i); }

export function runSchedules(options: RunOptions): RunSummary {
  const totals: ScheduleStats = {
    ticks: 0, delivered: 0, dropped: 0, leaders: 0, maxTerm: 0, committed: 0, crashes: 0, snapshotsSent: 0, compactions: 0,
    confChanges: 0, proposals: 0, recoveryTicks: 0, reads: 0, readsServed: 0, minLeaseGap: -1, minLeaseMargin: -1, maxLeaseBound: 0,
  };
  const summary: RunSummary = { schedules: 0, violations: 0, firstFailure: undefined, totals, maxRecoveryTicks: 0, violationsByKind: {} };
  const stop = options.stopOnViolation ?? true;
  for (let i = 0; i < options.schedules; i++) {
    const { schedules: _s, seed: _seed, stopOnViolation: _st, onProgress: _p, progressEvery: _pe, ...rest } = options;
    const res = runSchedule({ ...rest, seed: scheduleSeed(options.seed, i) });
    summary.schedules++;
    for (const k of Object.keys(totals) as (keyof ScheduleStats)[]) {
      if (k === 'maxTerm') totals.maxTerm = Math.max(totals.maxTerm, res.stats.maxTerm);
      else if (k === 'maxLeaseBound') totals.maxLeaseBound = Math.max(totals.maxLeaseBound, res.stats.maxLeaseBound);
      else if (k === 'minLeaseGap' || k === 'minLeaseMargin') {
        const g = res.stats[k];
        if (g >= 0 && (totals[k] < 0 || g < totals[k])) totals[k] = g;
      } else totals[k] += res.stats[k];
    }
    if (res.stats.recoveryTicks > summary.maxRecoveryTicks) summary.maxRecoveryTicks = res.stats.recoveryTicks;
    if (res.violations.length > 0) {
      summary.violations++;
      for (const v of res.violations) summary.violationsByKind[v.kind] = (summary.violationsByKind[v.kind] ?? 0) + 1;
      if (summary.firstFailure === undefined) summary.firstFailure = res;
      if (stop) break;
    }
    if (options.onProgress !== undefined && (i + 1) % (options.progressEvery ?? 1000) === 0) options.onProgress(i + 1, summary);
  }
  return summary;
}

