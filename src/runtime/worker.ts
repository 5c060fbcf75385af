/**
 * Virtual node: one worker thread of a member. It owns a set of partitions and runs the work
 * that must not run on callers' threads: the LRU clock, active expiry (Redis-style sampling), and
 * background eviction that keeps a few pages free once the heap has reached its budget, so that
 * writers rarely evict inline. Data never passes through here: callers read and write shared
 * memory directly.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ShardStore } from '../storage/store.js';
import { tryLock, unlock } from '../sync/mutex.js';
import type { FromVnode, ToVnode, VnodeInit } from './messages.js';

const init = workerData as VnodeInit;
const store = new ShardStore(init.buffers, init.lockTimeout);
let owned = init.partitions.slice();
let cursor = 0;
const port = parentPort!;

/** Active expiry over owned partitions, bounded to ~2 ms of work per tick. */
function expiryTick(): void {
  const deadline = performance.now() + 2;
  const now = Date.now();
  for (let k = 0; k < owned.length && performance.now() < deadline; k++) {
    const p = owned[(cursor + k) % owned.length];
    if (store.ttlCount(p) <= 0) continue;
    if (!tryLock(store.ci, store.lockIndex(p))) continue;
    store.beginWrite(p);
    try {
      store.expireSample(p, now);
    } finally {
      store.endWrite(p);
      unlock(store.ci, store.lockIndex(p));
    }
  }
  cursor = owned.length === 0 ? 0 : (cursor + 1) % owned.length;
}

/** Keeps LOW_WATER pages available once the heap is at its budget, from entries not used lately. */
function pressureTick(): void {
  const lowWater = Math.max(2, Math.ceil(owned.length / 8));
  const deadline = performance.now() + 4;
  while (store.freePages() < lowWater && performance.now() < deadline) if (!store.releaseInBackground(owned)) return;
}

/** Each partition this member is primary for is swept for touches about this often, ms. */
const TOUCH_SWEEP_MS = 2000;
/** Touches one tick journals at most (10,000 a second at the default expiryInterval of 100 ms). */
const TOUCH_TICK_BUDGET = 1000;
/**
 * Per owned partition: the clock tick its last touch sweep started at (`tick`), when (`at`) and
 * the partition's write sequence then (`seq`: what was written since, its copies stamped on
 * applying), and for a sweep under way the table slot it resumes at (`resume`, -1: none) and its
 * own start (`next`, `nextSeq`: the next sweep's `tick` and `seq`).
 */
const swept = new Map<number, { tick: number; at: number; seq: number; resume: number; next: number; nextSeq: number }>();
let touchCursor = 0;

/**
 * The touch sweep of a cluster data member (store.journalTouched): every TOUCH_SWEEP_MS, each
 * owned partition this member is primary for has the entries accessed since its last sweep
 * journaled for its copies, so a copy's LRU stamps follow the reads its primary served (within
 * about TOUCH_SWEEP_MS while the touches fit the budget; a read-heavy load over many keys
 * stretches the period instead of the main thread's work). At most TOUCH_TICK_BUDGET touches
 * and ~1 ms a tick.
 */
function touchTick(): void {
  if (store.journal.slots === 0 || owned.length === 0) return;
  const start = performance.now();
  let budget = TOUCH_TICK_BUDGET;
  for (let k = 0; k < owned.length && budget > 0 && performance.now() - start < 1; k++) {
    touchCursor = (touchCursor + 1) % owned.length;
    const p = owned[touchCursor];
    const tick = store.clock();
    let s = swept.get(p);
    if (s === undefined) {
      const seq = store.writeSeq(p);
      swept.set(p, (s = { tick, at: start, seq, resume: -1, next: tick, nextSeq: seq }));
    } else if (!store.primaryHere(p)) {
      // not served here now: a sweep starts over from here once it is
      s.tick = tick;
      s.at = start;
      s.seq = store.writeSeq(p);
      s.resume = -1;
    }
    if (!store.primaryHere(p)) continue;
    if (s.resume < 0 && start - s.at < TOUCH_SWEEP_MS) continue;
    if (!tryLock(store.ci, store.lockIndex(p))) continue;
    try {
      // a new sweep covers what was accessed since the last one started
      if (s.resume < 0) {
        s.resume = 0;
        s.next = tick;
        s.nextSeq = store.writeSeq(p);
      }
      const at = store.journalTouched(p, s.tick, s.resume, budget, s.seq);
      budget -= store.touchesJournaled;
      s.resume = at;
      if (at < 0) {
        s.tick = s.next;
        s.seq = s.nextSeq;
        s.at = start;
      }
    } finally {
      unlock(store.ci, store.lockIndex(p));
    }
  }
}

const timer = setInterval(() => {
  if (store.closed) return;
  store.tickClock();
  expiryTick();
  pressureTick();
  touchTick();
}, init.expiryInterval);

port.on('message', (m: ToVnode) => {
  if (m.type === 'assign') {
    owned = m.partitions.slice();
    cursor = 0;
  } else if (m.type === 'stop') {
    clearInterval(timer);
    port.postMessage({ type: 'stopped', index: init.index } satisfies FromVnode);
    port.close();
  }
});

port.postMessage({ type: 'ready', index: init.index } satisfies FromVnode);
